package e2e

import (
	"context"
	"errors"
	"strings"
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

// plantedKillWindow is how long the planted kill round runs: enough to kill the active node
// (the node is killed within a second or two), too short for a new active node and ESO's sync.
const plantedKillWindow = 4 * time.Second

// A failover that fails midway (the probe ExternalSecrets applied, the active node killed,
// the waits cut short) still leaves three unsealed Raft voters and no probe behind: its
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
				if c.Name == "kills" {
					run := c.Run
					// the kill comes within seconds; the waits after it then end with the
					// context, with the node still down
					s.Checks[i].Run = func(ctx context.Context, e *scenarios.Env, r *scenarios.Result) error {
						ctx, cancel := context.WithTimeout(ctx, plantedKillWindow)
						defer cancel()
						if err := run(ctx, e, r); err != nil {
							return err
						}
						return errors.New("planted failure: the kill round finished within the planted window")
					}
				}
			}
			planted := &scenarios.Runner{Env: runner.Env}
			planted.RunScenario(ctx, s)

			got := map[string]reports.Status{}
			for _, c := range planted.Results {
				got[c.ID] = c.Status
				t.Logf("%-8s %s %s", c.Status, c.ID, c.Message)
				if c.ID == "failover.kills" && !strings.Contains(c.Message, "kill 1 (vault-") {
					t.Errorf("failover.kills did not kill a node before it failed: %s", c.Message)
				}
			}
			for id, want := range map[string]reports.Status{
				"failover.eso-synced": reports.Passed, "failover.kills": reports.Failed,
				"failover.secrets-unchanged": reports.Unknown, "failover.teardown": reports.Passed,
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
			for _, name := range []string{"failover-probe", "failover-steady"} {
				if _, err := l.Dynamic().Resource(es).Namespace("bookstore").Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("the probe ExternalSecret %s is still there (get: %v)", name, err)
				}
				if _, err := l.Kube().CoreV1().Secrets("bookstore").Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("the probe's Secret %s is still there (get: %v)", name, err)
				}
			}
			return ctx
		}).Feature()
	testenv.Test(t, f)
}
