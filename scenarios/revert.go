package scenarios

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
			err = e.Kube.WaitGone(ctx, secretObj("db-credentials"), e.Timeouts.Gone)
			took := since(start)
			if err != nil {
				if _, gerr := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, "db-credentials", metav1.GetOptions{}); gerr == nil {
					r.Claim("C05-09", false, fmt.Sprintf("db-credentials still there %.0fs after its ExternalSecret was deleted", took))
				}
				return err
			}
			r.Claim("C05-09", true, fmt.Sprintf("db-credentials gone %.1fs after its ExternalSecret was deleted", took))
			r.Figure("gc-seconds", took)
			return nil
		}},
		{"demo-reapplied", "the demo Secret is applied again", func(ctx context.Context, e *Env, r *Result) error {
			_, err := e.apply(ctx, raw+"16-db-credentials.yaml")
			return err
		}},
		{"byte-identical", "db-credentials is byte-identical to the original demo Secret", func(ctx context.Context, e *Env, r *Result) error {
			// ESO dropped db-credentials (secret-collected) and the demo's bytes are back
			return e.compareWithDemo(ctx, r, "C05-16")
		}},
		{"app-serves", "after a restart the catalog serves /books", func(ctx context.Context, e *Env, r *Result) error {
			return e.restartCatalog(ctx, r, "")
		}},
	}}
}
