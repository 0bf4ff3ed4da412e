package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/secretslab/secretslab/fixtures"
)

// baseline: chapter 05 step 0, the running bookstore on the demo Secret.
func baseline() Scenario {
	return Scenario{Name: "baseline", Title: "the bookstore runs on the demo Secret", Checks: []Check{
		{"demo-secret", "the demo Secret and the bookstore's objects are applied; the cluster stores the fixture's bytes", func(ctx context.Context, e *Env, r *Result) error {
			if _, err := e.apply(ctx, raw+"00-namespace.yaml", raw+"05-serviceaccounts-rbac.yaml", raw+"15-catalog-config.yaml", raw+"16-db-credentials.yaml", raw+"40-services.yaml"); err != nil {
				return err
			}
			stored, err := e.secretData(ctx, "db-credentials")
			if err != nil {
				return err
			}
			want, err := fixtures.DemoSecret()
			if err != nil {
				return err
			}
			if d := DiffData(want, stored); d != "" {
				return fmt.Errorf("the stored demo Secret differs from the fixture: %s", d)
			}
			e.State.Demo = stored
			r.Note("keys %v", keyNames(stored))
			return nil
		}},
		{"postgres-ready", "Postgres runs with the demo Secret as its environment", func(ctx context.Context, e *Env, r *Result) error {
			return e.deploy(ctx, raw+"20-postgres-statefulset.yaml", r)
		}},
		{"migrate", "the db-migrate Job completes", func(ctx context.Context, e *Env, r *Result) error {
			return e.deploy(ctx, raw+"21-db-migrate-job.yaml", r)
		}},
		{"catalog-serves", "catalog and orders run; the catalog serves /books", func(ctx context.Context, e *Env, r *Result) error {
			if err := e.deploy(ctx, raw+"10-catalog-deploy.yaml", r); err != nil {
				return err
			}
			if err := e.deploy(ctx, raw+"14-orders-deploy.yaml", r); err != nil {
				return err
			}
			n, err := e.books(ctx)
			r.Figure("books", float64(n))
			return err
		}},
	}}
}

func (e *Env) deploy(ctx context.Context, path string, r *Result) error {
	m, err := fixtures.Manifest(path)
	if err != nil {
		return err
	}
	start := time.Now()
	w, err := e.Lab.Deploy(ctx, m)
	if err != nil {
		return err
	}
	if w.Name() == "catalog" {
		e.State.Catalog = w
	}
	r.Figure(w.Name()+"-ready-seconds", since(start))
	return nil
}
