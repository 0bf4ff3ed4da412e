package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/secretslab/secretslab/internal/vaultops"
)

// stormLeases is how many dynamic credentials the storm mints; enough to exercise Vault's
// lease bookkeeping on a 2-core machine without minutes of waiting.
const stormLeases = 40

// leaseStorm: many dynamic leases survive a restart of every Vault node (Raft storage keeps
// them), and revoking them all leaves no orphaned Postgres role.
func leaseStorm() Scenario {
	survived := 0
	return Scenario{Name: "lease-storm", Title: "many dynamic leases across a Vault restart, all revoked, no orphaned Postgres roles", Needs: []string{"dynamic"}, Requires: []Requirement{VaultHA, Disruptive}, Checks: []Check{
		{"mint", fmt.Sprintf("%d dynamic credentials are minted", stormLeases), func(ctx context.Context, e *Env, r *Result) error {
			if err := e.configureDatabaseEngine(ctx); err != nil {
				return err
			}
			mount, _, _, role, _, err := dbSetup("")
			if err != nil {
				return err
			}
			e.Defer("revoke every lease under "+mount+"/creds/"+role, e.revokeDynamic)
			start := time.Now()
			for i := 0; i < stormLeases; i++ {
				s, err := e.Lab.Vault().Logical().ReadWithContext(ctx, mount+"/creds/"+role)
				if err != nil {
					return fmt.Errorf("credential %d: %w", i+1, err)
				}
				if s == nil {
					return fmt.Errorf("credential %d: %s/creds/%s returned nothing", i+1, mount, role)
				}
				if p, ok := s.Data["password"].(string); ok {
					e.Lab.Secrets().Add(p)
				}
			}
			r.Figure("mint-seconds", since(start))
			n, err := e.countMintedRoles(ctx)
			if err != nil {
				return err
			}
			r.Figure("roles", float64(n))
			if n < stormLeases {
				return fmt.Errorf("%d minted roles in Postgres, want %d", n, stormLeases)
			}
			return nil
		}},
		{"restart", "every Vault node is killed, restarted and unsealed; one becomes active", func(ctx context.Context, e *Env, r *Result) error {
			start := time.Now()
			nodes := e.Lab.VaultNodes()
			e.Defer("bring every Vault node back: restart, unseal, 3 healthy voters", func(ctx context.Context) error {
				return e.restoreVaultNodes(ctx, nodes...)
			})
			for _, n := range nodes {
				if err := n.Kill(ctx); err != nil {
					return err
				}
			}
			for _, n := range nodes {
				if err := n.Restart(ctx); err != nil {
					return err
				}
			}
			for _, n := range nodes {
				if err := n.Unseal(ctx); err != nil {
					return err
				}
			}
			if _, err := vaultops.WaitOneActive(ctx, clientsOf(nodes), e.Timeouts.Rejoin); err != nil {
				return err
			}
			r.Figure("restart-seconds", since(start))
			return nil
		}},
		{"leases-survive", "Vault still lists every lease after the restart", func(ctx context.Context, e *Env, r *Result) error {
			n, err := e.countLeases(ctx)
			if err != nil {
				return err
			}
			r.Figure("leases", float64(n))
			survived = n
			if n < stormLeases {
				return fmt.Errorf("%d leases after the restart, want at least %d", n, stormLeases)
			}
			return nil
		}},
		{"all-revoked", "revoking every lease drops every minted role: none orphaned", func(ctx context.Context, e *Env, r *Result) error {
			start := time.Now()
			if err := e.revokeDynamic(ctx); err != nil {
				return err
			}
			left := -1
			err := waitFor(ctx, "every minted Postgres role to be dropped", e.Timeouts.Revoke, func(ctx context.Context) (bool, error) {
				n, err := e.countMintedRoles(ctx)
				left = n
				return err == nil && n == 0, err
			})
			r.Figure("revoke-seconds", since(start))
			r.Figure("orphaned-roles", float64(left))
			leases, lerr := e.countLeases(ctx)
			if lerr == nil && (err == nil || left > 0) { // both counts read: an observation
				r.Claim("C15-18", left == 0 && leases == 0, fmt.Sprintf("%d leases survived the restart of every node; after revoking them %d leases and %d minted roles remain", survived, leases, left))
			}
			if err != nil {
				return fmt.Errorf("%d minted roles left: %w", left, err)
			}
			if lerr != nil || leases != 0 {
				return fmt.Errorf("%d leases remain after revoke-prefix (%v)", leases, lerr)
			}
			return nil
		}},
	}}
}
