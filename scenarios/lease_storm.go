package scenarios

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/lab"
)

// Shape of the lease storm (Env.Leases = N in all):
//   - up to stormESOMax (N/10) credentials are minted by ESO, one ExternalSecret each on the
//     fixture's VaultDynamicSecret generator;
//   - N/4 are minted through the API after the restart with a stormExpiryTTL lease, and left
//     to expire (Vault's expiration manager revokes them);
//   - the rest are minted through the API with a stormKeepTTL lease, outlive the restart of
//     every node and are revoked with sys/leases/revoke-prefix.
const (
	stormConcurrency = 16 // API mints in flight at once
	stormESOMax      = 50
	stormKeepTTL     = time.Hour
	stormExpiryTTL   = time.Minute
	stormESOLabel    = "secretslab.dev/lease-storm"
)

// stormWait bounds a wait on n leases: the named timeout plus 100 ms a lease (at least 10
// a second), so a bench with thousands is not cut short by a timeout sized for CI.
func stormWait(base time.Duration, n int) time.Duration {
	return base + time.Duration(n)*100*time.Millisecond
}

// stormPlan splits n leases into ESO-minted, expiring and kept (revoked by prefix).
func stormPlan(n int) (eso, expiry, keep int) {
	eso = min(n/10, stormESOMax)
	expiry = n / 4
	return eso, expiry, n - eso - expiry
}

// leaseStorm: Env.Leases dynamic leases, minted through ESO and the API; every Vault node
// restarted with them alive (Raft storage keeps them); a part left to expire, the rest revoked
// by prefix; Postgres is left with no minted role. Rates, durations and Vault's peak memory are
// figures, never timed assertions.
func leaseStorm() Scenario {
	var survived, esoN, expN, keepN int
	var peak peakMemory
	var revokeStart time.Time
	var curve *stormCurve
	return Scenario{Name: "lease-storm", Title: "N dynamic leases (ESO generators and the API) across a restart of every Vault node; expiry and revoke-prefix; no orphaned Postgres roles",
		Needs: []string{"vault-config"}, Requires: []Requirement{VaultHA, Disruptive}, Checks: []Check{
			{"mint", "N dynamic credentials are minted: some by ESO generators, the rest through the API with bounded concurrency", func(ctx context.Context, e *Env, r *Result) error {
				esoN, expN, keepN = stormPlan(e.Leases)
				curve = startStormCurve(ctx, e)
				e.Defer("stop sampling the storm's curve", func(context.Context) error { curve.stop(); return nil })
				if err := e.configureDatabaseEngine(ctx); err != nil {
					return err
				}
				mount, _, _, role, _, err := dbSetup("")
				if err != nil {
					return err
				}
				if err := e.createStormReaders(ctx); err != nil {
					return err
				}
				e.Defer("drop the Postgres group role "+stormReaders, e.dropStormReaders)
				e.Defer("revoke every lease under "+mount+"/creds/"+role+" (without sync) and wait until Vault lists none", func(ctx context.Context) error {
					if err := e.revokePrefixAsync(ctx); err != nil {
						return err
					}
					return waitFor(ctx, "Vault to list no lease under the database role", e.Timeouts.Cleanup, func(ctx context.Context) (bool, error) {
						n, err := e.countLeases(ctx)
						return err == nil && n == 0, err
					})
				})
				e.Defer("put "+mount+"/roles/"+role+" back to the fixture's statements and the suite's lease TTL", e.configureDatabaseEngine)
				if err := e.setStormRole(ctx, stormKeepTTL); err != nil {
					return err
				}
				r.Note("the storm's roles get SELECT through the group role %s: the chapter's statements GRANT on every table to each role, and a table's ACL must fit one 8 kB page, which caps live credentials near 2,440", stormReaders)
				r.Figure("leases-planned", float64(e.Leases))
				r.Figure("eso-leases", float64(esoN))
				start := time.Now()
				var esoErr, apiErr error
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); esoErr = e.stormESO(ctx, esoN) }()
				go func() { defer wg.Done(); _, apiErr = e.mintMany(ctx, keepN) }()
				wg.Wait()
				took := since(start)
				if err := errorsJoin2(esoErr, apiErr); err != nil {
					if n, cerr := e.countMintedRoles(ctx); cerr == nil {
						r.Figure("minted-before-error", float64(n))
					}
					return err
				}
				r.Figure("mint-seconds", took)
				r.Figure("mint-per-second", float64(esoN+keepN)/took)
				n, err := e.countMintedRoles(ctx)
				if err != nil {
					return err
				}
				r.Figure("roles", float64(n))
				peak.sample(ctx, e)
				if n < esoN+keepN {
					return fmt.Errorf("%d minted roles in Postgres, want at least %d (%d by ESO, %d through the API)", n, esoN+keepN, esoN, keepN)
				}
				r.Note("%d minted by %d ExternalSecrets on the generator, %d through the API (%d at once) in %.1fs", esoN, esoN, keepN, stormConcurrency, took)
				return nil
			}},
			{"restart", "every Vault node is killed, restarted and unsealed; one becomes active, then 3 healthy voters", func(ctx context.Context, e *Env, r *Result) error {
				peak.sample(ctx, e) // the processes about to go: their peak includes the mint
				start := time.Now()
				if curve != nil {
					curve.mark("restart")
				}
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
				if _, err := vaultops.WaitHealthyVoters(ctx, e.Lab.Vault(), 3, e.Timeouts.Rejoin); err != nil {
					return err
				}
				r.Figure("restart-voters-seconds", since(start))
				if curve != nil {
					curve.mark("3 voters")
				}
				return nil
			}},
			{"leases-survive", "Vault still lists every lease after the restart", func(ctx context.Context, e *Env, r *Result) error {
				n, err := e.countLeases(ctx)
				if err != nil {
					return err
				}
				r.Figure("leases", float64(n))
				survived = n
				if n < esoN+keepN {
					return fmt.Errorf("%d leases after the restart, want at least %d", n, esoN+keepN)
				}
				return nil
			}},
			{"expiry", "N/4 more credentials with a short lease expire: Vault revokes each and Postgres drops each role", func(ctx context.Context, e *Env, r *Result) error {
				if expN == 0 {
					r.Skip("N/4 is 0: no lease is left to expire")
					return nil
				}
				if err := e.setStormRole(ctx, stormExpiryTTL); err != nil {
					return err
				}
				start := time.Now()
				minted, err := e.mintMany(ctx, expN)
				if err != nil {
					return err
				}
				if err := e.setStormRole(ctx, stormKeepTTL); err != nil {
					return err
				}
				r.Figure("expiry-mint-per-second", float64(expN)/since(start))
				var first, last time.Time
				for _, c := range minted {
					exp := c.issued.Add(c.ttl)
					if first.IsZero() || exp.Before(first) {
						first = exp
					}
					if exp.After(last) {
						last = exp
					}
				}
				r.Figure("expiry-lease-ttl-seconds", minted[0].ttl.Seconds())
				ids, names := map[string]bool{}, usersOf(minted)
				for _, c := range minted {
					ids[c.lease] = true
				}
				leftLeases, leftRoles := -1, -1
				err = waitFor(ctx, fmt.Sprintf("Vault to revoke the %d expired leases and Postgres to have none of their roles", expN), time.Until(last)+stormWait(e.Timeouts.Revoke, expN), func(ctx context.Context) (bool, error) {
					all, err := e.leaseIDs(ctx)
					if err != nil {
						return false, err
					}
					leftLeases = 0
					for _, id := range all {
						if ids[id] {
							leftLeases++
						}
					}
					if leftLeases > 0 {
						return false, nil
					}
					leftRoles, err = e.countRolesNamed(ctx, names)
					return err == nil && leftRoles == 0, err
				})
				done := time.Now()
				peak.sample(ctx, e)
				r.Figure("expiry-leases-left", float64(leftLeases))
				r.Figure("expiry-roles-left", float64(leftRoles))
				if err != nil {
					return err
				}
				// from the first expiry to the last revocation: the rate Vault's expiration
				// manager achieved (the lag after the last expiry is a figure of its own)
				span := done.Sub(first).Seconds()
				r.Figure("expiry-revoke-per-second", float64(expN)/span)
				r.Figure("expiry-lag-seconds", done.Sub(last).Seconds())
				r.Note("%d leases of %.0fs expired between %s and %s (as they were minted); all revoked and their roles dropped %.1fs after the last expiry: expiry-revoke-per-second is bounded by the rate the expiries came, expiry-lag-seconds says how far Vault fell behind",
					expN, minted[0].ttl.Seconds(), first.Format("15:04:05"), last.Format("15:04:05"), done.Sub(last).Seconds())
				return nil
			}},
			{"revoke-prefix", "the storm's ExternalSecrets are deleted; sys/leases/revoke-prefix revokes every remaining lease", func(ctx context.Context, e *Env, r *Result) error {
				if err := e.deleteStormESO(ctx, esoN); err != nil {
					return err
				}
				n, err := e.countLeases(ctx)
				if err != nil {
					return err
				}
				revokeStart = time.Now()
				if curve != nil {
					curve.mark("revoke-prefix")
				}
				rctx, cancel := context.WithTimeout(ctx, stormWait(e.Timeouts.Revoke, n))
				defer cancel()
				if err := e.revokePrefixAsync(rctx); err != nil {
					return err
				}
				r.Figure("revoke-prefix-request-seconds", since(revokeStart))
				left := -1
				err = waitFor(ctx, "Vault to list no lease under the database role", stormWait(e.Timeouts.Revoke, n), func(ctx context.Context) (bool, error) {
					left, err = e.countLeases(ctx)
					return err == nil && left == 0, err
				})
				took := since(revokeStart)
				r.Figure("revoked", float64(n))
				r.Figure("revoke-prefix-seconds", took)
				if err != nil {
					return fmt.Errorf("%d leases left: %w", left, err)
				}
				r.Figure("revoke-per-second", float64(n)/took)
				return nil
			}},
			{"settle", "Postgres drops every minted role: none orphaned", func(ctx context.Context, e *Env, r *Result) error {
				if revokeStart.IsZero() {
					return fmt.Errorf("revoke-prefix did not run")
				}
				left := -1
				err := waitFor(ctx, "pg_roles to hold none of the database role's minted users", stormWait(e.Timeouts.Revoke, e.Leases), func(ctx context.Context) (bool, error) {
					n, err := e.countMintedRoles(ctx)
					left = n
					return err == nil && n == 0, err
				})
				r.Figure("settle-seconds", since(revokeStart))
				r.Figure("orphaned-roles", float64(left))
				if curve != nil {
					curve.finish(r)
				}
				peak.sample(ctx, e)
				peak.record(r)
				leases, lerr := e.countLeases(ctx)
				if lerr == nil && (err == nil || left > 0) { // both counts read: an observation
					r.Claim("C15-18", survived >= esoN+keepN && left == 0 && leases == 0, fmt.Sprintf("%d leases survived the restart of every node (%d expected); after expiry and revoke-prefix %d leases and %d minted roles remain", survived, esoN+keepN, leases, left))
				}
				if err != nil {
					return fmt.Errorf("%d minted roles left: %w", left, err)
				}
				if lerr != nil || leases != 0 {
					return fmt.Errorf("%d leases remain (%v)", leases, lerr)
				}
				return nil
			}},
		}}
}

// revokePrefixAsync asks Vault to revoke every lease of the database role without waiting
// for the revocations (sync=false); count the leases to know when they are done. Even so
// Vault marks each lease for revocation inside the request (one storage write a lease), so
// with thousands the request outlasts the lab client's 30 s timeout: it is sent by a copy of
// the client without one, bounded by ctx alone.
func (e *Env) revokePrefixAsync(ctx context.Context) error {
	mount, _, _, role, _, err := dbSetup("")
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		return fmt.Errorf("revoke-prefix: the caller's context has no deadline")
	}
	// a client of its own: api.DefaultConfig's http.Client (60 s timeout) is a new one, which
	// a Clone would share with the lab's client
	cfg := vault.DefaultConfig()
	if cfg.Error != nil {
		return cfg.Error
	}
	lc := e.Lab.Vault()
	cfg.Address, cfg.MaxRetries, cfg.Timeout, cfg.HttpClient.Timeout = lc.Address(), 0, 0, 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		return err
	}
	c.ClearNamespace()
	c.SetToken(lc.Token())
	_, err = c.Logical().WriteWithContext(ctx, "sys/leases/revoke-prefix/"+mount+"/creds/"+role, map[string]any{"sync": false})
	if err != nil {
		return fmt.Errorf("revoke-prefix %s/creds/%s: %s", mount, role, e.Lab.Secrets().String(err.Error()))
	}
	return nil
}

func errorsJoin2(a, b error) error {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return fmt.Errorf("%w; %w", a, b)
}

// stormReaders is the Postgres group role the storm's minted roles join for SELECT on the
// bookstore's tables. The chapter's creation statements GRANT SELECT on every table to each
// minted role: one entry per live role in the table's ACL (pg_class.relacl), which has no
// TOAST table and must fit one 8 kB heap page. With them Postgres refused the 2,444th live
// role (SQLSTATE 54000 "row is too big: size 8168, maximum size 8160", N = 5,000): a ceiling
// of the chapter's SQL, not of Vault. The storm measures Vault's leases, so its roles get one
// GRANT of this role instead (pg_auth_members has a row per member); `dynamic` keeps the
// chapter's statements.
const stormReaders = "secretslab_storm_readers"

// createStormReaders creates stormReaders (NOLOGIN) with SELECT on every table, replacing one
// an interrupted run left.
func (e *Env) createStormReaders(ctx context.Context) error {
	if err := e.dropStormReaders(ctx); err != nil {
		return err
	}
	return e.pgAdminExec(ctx, "create role "+stormReaders+" nologin", "grant select on all tables in schema public to "+stormReaders)
}

// dropStormReaders drops stormReaders and its grants, if it exists.
func (e *Env) dropStormReaders(ctx context.Context) error {
	n, err := e.countPgRoles(ctx, "rolname = $1", stormReaders)
	if err != nil || n == 0 {
		return err
	}
	return e.pgAdminExec(ctx, "drop owned by "+stormReaders, "drop role "+stormReaders)
}

// setStormRole writes the database role with default_ttl ttl and the fixture's statements,
// the GRANTs on tables replaced by membership of stormReaders.
func (e *Env) setStormRole(ctx context.Context, ttl time.Duration) error {
	mount, _, _, role, roleData, err := dbSetup("")
	if err != nil {
		return err
	}
	stmts, _ := roleData["creation_statements"].([]string)
	if roleData["creation_statements"], err = grantThroughGroup(stmts, stormReaders); err != nil {
		return fmt.Errorf("%s/roles/%s: %w", mount, role, err)
	}
	roleData["default_ttl"] = ttl.String()
	_, err = e.writeChecked(ctx, mount+"/roles/"+role, roleData)
	return err
}

// grantThroughGroup replaces each "GRANT <privileges> ON ... TO ..." of creation statements
// by one GRANT of group to the minted role; the fixture must have at least one.
func grantThroughGroup(stmts []string, group string) ([]string, error) {
	var out []string
	replaced := false
	for _, s := range stmts {
		u := strings.ToUpper(strings.TrimSpace(s))
		if strings.HasPrefix(u, "GRANT ") && strings.Contains(u, " ON ") {
			if !replaced {
				out = append(out, `GRANT "`+group+`" TO "{{name}}";`)
			}
			replaced = true
			continue
		}
		out = append(out, s)
	}
	if !replaced {
		return nil, fmt.Errorf("no GRANT ... ON in the creation statements %q to replace by membership of %s", stmts, group)
	}
	return out, nil
}

// mintedCred is one credential the storm minted through the API (the password is only
// registered with the lab's secrets, never kept).
type mintedCred struct {
	user, lease string
	issued      time.Time // when the read returned (the lease's issue time is a little earlier)
	ttl         time.Duration
}

// mintMany reads MOUNT/creds/ROLE n times, stormConcurrency at once.
func (e *Env) mintMany(ctx context.Context, n int) ([]mintedCred, error) {
	mount, _, _, role, _, err := dbSetup("")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, stormWait(e.Timeouts.Sync, n))
	defer cancel()
	client := e.Lab.Vault()
	out := make([]mintedCred, n)
	passwords := make([]string, n)
	jobs := make(chan int)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < min(stormConcurrency, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				s, err := client.Logical().ReadWithContext(ctx, mount+"/creds/"+role)
				if err == nil && (s == nil || s.LeaseID == "") {
					err = fmt.Errorf("%s/creds/%s returned no lease", mount, role)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("credential %d of %d: %s", i+1, n, e.Lab.Secrets().String(err.Error()))
					}
					mu.Unlock()
					continue
				}
				u, _ := s.Data["username"].(string)
				passwords[i], _ = s.Data["password"].(string)
				out[i] = mintedCred{user: u, lease: s.LeaseID, issued: time.Now(), ttl: time.Duration(s.LeaseDuration) * time.Second}
			}
		}()
	}
	for i := 0; i < n; i++ {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	e.Lab.Secrets().Add(passwords...) // one call: the set is rebuilt once
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("minting %d credentials (%s at most): %w", n, stormWait(e.Timeouts.Sync, n), err)
	}
	return out, nil
}

// stormESO applies the fixture's VaultDynamicSecret generator and n ExternalSecrets on it
// (labelled stormESOLabel), and waits until every one is Ready.
func (e *Env) stormESO(ctx context.Context, n int) error {
	if n == 0 {
		return nil
	}
	gen, err := e.stormGenerator(ctx)
	if err != nil {
		return err
	}
	tmpl, err := e.stormTemplate(ctx)
	if err != nil {
		return err
	}
	if err := e.Kube.Apply(ctx, gen); err != nil {
		return err
	}
	e.Defer("delete the generator "+gen.GetName()+" (the storm's ExternalSecrets first)", func(ctx context.Context) error {
		if err := e.deleteStormESO(ctx, n); err != nil {
			return err
		}
		return e.Kube.Delete(ctx, gen)
	})
	var list []*unstructured.Unstructured
	for _, name := range stormNames(n) {
		es := tmpl.DeepCopy()
		es.SetName(name)
		es.SetLabels(map[string]string{stormESOLabel: "1"})
		_ = unstructured.SetNestedField(es.Object, name, "spec", "target", "name")
		list = append(list, es)
	}
	if err := e.Kube.Apply(ctx, list...); err != nil {
		return err
	}
	ready := 0
	err = waitFor(ctx, fmt.Sprintf("the %d storm ExternalSecrets to be Ready", n), stormWait(e.Timeouts.Sync, 10*n), func(ctx context.Context) (bool, error) {
		ready = 0
		for _, es := range list {
			cur, err := e.Kube.Get(ctx, es)
			if err != nil {
				return false, err
			}
			if c, ok := conditionOf(cur, "Ready"); ok && c.Status == "True" {
				ready++
			}
		}
		return ready == n, nil
	})
	if err != nil {
		return fmt.Errorf("%d of %d storm ExternalSecrets Ready: %w", ready, n, err)
	}
	// their credentials are in Secrets: register them, as every minted secret is
	var vals []string
	for _, es := range list {
		s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, es.GetName(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		vals = append(vals, string(s.Data["password"]))
	}
	e.Lab.Secrets().Add(vals...)
	return nil
}

// stormGenerator is the fixture's VaultDynamicSecret generator.
func (e *Env) stormGenerator(ctx context.Context) (*unstructured.Unstructured, error) {
	all, err := e.objects(sec + "30-externalsecret-dynamic-db.yaml")
	if err != nil {
		return nil, err
	}
	for _, o := range all {
		if o.GetKind() == "VaultDynamicSecret" {
			return o, nil
		}
	}
	return nil, fmt.Errorf("the 30- fixture has no VaultDynamicSecret generator")
}

// stormTemplate is the fixture's ExternalSecret on the generator, which the storm's copy.
func (e *Env) stormTemplate(ctx context.Context) (*unstructured.Unstructured, error) {
	all, err := e.objects(sec + "30-externalsecret-dynamic-db.yaml")
	if err != nil {
		return nil, err
	}
	for _, o := range all {
		if o.GetKind() == "ExternalSecret" && hasGeneratorRef(o) {
			return o, nil
		}
	}
	return nil, fmt.Errorf("the 30- fixture has no ExternalSecret on a generator")
}

func hasGeneratorRef(es *unstructured.Unstructured) bool {
	from, _, _ := unstructured.NestedSlice(es.Object, "spec", "dataFrom")
	for _, f := range from {
		if m, ok := f.(map[string]any); ok {
			if _, ok, _ := unstructured.NestedMap(m, "sourceRef", "generatorRef"); ok {
				return true
			}
		}
	}
	return false
}

// deleteStormESO deletes the storm's ExternalSecrets (stormNames(n)) and waits until their
// Secrets are gone; absent ones are fine.
func (e *Env) deleteStormESO(ctx context.Context, n int) error {
	tmpl, err := e.stormTemplate(ctx)
	if err != nil {
		return err
	}
	for _, name := range stormNames(n) {
		es := tmpl.DeepCopy()
		es.SetName(name)
		if err := e.Kube.Delete(ctx, es); err != nil {
			return err
		}
	}
	for _, name := range stormNames(n) {
		if err := e.Kube.WaitGone(ctx, secretObj(name), e.Timeouts.Gone); err != nil {
			return err
		}
	}
	return nil
}

func stormNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("lease-storm-%04d", i)
	}
	return out
}

// countRolesNamed counts the Postgres roles among names.
func (e *Env) countRolesNamed(ctx context.Context, names []string) (int, error) {
	return e.countPgRoles(ctx, "rolname = any($1)", names)
}

// peakMemory keeps the highest peak resident memory seen of each Vault server (a node
// restarted is a new process: its peak starts again, so samples are taken before and after).
type peakMemory struct {
	max  map[string]int64
	how  string
	errs []string
}

func (p *peakMemory) sample(ctx context.Context, e *Env) {
	got, how, err := e.vaultPeakMemory(ctx)
	if err != nil {
		p.errs = append(p.errs, err.Error())
		return
	}
	if p.max == nil {
		p.max = map[string]int64{}
	}
	p.how = how
	for k, v := range got {
		p.max[k] = max(p.max[k], v)
	}
}

// record writes vault-peak-rss-mb (the highest of any node), one figure per node, and how.
func (p *peakMemory) record(r *Result) {
	if len(p.max) == 0 {
		r.Note("Vault's peak memory: unavailable (%s)", strings.Join(p.errs, "; "))
		return
	}
	var top int64
	names := slices2(maps.Keys(p.max))
	var parts []string
	for _, n := range names {
		top = max(top, p.max[n])
		r.Figure("peak-rss-mb-"+n, float64(p.max[n])/(1<<20))
		parts = append(parts, fmt.Sprintf("%s %.0f MiB", n, float64(p.max[n])/(1<<20)))
	}
	r.Figure("vault-peak-rss-mb", float64(top)/(1<<20))
	r.Note("Vault's peak memory (%s): %s", p.how, strings.Join(parts, ", "))
}

func slices2(seq func(func(string) bool)) []string {
	var out []string
	seq(func(s string) bool { out = append(out, s); return true })
	sort.Strings(out)
	return out
}

// vaultPeakMemory reads each Vault server's peak memory: from the lab when it can
// (embedded: VmHWM), else the node's cgroup as the node sees it (kind: the pod's
// memory.peak, cgroup v2, or memory.max_usage_in_bytes, v1).
func (e *Env) vaultPeakMemory(ctx context.Context) (map[string]int64, string, error) {
	if m, ok := e.Lab.(lab.VaultMemory); ok {
		return m.VaultPeakMemory(ctx)
	}
	out := map[string]int64{}
	how := ""
	for _, n := range e.Lab.VaultNodes() {
		found := false
		for _, f := range []string{"/sys/fs/cgroup/memory.peak", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes"} {
			b, err := n.ReadFile(ctx, f)
			if err != nil || len(b) == 0 {
				continue
			}
			var v int64
			if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &v); err != nil {
				continue
			}
			out[n.Name()], how, found = v, "the pod's cgroup "+f+" (the container's peak, not Vault's alone)", true
			break
		}
		if !found {
			return nil, "", fmt.Errorf("%s: neither the lab nor the node's cgroup files give its peak memory", n.Name())
		}
	}
	return out, how, nil
}
