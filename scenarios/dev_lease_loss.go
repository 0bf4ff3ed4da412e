package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// devLeaseLossN is how many credentials the dev server mints before its restart.
const devLeaseLossN = 20

// vaultDev: one Vault server in dev mode (in-memory storage), the lab without HA.
var vaultDev = Requirement{
	Name: "a dev-mode Vault (one server, in-memory storage)",
	Met:  func(e *Env) bool { return len(e.Lab.VaultNodes()) == 1 },
	Why:  "run without HA=1: Raft keeps its leases across a restart (lease-storm shows that)",
}

// devLeaseLoss: chapter 05 runs Vault in dev mode and says it "loses every secret on restart"
// (C05-17). Leases are in that memory too: the database roles Vault minted outlive it in
// Postgres, and nothing will ever revoke them. The orphan count is the finding this scenario
// reports; the suite then drops them with the fixture's revocation statements, as an
// operator would have to.
func devLeaseLoss() Scenario {
	var minted []mintedCred
	var kept struct{ user, pass string } // one credential kept to log in with after the restart
	return Scenario{Name: "dev-lease-loss", Title: "dev mode forgets its leases on restart: the Postgres roles it minted are orphaned",
		Needs: []string{"vault-config"}, Requires: []Requirement{vaultDev, Disruptive}, Checks: []Check{
			{"mint", "the dev server mints dynamic credentials; Postgres holds a role for each", func(ctx context.Context, e *Env, r *Result) error {
				if err := e.configureDatabaseEngine(ctx); err != nil {
					return err
				}
				mount, _, _, role, _, err := dbSetup("")
				if err != nil {
					return err
				}
				e.Defer("revoke every lease under "+mount+"/creds/"+role, e.revokeDynamic)
				if minted, err = e.mintMany(ctx, devLeaseLossN-1); err != nil {
					return err
				}
				s, err := e.Lab.Vault().Logical().ReadWithContext(ctx, mount+"/creds/"+role)
				if err != nil {
					return e.redactErr("read "+mount+"/creds/"+role+": ", err)
				}
				if s == nil {
					return fmt.Errorf("read %s/creds/%s: no credential", mount, role)
				}
				kept.user, _ = s.Data["username"].(string)
				kept.pass, _ = s.Data["password"].(string)
				e.Lab.Secrets().Add(kept.pass)
				minted = append(minted, mintedCred{user: kept.user, lease: s.LeaseID})
				e.Defer(fmt.Sprintf("drop whichever of the %d roles the dev server minted are left in Postgres", len(minted)), func(ctx context.Context) error {
					return e.dropRoles(ctx, usersOf(minted))
				})
				n, err := e.countRolesNamed(ctx, usersOf(minted))
				if err != nil {
					return err
				}
				r.Figure("roles", float64(n))
				if n != len(minted) {
					return fmt.Errorf("%d of the %d minted roles are in Postgres", n, len(minted))
				}
				return nil
			}},
			{"restart", "the dev server is killed and restarted; what it lost of vault-config is written again", func(ctx context.Context, e *Env, r *Result) error {
				nodes := e.Lab.VaultNodes()
				start := time.Now()
				for _, n := range nodes {
					if err := n.Kill(ctx); err != nil {
						return err
					}
				}
				lost, err := e.restoreVault(ctx, nodes)
				if err != nil {
					return err
				}
				r.Figure("restart-seconds", since(start))
				r.Note("after its restart the dev server %s", lost)
				return e.configureDatabaseEngine(ctx)
			}},
			{"orphans", "Vault lists none of the leases; their roles are still in Postgres and still valid (the orphans)", func(ctx context.Context, e *Env, r *Result) error {
				leases, err := e.countLeases(ctx)
				if err != nil {
					return err
				}
				orphans, err := e.countRolesNamed(ctx, usersOf(minted))
				if err != nil {
					return err
				}
				until, err := e.earliestValidUntil(ctx, usersOf(minted))
				if err != nil {
					return err
				}
				r.Figure("leases-after-restart", float64(leases))
				r.Figure("orphaned-roles", float64(orphans))
				r.Claim("C05-17", leases == 0, fmt.Sprintf("after a restart the dev server lists %d of the %d leases it issued; %d of their Postgres roles remain", leases, len(minted), orphans))
				_, loginErr := e.queryBooks(ctx, kept.user, kept.pass)
				if loginErr != nil && pgAuthFailure(loginErr) == "" {
					return fmt.Errorf("log in with an orphaned credential: %w", loginErr)
				}
				logsIn := 0.0
				if loginErr == nil {
					logsIn = 1
				}
				r.Figure("orphan-logs-in", logsIn)
				if orphans > 0 && !until.IsZero() {
					r.Figure("orphans-valid-for-seconds", time.Until(until).Seconds())
					r.Note("finding: %d roles minted before the restart remain in Postgres with no lease in Vault and are never dropped; one of them logs in and reads books: %v; VALID UNTIL ends the first %.0fs from now", orphans, loginErr == nil, time.Until(until).Seconds())
				}
				return nil
			}},
			{"operator-drops-orphans", "the orphaned roles are dropped with the fixture's revocation statements: none left", func(ctx context.Context, e *Env, r *Result) error {
				if err := e.dropRoles(ctx, usersOf(minted)); err != nil {
					return err
				}
				left, err := e.countRolesNamed(ctx, usersOf(minted))
				if err != nil {
					return err
				}
				if left != 0 {
					return fmt.Errorf("%d of the orphaned roles are still in Postgres", left)
				}
				return nil
			}},
		}}
}

func usersOf(creds []mintedCred) []string {
	out := make([]string, 0, len(creds))
	for _, c := range creds {
		out = append(out, c.user)
	}
	return out
}

// dropRoles runs the database role's revocation statements (as Vault would on revoke) for each
// of names that Postgres still has.
func (e *Env) dropRoles(ctx context.Context, names []string) error {
	_, _, _, _, roleData, err := dbSetup("")
	if err != nil {
		return err
	}
	tmpl, _ := roleData["revocation_statements"].([]string)
	if len(tmpl) == 0 {
		return fmt.Errorf("the fixture's database role has no revocation statements")
	}
	for _, name := range names {
		n, err := e.countRolesNamed(ctx, []string{name})
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		var stmts []string
		for _, t := range tmpl {
			stmts = append(stmts, strings.ReplaceAll(t, "{{name}}", name))
		}
		if err := e.pgAdminExec(ctx, stmts...); err != nil {
			return err
		}
	}
	return nil
}

// earliestValidUntil is the earliest VALID UNTIL among the roles named (zero if none has one).
func (e *Env) earliestValidUntil(ctx context.Context, names []string) (time.Time, error) {
	var first time.Time
	for _, name := range names {
		until, ok, err := e.roleValidUntil(ctx, name)
		if err != nil {
			return time.Time{}, err
		}
		if ok && !until.IsZero() && (first.IsZero() || until.Before(first)) {
			first = until
		}
	}
	return first, nil
}
