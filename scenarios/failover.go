package scenarios

import (
	"context"
	"fmt"
	"time"

	vault "github.com/hashicorp/vault/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/lab"
)

const failoverProbe = "failover-probe"

// failover: chapter 15.05, Vault HA. Kill the active node; a new one is active (the chapter:
// "<30s"); ESO syncs through the new active; the killed node comes back and rejoins.
func failover() Scenario {
	var killed lab.VaultNode
	return Scenario{Name: "failover", Title: "Vault HA (Raft, 3 nodes): kill the active node; a new one takes over; ESO recovers",
		Needs: []string{"vault-config"}, Requires: []Requirement{VaultHA, Disruptive}, Checks: []Check{
			{"three-voters", "the Raft configuration lists 3 voters", func(ctx context.Context, e *Env, r *Result) error {
				rc, err := vaultops.WaitVoters(ctx, e.Lab.Vault(), 3, e.Timeouts.Voters)
				if err != nil {
					return err
				}
				r.Note("voters %v", rc.Voters())
				// what `vault status` shows on each node (the chapter's §0)
				nodes := e.Lab.VaultNodes()
				unsealed, ha, active := 0, 0, 0
				for _, n := range nodes {
					st, err := n.Client().Sys().SealStatusWithContext(ctx)
					if err != nil {
						return fmt.Errorf("%s: %w", n.Name(), err)
					}
					l, err := n.Client().Sys().LeaderWithContext(ctx)
					if err != nil {
						return fmt.Errorf("%s: %w", n.Name(), err)
					}
					if !st.Sealed {
						unsealed++
					}
					if l.HAEnabled {
						ha++
					}
					if l.IsSelf {
						active++
					}
				}
				r.Claim("C15-01", unsealed == len(nodes) && ha == len(nodes) && active == 1 && len(rc.Voters()) == 3,
					fmt.Sprintf("%d of %d nodes unsealed, %d with HA enabled, %d active; %d Raft voters", unsealed, len(nodes), ha, active, len(rc.Voters())))
				return nil
			}},
			{"new-active", "after the active node is killed another node becomes active", func(ctx context.Context, e *Env, r *Result) error {
				nodes := e.Lab.VaultNodes()
				i, err := vaultops.WaitOneActive(ctx, clientsOf(nodes), e.Timeouts.Failover)
				if err != nil {
					return err
				}
				killed = nodes[i]
				start := time.Now()
				if err := killed.Kill(ctx); err != nil {
					return err
				}
				e.Defer("bring "+killed.Name()+" back: restart, unseal, 3 healthy voters", func(ctx context.Context) error {
					return e.restoreVaultNodes(ctx, killed)
				})
				var others []*vault.Client
				for _, n := range nodes {
					if n != killed {
						others = append(others, n.Client())
					}
				}
				if _, err := vaultops.WaitOneActive(ctx, others, e.Timeouts.Failover); err != nil {
					return fmt.Errorf("after killing %s: %w", killed.Name(), err)
				}
				took := since(start)
				r.Figure("failover-seconds", took)
				r.Note("killed %s; a new active node after %.1fs", killed.Name(), took)
				r.Claim("C15-09", took < 30, fmt.Sprintf("a new active node %.1fs after %s was killed", took, killed.Name()))
				return nil
			}},
			{"eso-recovers", "ESO syncs a new ExternalSecret through the new active node", func(ctx context.Context, e *Env, r *Result) error {
				if _, err := e.apply(ctx, sec+"10-secretstore-vault.yaml"); err != nil {
					return err
				}
				probe, err := e.rotationProbe(ctx, failoverProbe)
				if err != nil {
					return err
				}
				start := time.Now()
				if err := e.Kube.Apply(ctx, probe); err != nil {
					return err
				}
				e.Defer("delete the probe ExternalSecret "+failoverProbe, func(ctx context.Context) error {
					return e.deleteProbe(ctx, failoverProbe)
				})
				// ESO backs off after the errors it met while Vault had no active node.
				if _, err := e.Kube.WaitCondition(ctx, probe, "Ready", e.Timeouts.Sync+e.Timeouts.Failover); err != nil {
					return err
				}
				r.Figure("eso-sync-seconds", since(start))
				_, err = e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, failoverProbe, metav1.GetOptions{})
				return err
			}},
			{"rejoin", "the killed node restarts, is unsealed and rejoins: 3 healthy voters", func(ctx context.Context, e *Env, r *Result) error {
				if killed == nil {
					return fmt.Errorf("no node was killed")
				}
				start := time.Now()
				if err := e.restoreVaultNodes(ctx, killed); err != nil {
					return err
				}
				r.Figure("rejoin-seconds", since(start))
				return nil
			}},
			{"probe-removed", "the probe ExternalSecret and its Secret are removed", func(ctx context.Context, e *Env, r *Result) error {
				return e.deleteProbe(ctx, failoverProbe)
			}},
		}}
}

// restoreVaultNodes restarts each of nodes that is down, unseals each, then waits for three
// healthy Raft voters. A node that is up and unsealed is left as it is.
func (e *Env) restoreVaultNodes(ctx context.Context, nodes ...lab.VaultNode) error {
	for _, n := range nodes {
		if _, err := n.Client().Sys().SealStatusWithContext(ctx); err != nil {
			if err := n.Restart(ctx); err != nil {
				return fmt.Errorf("restart %s: %w", n.Name(), err)
			}
		}
	}
	for _, n := range nodes {
		if err := n.Unseal(ctx); err != nil {
			return fmt.Errorf("unseal %s: %w", n.Name(), err)
		}
	}
	_, err := vaultops.WaitHealthyVoters(ctx, e.Lab.Vault(), 3, e.Timeouts.Rejoin)
	return err
}

// deleteProbe removes a probe ExternalSecret and waits until its Secret is gone.
func (e *Env) deleteProbe(ctx context.Context, name string) error {
	probe, err := e.rotationProbe(ctx, name)
	if err != nil {
		return err
	}
	if err := e.Kube.Delete(ctx, probe); err != nil {
		return err
	}
	return e.Kube.WaitGone(ctx, secretObj(name), e.Timeouts.Gone)
}

func clientsOf(nodes []lab.VaultNode) []*vault.Client {
	var out []*vault.Client
	for _, n := range nodes {
		out = append(out, n.Client())
	}
	return out
}
