package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretslab/secretslab/internal/redact"
)

// Short TTLs so the dynamic scenario observes lifetimes in about two minutes; the fixture's
// values (1h lease, 15m token) are restored afterwards. The token TTL must stay above 60 s:
// ESO 0.10.4 treats a token with under 60 s left as expired and then skips revoke-self
// (pkg/provider/vault/auth.go, checkToken), which would hide how it behaves with real TTLs.
const (
	leaseTTL = 150 * time.Second
	tokenTTL = 75 * time.Second
)

// dynamic: chapter 05 step 4, dynamic Postgres credentials from Vault's database engine.
func dynamic() Scenario {
	var lease, user, pass string
	return Scenario{Name: "dynamic", Title: "dynamic Postgres credentials: mint, log in, revoke; and through ESO", Needs: []string{"vault-config"}, Checks: []Check{
		{"engine", "the database engine is configured against the bookstore's Postgres", func(ctx context.Context, e *Env, r *Result) error {
			return e.configureDatabaseEngine(ctx)
		}},
		{"mint", "the bookstore-eso role mints a credential", func(ctx context.Context, e *Env, r *Result) error {
			c, _, err := e.loginAsESO(ctx, mustAuthRoleName())
			if err != nil {
				return err
			}
			mount, _, _, role, _, err := dbSetup("")
			if err != nil {
				return err
			}
			s, err := c.Logical().ReadWithContext(ctx, mount+"/creds/"+role)
			if err != nil {
				return err
			}
			if s == nil {
				return fmt.Errorf("%s/creds/%s returned nothing", mount, role)
			}
			user, _ = s.Data["username"].(string)
			pass, _ = s.Data["password"].(string)
			lease = s.LeaseID
			e.Lab.Secrets().Add(pass)
			e.Defer("revoke every lease under "+mount+"/creds/"+role, e.revokeDynamic)
			r.Figure("lease-ttl-seconds", float64(s.LeaseDuration))
			r.Note("username %s, lease %s", redact.Fingerprint([]byte(user)), strings.SplitN(lease, "/", 4)[0]+"/...")
			if user == "" || pass == "" || lease == "" {
				return fmt.Errorf("the credential lacks a username, password or lease id")
			}
			return nil
		}},
		{"login", "the minted credential logs in and reads the books table", func(ctx context.Context, e *Env, r *Result) error {
			n, err := e.queryBooks(ctx, user, pass)
			r.Figure("books", float64(n))
			return err
		}},
		{"revoke", "the lease is revoked", func(ctx context.Context, e *Env, r *Result) error {
			return e.Lab.Vault().Sys().RevokeWithContext(ctx, lease)
		}},
		{"revoked-login-fails", "the same login now fails", func(ctx context.Context, e *Env, r *Result) error {
			if _, err := e.queryBooks(ctx, user, pass); err == nil {
				return fmt.Errorf("the revoked credential still logs in")
			}
			return nil
		}},
		{"role-dropped", "pg_roles no longer has the minted role", func(ctx context.Context, e *Env, r *Result) error {
			n, err := e.countRoles(ctx, user)
			if err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("the role %s still exists after revocation", redact.Fingerprint([]byte(user)))
			}
			return nil
		}},
		{"no-leases", "Vault lists no lease under database/creds/ROLE", func(ctx context.Context, e *Env, r *Result) error {
			n, err := e.countLeases(ctx)
			if err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("%d leases remain", n)
			}
			return nil
		}},
		{"eso-store-route", "ESO SecretStore on the database mount: does the synced credential work, and for how long?", func(ctx context.Context, e *Env, r *Result) error {
			return e.observeESORoute(ctx, r, "SecretStore", "bookstore-db-dynamic")
		}},
		{"eso-generator-route", "ESO VaultDynamicSecret generator: does the synced credential work, and for how long?", func(ctx context.Context, e *Env, r *Result) error {
			return e.observeESORoute(ctx, r, "VaultDynamicSecret", "bookstore-db-dynamic-generator")
		}},
		{"cleanup", "ESO's dynamic objects are removed, every lease revoked, no minted role left", func(ctx context.Context, e *Env, r *Result) error {
			return e.cleanupDynamic(ctx, r)
		}},
	}}
}

func (e *Env) configureDatabaseEngine(ctx context.Context) error {
	mount, connName, conn, role, roleData, err := dbSetup(e.Lab.PostgresAddrForVault())
	if err != nil {
		return err
	}
	v := e.Lab.Vault()
	mounts, err := v.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return err
	}
	if _, ok := mounts[mount+"/"]; !ok {
		if err := v.Sys().MountWithContext(ctx, mount, &vaultMountInput); err != nil {
			return err
		}
	}
	if _, err := v.Logical().WriteWithContext(ctx, mount+"/config/"+connName, conn); err != nil {
		return fmt.Errorf("write %s/config/%s: %w", mount, connName, err)
	}
	roleData["default_ttl"] = leaseTTL.String()
	if _, err := v.Logical().WriteWithContext(ctx, mount+"/roles/"+role, roleData); err != nil {
		return fmt.Errorf("write %s/roles/%s: %w", mount, role, err)
	}
	return nil
}

func (e *Env) queryBooks(ctx context.Context, user, pass string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.Lab.PostgresDSN(user, pass, string(e.State.Demo["POSTGRES_DB"])))
	if err != nil {
		return 0, fmt.Errorf("login: %s", e.Lab.Secrets().String(err.Error()))
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "select count(*) from books").Scan(&n); err != nil {
		return 0, fmt.Errorf("select from books: %w", err)
	}
	return n, nil
}

// countRoles counts Postgres roles named user (or, with a trailing %, matching it).
func (e *Env) countRoles(ctx context.Context, pattern string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.Lab.PostgresDSN(string(e.State.Demo["POSTGRES_USER"]), string(e.State.Demo["POSTGRES_PASSWORD"]), string(e.State.Demo["POSTGRES_DB"])))
	if err != nil {
		return 0, fmt.Errorf("admin login: %s", e.Lab.Secrets().String(err.Error()))
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, "select count(*) from pg_roles where rolname like $1", pattern).Scan(&n)
	return n, err
}

func (e *Env) countLeases(ctx context.Context) (int, error) {
	mount, _, _, role, _, err := dbSetup("")
	if err != nil {
		return 0, err
	}
	s, err := e.Lab.Vault().Logical().ListWithContext(ctx, "sys/leases/lookup/"+mount+"/creds/"+role)
	if err != nil || s == nil {
		return 0, err
	}
	keys, _ := s.Data["keys"].([]any)
	return len(keys), nil
}

// observeESORoute applies one route of the 30- fixture (the store or the generator, with
// its ExternalSecret), then logs in with what ESO synced right away and every 2 s until the
// login fails or the lease TTL has passed. The ESO role's token TTL is lowered first, so
// that a credential tied to ESO's token dies visibly before the lease would.
func (e *Env) observeESORoute(ctx context.Context, r *Result, sourceKind, esName string) error {
	if err := e.setESOTokenTTL(ctx, tokenTTL); err != nil {
		return err
	}
	all, err := e.objects(sec + "30-externalsecret-dynamic-db.yaml")
	if err != nil {
		return err
	}
	var route []*unstructured.Unstructured
	var es *unstructured.Unstructured
	for _, o := range all {
		if o.GetKind() == sourceKind || o.GetName() == esName {
			route = append(route, o)
		}
		if o.GetKind() == "ExternalSecret" && o.GetName() == esName {
			es = o
		}
	}
	if es == nil || len(route) < 2 {
		return fmt.Errorf("the 30- fixture has no %s with ExternalSecret %s", sourceKind, esName)
	}
	if err := e.Kube.Apply(ctx, route...); err != nil {
		return err
	}
	e.Defer("delete the "+sourceKind+" route's objects", func(ctx context.Context) error { return e.Kube.Delete(ctx, route...) })
	if _, err := e.Kube.WaitCondition(ctx, es, "Ready", e.Timeouts.Sync); err != nil {
		return err
	}
	synced := time.Now()
	target, _, _ := unstructured.NestedString(es.Object, "spec", "target", "name")
	if target == "" {
		target = esName
	}
	data, err := e.secretData(ctx, target)
	if err != nil {
		return err
	}
	user, pass := string(data["username"]), string(data["password"])
	e.Lab.Secrets().Add(pass)
	if user == "" || pass == "" {
		return fmt.Errorf("Secret %s lacks username/password (keys %v)", target, keyNames(data))
	}
	_, firstErr := e.queryBooks(ctx, user, pass)
	loginAfterSync := firstErr == nil
	validFor := 0.0
	if loginAfterSync {
		deadline := synced.Add(leaseTTL + 15*time.Second)
		for time.Now().Before(deadline) {
			if _, err := e.queryBooks(ctx, user, pass); err != nil {
				break
			}
			validFor = since(synced)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Second):
			}
		}
	}
	r.Figure("login-after-sync", b2f(loginAfterSync))
	r.Figure("valid-seconds", validFor)
	r.Figure("lease-ttl-seconds", leaseTTL.Seconds())
	r.Figure("token-ttl-seconds", tokenTTL.Seconds())
	switch {
	case !loginAfterSync:
		r.Note("the synced credential was already dead when ESO reported SecretSynced")
	case validFor < leaseTTL.Seconds()-3:
		r.Note("the credential died after about %.0fs: before the lease TTL (%.0fs), near the ESO role's token TTL (%.0fs)", validFor, leaseTTL.Seconds(), tokenTTL.Seconds())
	default:
		r.Note("the credential lived for the lease TTL")
	}
	r.Claim("ch05 §4", "a credential ESO syncs from the database engine stays valid for its lease TTL (\"a leak is dead after the lease\"; refreshInterval < lease is enough)",
		loginAfterSync && validFor >= leaseTTL.Seconds()-3)
	return nil
}

// setESOTokenTTL sets the ESO auth role's token ttl; a deferred cleanup restores the
// fixture's role.
func (e *Env) setESOTokenTTL(ctx context.Context, ttl time.Duration) error {
	name, data, err := authRole()
	if err != nil {
		return err
	}
	short := map[string]any{}
	for k, v := range data {
		short[k] = v
	}
	short["ttl"] = ttl.String()
	path := "auth/kubernetes/role/" + name
	e.Defer("restore "+path+" as the fixture says", func(ctx context.Context) error {
		_, err := e.Lab.Vault().Logical().WriteWithContext(ctx, path, data)
		return err
	})
	_, err = e.Lab.Vault().Logical().WriteWithContext(ctx, path, short)
	return err
}

// revokeDynamic revokes every lease of the database role.
func (e *Env) revokeDynamic(ctx context.Context) error {
	mount, _, _, role, _, err := dbSetup("")
	if err != nil {
		return err
	}
	return e.Lab.Vault().Sys().RevokePrefixWithContext(ctx, mount+"/creds/"+role)
}

func (e *Env) cleanupDynamic(ctx context.Context, r *Result) error {
	all, err := e.objects(sec + "30-externalsecret-dynamic-db.yaml")
	if err != nil {
		return err
	}
	if err := e.Kube.Delete(ctx, all...); err != nil {
		return err
	}
	mount, _, _, role, _, err := dbSetup("")
	if err != nil {
		return err
	}
	leases, err := e.countLeases(ctx)
	if err != nil {
		return err
	}
	r.Figure("leases-before-cleanup", float64(leases))
	if err := e.Lab.Vault().Sys().RevokePrefixWithContext(ctx, mount+"/creds/"+role); err != nil {
		return err
	}
	if n, err := e.countLeases(ctx); err != nil || n != 0 {
		return fmt.Errorf("after revoke-prefix: %d leases remain (%v)", n, err)
	}
	n, err := e.countRoles(ctx, "v-%")
	if err != nil {
		return err
	}
	r.Figure("minted-roles-left", float64(n))
	if n != 0 {
		return fmt.Errorf("%d minted Postgres roles remain after every lease was revoked", n)
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
