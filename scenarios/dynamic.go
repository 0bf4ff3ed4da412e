package scenarios

import (
	"context"
	"errors"
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
// These are what the harness asks for; the checks time and report what Vault grants (the
// role's token_ttl read back, the lease's issue and expire times).
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
			e.Lab.Secrets().Add(pass, user)
			e.Defer("revoke every lease under "+mount+"/creds/"+role, e.revokeDynamic)
			r.Figure("lease-ttl-seconds", float64(s.LeaseDuration))
			r.Note("username %s, lease %s", redact.Fingerprint([]byte(user)), strings.SplitN(lease, "/", 4)[0]+"/...")
			if user == "" || pass == "" || lease == "" {
				return fmt.Errorf("the credential lacks a username, password or lease id")
			}
			pattern, err := e.mintedRolePattern(ctx)
			if err != nil {
				return err
			}
			// the chapter's example name; the random tail is not compared
			const chapterPrefix = "v-kubernet-bookstore-app-"
			r.Claim("C05-12", strings.HasPrefix(user, chapterPrefix), fmt.Sprintf("the minted username %s starts with %q: %t; it follows %q, the role's username template",
				redact.Fingerprint([]byte(user)), chapterPrefix, strings.HasPrefix(user, chapterPrefix), pattern))
			if !likeMatch(pattern, user) {
				return fmt.Errorf("the minted username %s does not match %q, the pattern derived from the role's username template", redact.Fingerprint([]byte(user)), pattern)
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
		{"revoked-login-fails", "the same login now fails: Postgres refuses the authentication", func(ctx context.Context, e *Env, r *Result) error {
			_, err := e.queryBooks(ctx, user, pass)
			if err == nil {
				r.Claim("C05-13", false, "the first login after the revoke still worked")
				return fmt.Errorf("the revoked credential still logs in")
			}
			code := pgAuthFailure(err)
			if code != "" {
				r.Claim("C05-13", true, "the first login after the revoke was refused: SQLSTATE "+code)
			}
			if code == "" {
				return fmt.Errorf("the revoked credential's login failed, but not with Postgres' authentication error (SQLSTATE 28P01 or 28000): %s", err)
			}
			r.Note("Postgres refused the login: SQLSTATE %s", code)
			return nil
		}},
		{"role-dropped", "pg_roles no longer has the minted role", func(ctx context.Context, e *Env, r *Result) error {
			n, err := e.countRoles(ctx, likeEscape(user))
			if err != nil {
				return err
			}
			r.Claim("C15-12", n == 0, fmt.Sprintf("%d role(s) of that name in pg_roles right after the revoke", n))
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
	if m, ok := mounts[mount+"/"]; !ok {
		if err := v.Sys().MountWithContext(ctx, mount, &vaultMountInput); err != nil {
			return err
		}
	} else if m.Type != vaultMountInput.Type {
		return fmt.Errorf("Vault's mount %s/ is a %s engine, not %s", mount, m.Type, vaultMountInput.Type)
	}
	if _, err := e.writeChecked(ctx, mount+"/config/"+connName, conn); err != nil {
		return err
	}
	roleData["default_ttl"] = leaseTTL.String()
	if _, err := e.writeChecked(ctx, mount+"/roles/"+role, roleData); err != nil {
		return err
	}
	return nil
}

func (e *Env) queryBooks(ctx context.Context, user, pass string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, e.Timeouts.Login)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.Lab.PostgresDSN(user, pass, string(e.State.Demo["POSTGRES_DB"])))
	if err != nil {
		return 0, e.redactErr("login: ", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "select count(*) from books").Scan(&n); err != nil {
		return 0, e.redactErr("select from books: ", err)
	}
	return n, nil
}

// pgAdmin connects to the bookstore database as the demo's superuser (the user Vault's
// database engine logs in as); the caller closes it.
func (e *Env) pgAdmin(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, e.Lab.PostgresDSN(string(e.State.Demo["POSTGRES_USER"]), string(e.State.Demo["POSTGRES_PASSWORD"]), string(e.State.Demo["POSTGRES_DB"])))
	if err != nil {
		return nil, e.redactErr("admin login: ", err)
	}
	return conn, nil
}

// pgAdminExec runs statements (no secrets in them) as the demo's superuser.
func (e *Env) pgAdminExec(ctx context.Context, stmts ...string) error {
	ctx, cancel := context.WithTimeout(ctx, e.Timeouts.Login)
	defer cancel()
	conn, err := e.pgAdmin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return e.redactErr(q+": ", err)
		}
	}
	return nil
}

// countRoles counts Postgres roles matching the LIKE pattern (likeEscape a plain name).
func (e *Env) countRoles(ctx context.Context, pattern string) (int, error) {
	return e.countPgRoles(ctx, "rolname like $1", pattern)
}

// countPgRoles counts the Postgres roles where cond (with $1 = arg) holds, as the demo's
// superuser.
func (e *Env) countPgRoles(ctx context.Context, cond string, arg any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, e.Timeouts.Login)
	defer cancel()
	conn, err := e.pgAdmin(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, "select count(*) from pg_roles where "+cond, arg).Scan(&n)
	return n, err
}

// countLeases counts the leases under MOUNT/creds/ROLE.
func (e *Env) countLeases(ctx context.Context) (int, error) {
	ids, err := e.leaseIDs(ctx)
	return len(ids), err
}

// leaseIDs lists the ids of the leases under MOUNT/creds/ROLE. Vault answers a LIST of a
// path with no keys with nothing, whether the path is right or not, so the mount and the
// role are checked first: a wrong path is an error, not "no leases".
func (e *Env) leaseIDs(ctx context.Context) ([]string, error) {
	mount, _, _, role, _, err := dbSetup("")
	if err != nil {
		return nil, err
	}
	if _, err := e.readDBRole(ctx, mount, role); err != nil {
		return nil, err
	}
	prefix := mount + "/creds/" + role
	s, err := e.Lab.Vault().Logical().ListWithContext(ctx, "sys/leases/lookup/"+prefix)
	if err != nil {
		return nil, fmt.Errorf("list sys/leases/lookup/%s: %w", prefix, err)
	}
	if s == nil {
		return nil, nil // the role exists and has no lease
	}
	keys, ok := s.Data["keys"].([]any)
	if !ok {
		return nil, fmt.Errorf("list sys/leases/lookup/%s: no keys in the answer", prefix)
	}
	var ids []string
	for _, k := range keys {
		ks, ok := k.(string)
		if !ok || ks == "" {
			return nil, fmt.Errorf("list sys/leases/lookup/%s: key %v is not a name", prefix, k)
		}
		ids = append(ids, prefix+"/"+ks)
	}
	return ids, nil
}

// The ESO routes' login loop and the tolerances of the claim's two bounds: the credential may
// die at most earlyTolerance before its lease's expire_time (Vault's expiration and Postgres'
// VALID UNTIL are second-granular) and must be dead within lateGrace after it (Vault revokes
// an expired lease asynchronously; VALID UNTIL refuses the login at once).
const (
	pollEvery      = 2 * time.Second
	earlyTolerance = 3 * time.Second
	lateGrace      = 15 * time.Second
)

// credentialLife is what the login loop saw of one credential, on the lease's clock.
type credentialLife struct {
	Issued, Expires time.Time
	LoginAfterSync  bool
	LastOK          time.Time // start of the last login that worked (zero: none)
	FirstDead       time.Time // end of the first login Postgres refused (zero: none)
}

// bounds evaluates the claim's two bounds. alive: logins worked until near Expires and none was
// refused before Expires-earlyTolerance. dead: a login was refused by Expires+lateGrace.
func (c credentialLife) bounds() (alive, dead bool) {
	alive = c.LoginAfterSync && !c.LastOK.IsZero() &&
		!c.LastOK.Before(c.Expires.Add(-earlyTolerance-2*pollEvery)) &&
		(c.FirstDead.IsZero() || !c.FirstDead.Before(c.Expires.Add(-earlyTolerance)))
	dead = !c.FirstDead.IsZero() && !c.FirstDead.After(c.Expires.Add(lateGrace))
	return alive, dead
}

// observeESORoute applies one route of the 30- fixture (the store or the generator, with
// its ExternalSecret), finds the lease of the credential ESO synced, and logs in with that
// credential right away and every 2 s until Postgres refuses it or its lease has been expired
// for lateGrace. The ESO role's token TTL is lowered first, so that a credential tied to ESO's
// token dies visibly before the lease would. Every TTL is Vault's answer, not what was asked.
func (e *Env) observeESORoute(ctx context.Context, r *Result, sourceKind, esName string) error {
	tokenTTLGot, err := e.setESOTokenTTL(ctx, tokenTTL)
	if err != nil {
		return err
	}
	r.Figure("token-ttl-seconds", tokenTTLGot.Seconds())
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
	// Lease times are on Vault's clock, which is this host's: Vault runs here on the embedded
	// backend, and in a container sharing this kernel's clock on kind.
	applied := time.Now()
	if err := e.Kube.Apply(ctx, route...); err != nil {
		return err
	}
	e.Defer("delete the "+sourceKind+" route's objects", func(ctx context.Context) error { return e.Kube.Delete(ctx, route...) })
	if _, err := e.Kube.WaitCondition(ctx, es, "Ready", e.Timeouts.Sync); err != nil {
		return err
	}
	target, _, _ := unstructured.NestedString(es.Object, "spec", "target", "name")
	if target == "" {
		target = esName
	}
	data, err := e.secretData(ctx, target)
	if err != nil {
		return err
	}
	user, pass := string(data["username"]), string(data["password"])
	e.Lab.Secrets().Add(pass, user)
	if user == "" || pass == "" {
		return fmt.Errorf("Secret %s lacks username/password (keys %v)", target, keyNames(data))
	}
	life, lease, how, err := e.credentialLease(ctx, user, applied)
	if err != nil {
		return err
	}
	r.Figure("lease-ttl-seconds", life.Expires.Sub(life.Issued).Seconds())
	r.Note("username %s; lease times from %s", redact.Fingerprint([]byte(user)), how)

	// login tries the credential: ok while it works, !ok once Postgres refuses the
	// authentication, or the read while Vault revokes the role (pgRevoked); any other error
	// is not the credential dying, and fails the check.
	login := func() (ok bool, err error) {
		_, err = e.queryBooks(ctx, user, pass)
		if err == nil {
			return true, nil
		}
		if pgRevoked(err) != "" {
			return false, nil
		}
		return false, fmt.Errorf("login with the synced credential failed, but neither with Postgres' authentication error (SQLSTATE 28P01 or 28000) nor with the revocation's insufficient_privilege (42501): %s", err)
	}
	start := time.Now()
	ok, err := login()
	if err != nil {
		return err
	}
	life.LoginAfterSync = ok
	if ok {
		life.LastOK = start
	} else {
		life.FirstDead = time.Now()
	}
	var leaseGone time.Time
	for ok && time.Now().Before(life.Expires.Add(lateGrace)) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
		if lease != "" && leaseGone.IsZero() {
			if _, gone, err := e.lookupLease(ctx, lease); err != nil {
				return err
			} else if gone {
				leaseGone = time.Now()
			}
		}
		start := time.Now()
		if ok, err = login(); err != nil {
			return err
		}
		if ok {
			life.LastOK = start
		} else {
			life.FirstDead = time.Now()
		}
	}
	alive, dead := life.bounds()
	since := func(t time.Time) float64 { return t.Sub(life.Issued).Seconds() }
	leaseTTLs := life.Expires.Sub(life.Issued).Seconds()
	r.Figure("login-after-sync", b2f(life.LoginAfterSync))
	validFor := 0.0
	if !life.LastOK.IsZero() {
		validFor = since(life.LastOK)
	}
	r.Figure("valid-seconds", validFor)
	if !life.FirstDead.IsZero() {
		r.Figure("dead-by-seconds", since(life.FirstDead))
	}
	if !leaseGone.IsZero() {
		r.Figure("lease-gone-by-seconds", since(leaseGone))
	}
	r.Figure("valid-until-expiry", b2f(alive))
	r.Figure("dead-after-expiry", b2f(dead))
	switch {
	case !life.LoginAfterSync:
		if lease == "" {
			r.Note("the synced credential was already dead when ESO reported SecretSynced, and Vault no longer had its lease")
		} else {
			r.Note("the synced credential was already dead when ESO reported SecretSynced, although Vault still had its lease")
		}
	case !life.FirstDead.IsZero() && life.FirstDead.Before(life.Expires.Add(-earlyTolerance)):
		n := fmt.Sprintf("the credential worked for at least %.0fs and was refused by %.0fs after its lease was issued: before the lease's expiry (TTL %.0fs)", validFor, since(life.FirstDead), leaseTTLs)
		if !leaseGone.IsZero() {
			n += fmt.Sprintf("; Vault had dropped the lease by %.0fs", since(leaseGone))
		}
		r.Note("%s; the ESO role's token TTL is %.0fs", n, tokenTTLGot.Seconds())
	case !dead:
		r.Note("the credential still logged in %.0fs after its lease expired (TTL %.0fs)", lateGrace.Seconds(), leaseTTLs)
	default:
		r.Note("the credential worked until %.0fs and was refused by %.0fs after its lease was issued: it lived for the lease TTL (%.0fs)", validFor, since(life.FirstDead), leaseTTLs)
	}
	via := sourceKind + " route"
	if life.LoginAfterSync {
		r.Claim("C05-15", alive, fmt.Sprintf("%s: the synced credential's last login that worked was %.0fs into its %.0fs lease", via, validFor, leaseTTLs))
	} else {
		r.Claim("C05-15", false, via+": the synced credential was already refused when ESO reported it synced")
	}
	deadHow := fmt.Sprintf("%s: still logged in %.0fs after its lease expired", via, lateGrace.Seconds())
	if dead {
		deadHow = fmt.Sprintf("%s: refused by %.0fs after issue (lease %.0fs)", via, since(life.FirstDead), leaseTTLs)
	}
	r.Claim("C05-14", dead, deadHow)
	return nil
}

// validUntilBuffer: Vault 1.17 sets a minted role's {{expiration}} (the fixture's VALID UNTIL)
// to the lease's expiry plus 5 s, "to ensure the database credential does not expire before
// the lease" (builtin/logical/database/path_creds_create.go).
const validUntilBuffer = 5 * time.Second

// credentialLease finds when the credential ESO synced for user was issued and when it
// expires, from what Vault and Postgres say. ESO does not put the lease id in the Secret, so:
// the leases of the database role issued since applied (Vault's clock) are looked up, and the
// one whose expire_time is the role's VALID UNTIL in Postgres less validUntilBuffer (the
// creation statement sets VALID UNTIL from the lease's expiration) is the credential's. Without a lease (Vault already revoked it)
// the times come from VALID UNTIL and the role's default_ttl as Vault has it; without the
// Postgres role either, the credential is gone, and its times are from the role's default_ttl
// counted from applied. It returns the lease id ("" if none) and how the times were found.
func (e *Env) credentialLease(ctx context.Context, user string, applied time.Time) (life credentialLife, lease, how string, err error) {
	ids, err := e.leaseIDs(ctx)
	if err != nil {
		return life, "", "", err
	}
	var cands []leaseInfo
	for _, id := range ids {
		l, gone, err := e.lookupLease(ctx, id)
		if err != nil {
			return life, "", "", err
		}
		if !gone && !l.Issued.Before(applied.Add(-time.Second)) {
			cands = append(cands, l)
		}
	}
	until, exists, err := e.roleValidUntil(ctx, user)
	if err != nil {
		return life, "", "", err
	}
	var pick *leaseInfo
	for i, l := range cands {
		switch {
		case exists && !until.IsZero():
			if d := l.Expires.Add(validUntilBuffer).Sub(until); d > -2*time.Second && d < 2*time.Second {
				pick = &cands[i]
			}
		case pick == nil || l.Issued.After(pick.Issued):
			pick = &cands[i]
		}
	}
	if pick != nil {
		how := fmt.Sprintf("its lease (sys/leases/lookup issue_time/expire_time; %d lease(s) issued since the route was applied)", len(cands))
		if exists && !until.IsZero() {
			how += fmt.Sprintf(", matched by the role's VALID UNTIL (%.1fs after the lease's expire_time)", until.Sub(pick.Expires).Seconds())
		}
		if pick.Renewed {
			how += "; the lease was renewed"
		}
		return credentialLife{Issued: pick.Issued, Expires: pick.Expires}, pick.ID, how, nil
	}
	mount, _, _, role, _, err := dbSetup("")
	if err != nil {
		return life, "", "", err
	}
	rd, err := e.readDBRole(ctx, mount, role)
	if err != nil {
		return life, "", "", err
	}
	ttl, ok := asNumber(rd["default_ttl"])
	if !ok || ttl <= 0 {
		return life, "", "", fmt.Errorf("%s/roles/%s has no default_ttl to time the credential by (default_ttl %v)", mount, role, rd["default_ttl"])
	}
	d := time.Duration(ttl) * time.Second
	if exists && !until.IsZero() {
		return credentialLife{Issued: until.Add(-validUntilBuffer - d), Expires: until.Add(-validUntilBuffer)}, "", fmt.Sprintf("the role's VALID UNTIL less %s and %s/roles/%s default_ttl (no lease of it found: %d lease(s) issued since the route was applied)", validUntilBuffer, mount, role, len(cands)), nil
	}
	return credentialLife{Issued: applied, Expires: applied.Add(d)}, "", fmt.Sprintf("%s/roles/%s default_ttl from when the route was applied (no lease issued since then remains, and Postgres has no such role)", mount, role), nil
}

// roleValidUntil is the Postgres role's VALID UNTIL (zero if none), and whether the role exists.
func (e *Env) roleValidUntil(ctx context.Context, user string) (time.Time, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.Timeouts.Login)
	defer cancel()
	conn, err := e.pgAdmin(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	defer conn.Close(ctx)
	var until *time.Time
	err = conn.QueryRow(ctx, "select rolvaliduntil from pg_roles where rolname = $1", user).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, e.redactErr("pg_roles: ", err)
	}
	if until == nil {
		return time.Time{}, true, nil
	}
	return *until, true, nil
}

// setESOTokenTTL sets the ESO auth role's token ttl, reads the role back, and returns the
// token TTL Vault has for it (token_ttl); a deferred cleanup restores the fixture's role.
func (e *Env) setESOTokenTTL(ctx context.Context, ttl time.Duration) (time.Duration, error) {
	name, data, err := authRole()
	if err != nil {
		return 0, err
	}
	short := map[string]any{}
	for k, v := range data {
		short[k] = v
	}
	delete(short, "ttl") // the older alias; token_ttl is Vault's name
	short["token_ttl"] = ttl.String()
	path := "auth/kubernetes/role/" + name
	e.Defer("restore "+path+" as the fixture says", func(ctx context.Context) error {
		_, err := e.Lab.Vault().Logical().WriteWithContext(ctx, path, data)
		return err
	})
	got, err := e.writeChecked(ctx, path, short)
	if err != nil {
		return 0, err
	}
	for _, k := range []string{"token_ttl", "ttl"} {
		if n, ok := asNumber(got.Data[k]); ok && n > 0 {
			return time.Duration(n) * time.Second, nil
		}
	}
	return 0, fmt.Errorf("%s reads back without a token_ttl", path)
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
	leases, err := e.countLeases(ctx)
	if err != nil {
		return err
	}
	r.Figure("leases-before-cleanup", float64(leases))
	if err := e.revokeDynamic(ctx); err != nil {
		return err
	}
	if n, err := e.countLeases(ctx); err != nil || n != 0 {
		return fmt.Errorf("after revoke-prefix: %d leases remain (%v)", n, err)
	}
	n, err := e.countMintedRoles(ctx)
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
