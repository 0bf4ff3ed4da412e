package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/reports"
	"github.com/secretslab/secretslab/scenarios"
)

// A failover that fails midway (after the active node was killed and the probe
// ExternalSecret applied) still leaves three unsealed Raft voters and no probe behind: its
// deferred cleanups run.
func TestPlantedFailoverFailureCleansUp(t *testing.T) {
	f := features.New("a failover that fails midway cleans up").
		Assess("three unsealed voters and no probe ExternalSecret remain", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			l := labFrom(ctx)
			if len(l.VaultNodes()) < 3 {
				t.Skip("needs Vault HA (3 Raft nodes): run with HA=1")
			}
			if err := runner.Ensure(ctx, "vault-config"); err != nil {
				t.Fatal(err)
			}
			s, err := scenarios.ByName("failover")
			if err != nil {
				t.Fatal(err)
			}
			s.Needs = nil
			for i, c := range s.Checks {
				if c.Name == "eso-recovers" {
					run := c.Run
					s.Checks[i].Run = func(ctx context.Context, e *scenarios.Env, r *scenarios.Result) error {
						if err := run(ctx, e, r); err != nil {
							return err
						}
						return errors.New("planted failure")
					}
				}
			}
			planted := &scenarios.Runner{Env: runner.Env}
			planted.RunScenario(ctx, s)

			got := map[string]reports.Status{}
			for _, c := range planted.Results {
				got[c.ID] = c.Status
				t.Logf("%-8s %s %s", c.Status, c.ID, c.Message)
			}
			for id, want := range map[string]reports.Status{
				"failover.new-active": reports.Passed, "failover.eso-recovers": reports.Failed,
				"failover.rejoin": reports.Unknown, "failover.teardown": reports.Passed,
			} {
				if got[id] != want {
					t.Errorf("%s: %s, want %s", id, got[id], want)
				}
			}

			if _, err := vaultops.WaitHealthyVoters(ctx, l.Vault(), 3, 10*time.Second); err != nil {
				t.Errorf("after the teardown: %v", err)
			}
			for _, n := range l.VaultNodes() {
				st, err := n.Client().Sys().SealStatusWithContext(ctx)
				if err != nil || st.Sealed {
					t.Errorf("%s after the teardown: sealed or down (%v)", n.Name(), err)
				}
			}
			served, err := runner.Env.Kube.ServedVersions("external-secrets.io")
			if err != nil || len(served) == 0 {
				t.Fatalf("external-secrets.io versions: %v %v", served, err)
			}
			es := schema.GroupVersionResource{Group: "external-secrets.io", Version: served[0], Resource: "externalsecrets"}
			if _, err := l.Dynamic().Resource(es).Namespace("bookstore").Get(ctx, "failover-probe", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the probe ExternalSecret is still there (get: %v)", err)
			}
			if _, err := l.Kube().CoreV1().Secrets("bookstore").Get(ctx, "failover-probe", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the probe's Secret is still there (get: %v)", err)
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
