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
	return Scenario{Name: "failover", Title: "Vault HA (Raft, 3 nodes): kill the active node; a new one takes over; ESO recovers", Needs: []string{"vault-config"}, Checks: []Check{
		{"three-voters", "the Raft configuration lists 3 voters", func(ctx context.Context, e *Env, r *Result) error {
			if e.skipWithoutHA(r) {
				return nil
			}
			rc, err := vaultops.WaitVoters(ctx, e.Lab.Vault(), 3, 2*time.Minute)
			if err != nil {
				return err
			}
			r.Note("voters %v", rc.Voters())
			return nil
		}},
		{"new-active", "after the active node is killed another node becomes active", func(ctx context.Context, e *Env, r *Result) error {
			if e.skipWithoutHA(r) {
				return nil
			}
			nodes := e.Lab.VaultNodes()
			i, err := vaultops.WaitOneActive(ctx, clientsOf(nodes), time.Minute)
			if err != nil {
				return err
			}
			killed = nodes[i]
			start := time.Now()
			if err := killed.Kill(ctx); err != nil {
				return err
			}
			var others []*vault.Client
			for _, n := range nodes {
				if n != killed {
					others = append(others, n.Client())
				}
			}
			if _, err := vaultops.WaitOneActive(ctx, others, 2*time.Minute); err != nil {
				return fmt.Errorf("after killing %s: %w", killed.Name(), err)
			}
			took := since(start)
			r.Figure("failover-seconds", took)
			r.Note("killed %s; a new active node after %.1fs", killed.Name(), took)
			r.Claim("ch15.05", "on active-node loss Raft elects a new active in <30s", took < 30)
			return nil
		}},
		{"eso-recovers", "ESO syncs a new ExternalSecret through the new active node", func(ctx context.Context, e *Env, r *Result) error {
			if e.skipWithoutHA(r) {
				return nil
			}
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
			if _, err := e.Kube.WaitCondition(ctx, probe, "Ready", 5*time.Minute); err != nil {
				return err
			}
			r.Figure("eso-sync-seconds", since(start))
			if _, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, failoverProbe, metav1.GetOptions{}); err != nil {
				return err
			}
			return nil
		}},
		{"rejoin", "the killed node restarts, is unsealed and rejoins: 3 healthy voters", func(ctx context.Context, e *Env, r *Result) error {
			if e.skipWithoutHA(r) {
				return nil
			}
			if killed == nil {
				return fmt.Errorf("no node was killed")
			}
			start := time.Now()
			if err := killed.Restart(ctx); err != nil {
				return err
			}
			if err := killed.Unseal(ctx); err != nil {
				return err
			}
			if _, err := vaultops.WaitHealthyVoters(ctx, e.Lab.Vault(), 3, 3*time.Minute); err != nil {
				return err
			}
			r.Figure("rejoin-seconds", since(start))
			return nil
		}},
		{"probe-removed", "the probe ExternalSecret and its Secret are removed", func(ctx context.Context, e *Env, r *Result) error {
			if e.skipWithoutHA(r) {
				return nil
			}
			probe, err := e.rotationProbe(ctx, failoverProbe)
			if err != nil {
				return err
			}
			if err := e.Kube.Delete(ctx, probe); err != nil {
				return err
			}
			return e.Kube.WaitGone(ctx, secretObj(failoverProbe), time.Minute)
		}},
	}}
}

// skipWithoutHA marks r skipped when the lab's Vault is a single dev server.
func (e *Env) skipWithoutHA(r *Result) bool {
	if len(e.Lab.VaultNodes()) >= 3 {
		return false
	}
	r.Skip("needs Vault HA (3 Raft nodes): run with HA=1 (lab up --ha)")
	return true
}

func clientsOf(nodes []lab.VaultNode) []*vault.Client {
	var out []*vault.Client
	for _, n := range nodes {
		out = append(out, n.Client())
	}
	return out
}
