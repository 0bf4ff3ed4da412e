package scenarios

import (
	"context"
	"time"
)

// revert: chapter 05 step 5, back to the demo Secret.
func revert() Scenario {
	return Scenario{Name: "revert", Title: "revert to the demo Secret", Needs: []string{"swap"}, Checks: []Check{
		{"secret-collected", "deleting the ExternalSecret garbage-collects db-credentials", func(ctx context.Context, e *Env, r *Result) error {
			es, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
			if err != nil {
				return err
			}
			if err := e.Kube.Delete(ctx, es); err != nil {
				return err
			}
			start := time.Now()
			if err := e.Kube.WaitGone(ctx, secretObj("db-credentials"), e.Timeouts.Gone); err != nil {
				return err
			}
			r.Figure("gc-seconds", since(start))
			return nil
		}},
		{"demo-reapplied", "the demo Secret is applied again", func(ctx context.Context, e *Env, r *Result) error {
			_, err := e.apply(ctx, raw+"16-db-credentials.yaml")
			return err
		}},
		{"byte-identical", "db-credentials is byte-identical to the original demo Secret", func(ctx context.Context, e *Env, r *Result) error {
			return e.compareWithDemo(ctx, r)
		}},
		{"app-serves", "after a restart the catalog serves /books", func(ctx context.Context, e *Env, r *Result) error {
			return e.restartCatalog(ctx, r)
		}},
	}}
}
