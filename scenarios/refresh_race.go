package scenarios

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretslab/secretslab/internal/redact"
)

// refresh-race, ch15.05's ordering rule with the TTLs scaled from hours to seconds: "2h
// refresh, 1h lease" becomes raceRefreshLong against raceLease, and its rule "refreshInterval
// <= lease_TTL / 2" becomes raceRefreshHalf. Both run side by side on the route that keeps a
// credential alive for its lease: the VaultDynamicSecret generator, with the ESO role's token
// TTL covering the lease (finding 9; the store route revokes the credential at once).
const (
	raceLease       = 20 * time.Second
	raceRefreshLong = 40 * time.Second // refresh longer than the lease (15.05 test 2, scaled)
	raceRefreshHalf = 10 * time.Second // refresh <= lease/2 (15.05's rule)
	// raceObserve covers two refreshes of the long case: two dead windows of about
	// raceRefreshLong-raceLease each, and about eight rotations of the half case.
	raceObserve = 2*raceRefreshLong + raceLease/2
	raceProbe   = time.Second // the consumer probe's period
)

// The objects refresh-race applies, derived from the 30- fixture's generator route.
const (
	raceGenerator = "refresh-race-creds"
	raceLong      = "refresh-race-long"
	raceHalf      = "refresh-race-half"
)

func refreshRace() Scenario {
	var long, half *credentialProbe
	return Scenario{Name: "refresh-race", Title: "refreshInterval against the lease: longer than the lease leaves a dead credential in the Secret; <= lease/2 never does",
		Needs: []string{"vault-config"}, Checks: []Check{
			{"setup", "the database role's lease is " + raceLease.String() + ", ESO's token TTL covers it, and two generator ExternalSecrets sync: refresh " + raceRefreshLong.String() + " and " + raceRefreshHalf.String(), func(ctx context.Context, e *Env, r *Result) error {
				return e.setupRefreshRace(ctx, r)
			}},
			{"observe", "a consumer probe logs in with the credential in each Secret every second for " + raceObserve.String(), func(ctx context.Context, e *Env, r *Result) error {
				var err error
				long, half, err = e.observeRefreshRace(ctx, r)
				return err
			}},
			{"long-refresh-dead-window", "refreshInterval " + raceRefreshLong.String() + " > lease " + raceLease.String() + ": the Secret holds a refused credential for a measured window", func(ctx context.Context, e *Env, r *Result) error {
				if long == nil {
					return fmt.Errorf("the observe check did not run")
				}
				long.figures(r)
				r.Figure("expected-window-seconds", (raceRefreshLong - raceLease).Seconds())
				r.Note("%s", long.summary())
				holds := long.Dead > 0
				r.Claim("C15-15", holds, fmt.Sprintf("refreshInterval %s with a %s lease (15.05's 2h/1h scaled): %s", raceRefreshLong, raceLease, long.summary()))
				if !holds {
					return fmt.Errorf("in %s the probe never saw the Secret's credential refused: %s", raceObserve, long.summary())
				}
				if len(long.Windows) == 0 {
					return fmt.Errorf("no dead window was closed by a refresh within %s, so none could be measured: %s", raceObserve, long.summary())
				}
				return nil
			}},
			{"half-lease-never-dead", "refreshInterval " + raceRefreshHalf.String() + " <= lease/2: the probe never sees a refused credential, across at least two rotations", func(ctx context.Context, e *Env, r *Result) error {
				if half == nil || long == nil {
					return fmt.Errorf("the observe check did not run")
				}
				half.figures(r)
				r.Note("%s", half.summary())
				if half.Rotations < 2 {
					return fmt.Errorf("only %d rotation(s) of the Secret's username in %s, want at least 2 to judge the rule: %s", half.Rotations, raceObserve, half.summary())
				}
				holds := half.Dead == 0
				r.Claim("C15-14", holds, fmt.Sprintf("refreshInterval %s, lease %s (generator route, ESO token TTL covering the lease): %s", raceRefreshHalf, raceLease, half.summary()))
				r.Claim("C05-18", holds && long.Dead > 0, fmt.Sprintf("refreshInterval %s < lease %s: %d refused login(s) in %d samples across %d rotations; refreshInterval %s > lease: %d refused. Observed with the VaultDynamicSecret generator and an ESO token TTL covering the lease; on the store route, or with a token TTL under the lease, a shorter refreshInterval is not enough (finding 9)",
					raceRefreshHalf, raceLease, half.Dead, half.Samples, half.Rotations, raceRefreshLong, long.Dead))
				if !holds {
					return fmt.Errorf("with refreshInterval <= lease/2 the probe saw the Secret's credential refused: %s", half.summary())
				}
				return nil
			}},
			{"cleanup", "the ExternalSecrets and the generator are removed, every lease revoked, no minted role left", func(ctx context.Context, e *Env, r *Result) error {
				return e.cleanupRefreshRace(ctx, r)
			}},
		}}
}

// raceObjects derives the scenario's generator and its two ExternalSecrets from the 30-
// fixture's generator route.
func (e *Env) raceObjects() (gen *unstructured.Unstructured, long, half *unstructured.Unstructured, err error) {
	all, err := e.objects(sec + "30-externalsecret-dynamic-db.yaml")
	if err != nil {
		return nil, nil, nil, err
	}
	var es *unstructured.Unstructured
	for _, o := range all {
		switch {
		case o.GetKind() == "VaultDynamicSecret":
			gen = o.DeepCopy()
		case o.GetKind() == "ExternalSecret" && o.GetName() == "bookstore-db-dynamic-generator":
			es = o
		}
	}
	if gen == nil || es == nil {
		return nil, nil, nil, fmt.Errorf("the 30- fixture has no VaultDynamicSecret with ExternalSecret bookstore-db-dynamic-generator")
	}
	gen.SetName(raceGenerator)
	mk := func(name string, refresh time.Duration) (*unstructured.Unstructured, error) {
		o := es.DeepCopy()
		o.SetName(name)
		if err := unstructured.SetNestedField(o.Object, refresh.String(), "spec", "refreshInterval"); err != nil {
			return nil, err
		}
		if err := unstructured.SetNestedField(o.Object, name, "spec", "target", "name"); err != nil {
			return nil, err
		}
		from, _, _ := unstructured.NestedSlice(o.Object, "spec", "dataFrom")
		n := 0
		for _, f := range from {
			if ref, ok, _ := unstructured.NestedMap(f.(map[string]any), "sourceRef", "generatorRef"); ok && ref["kind"] == "VaultDynamicSecret" {
				_ = unstructured.SetNestedField(f.(map[string]any), raceGenerator, "sourceRef", "generatorRef", "name")
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("ExternalSecret bookstore-db-dynamic-generator has %d VaultDynamicSecret generatorRefs, want 1", n)
		}
		if err := unstructured.SetNestedSlice(o.Object, from, "spec", "dataFrom"); err != nil {
			return nil, err
		}
		return o, nil
	}
	if long, err = mk(raceLong, raceRefreshLong); err != nil {
		return nil, nil, nil, err
	}
	if half, err = mk(raceHalf, raceRefreshHalf); err != nil {
		return nil, nil, nil, err
	}
	return gen, long, half, nil
}

// setupRefreshRace configures the database engine with the scaled lease (the role's previous
// TTLs are put back afterwards), sets the ESO role's token TTL to cover it, and applies the
// generator and both ExternalSecrets.
func (e *Env) setupRefreshRace(ctx context.Context, r *Result) error {
	if err := e.configureDatabaseEngine(ctx); err != nil {
		return err
	}
	mount, _, _, role, roleData, err := dbSetup("")
	if err != nil {
		return err
	}
	path := mount + "/roles/" + role
	prev, err := e.readDBRole(ctx, mount, role)
	if err != nil {
		return err
	}
	restore := map[string]any{}
	for k, v := range roleData {
		restore[k] = v
	}
	for _, k := range []string{"default_ttl", "max_ttl"} {
		if n, ok := asNumber(prev[k]); ok {
			restore[k] = fmt.Sprintf("%ds", int64(n))
		}
	}
	scaled := map[string]any{}
	for k, v := range roleData {
		scaled[k] = v
	}
	scaled["default_ttl"] = raceLease.String()
	e.Defer("restore "+path+"'s TTLs as they were", func(ctx context.Context) error {
		_, err := e.Lab.Vault().Logical().WriteWithContext(ctx, path, restore)
		return err
	})
	got, err := e.writeChecked(ctx, path, scaled)
	if err != nil {
		return err
	}
	leaseGot, ok := asNumber(got.Data["default_ttl"])
	if !ok || time.Duration(leaseGot)*time.Second != raceLease {
		return fmt.Errorf("%s reads back default_ttl %v, want %s", path, got.Data["default_ttl"], raceLease)
	}
	r.Figure("lease-ttl-seconds", leaseGot)
	tokenGot, err := e.setESOTokenTTL(ctx, tokenTTL)
	if err != nil {
		return err
	}
	r.Figure("token-ttl-seconds", tokenGot.Seconds())
	if tokenGot < raceLease {
		return fmt.Errorf("Vault grants the ESO role a token TTL of %s, under the %s lease: the credential would die with the token (finding 9)", tokenGot, raceLease)
	}
	gen, long, half, err := e.raceObjects()
	if err != nil {
		return err
	}
	e.Defer("revoke every lease under "+mount+"/creds/"+role, e.revokeDynamic)
	if err := e.Kube.Apply(ctx, gen, long, half); err != nil {
		return err
	}
	e.Defer("delete the refresh-race generator and ExternalSecrets", func(ctx context.Context) error {
		return e.Kube.Delete(ctx, long, half, gen)
	})
	for _, es := range []*unstructured.Unstructured{long, half} {
		if _, err := e.Kube.WaitCondition(ctx, es, "Ready", e.Timeouts.Sync); err != nil {
			return err
		}
	}
	// the lease Vault granted for what ESO minted: every lease of the role now is one of them
	ids, err := e.leaseIDs(ctx)
	if err != nil {
		return err
	}
	granted := 0.0
	for _, id := range ids {
		l, gone, err := e.lookupLease(ctx, id)
		if err != nil {
			return err
		}
		if !gone {
			granted = max(granted, l.Expires.Sub(l.Issued).Seconds())
		}
	}
	if granted == 0 {
		return fmt.Errorf("Vault lists no live lease under %s/creds/%s after both ExternalSecrets synced", mount, role)
	}
	r.Figure("granted-lease-seconds", granted)
	if d := time.Duration(granted * float64(time.Second)); d > raceLease+2*time.Second {
		return fmt.Errorf("Vault granted a %s lease, not the %s the role asks for", d, raceLease)
	}
	return nil
}

// credentialProbe is what the consumer probe saw of one Secret: each second it reads the
// Secret and logs in with the credential it holds.
type credentialProbe struct {
	Secret    string
	Samples   int
	OK, Dead  int // logins that worked; logins Postgres refused (or the revocation's 42501)
	Rotations int // changes of the Secret's username after the first sample
	Windows   []time.Duration
	// OpenSince is the start of a dead window still open when the probe stopped (zero: none).
	OpenSince time.Time
	Codes     map[string]int // SQLSTATEs of the refused logins

	user       string
	deadSince  time.Time
	stoppedAt  time.Time
	firstStart time.Time
}

// DeadSeconds is the time the Secret held a refused credential: closed windows, and an open
// one up to when the probe stopped.
func (p *credentialProbe) DeadSeconds() float64 {
	var d time.Duration
	for _, w := range p.Windows {
		d += w
	}
	if !p.OpenSince.IsZero() {
		d += p.stoppedAt.Sub(p.OpenSince)
	}
	return d.Seconds()
}

func (p *credentialProbe) maxWindow() time.Duration {
	var m time.Duration
	for _, w := range p.Windows {
		m = max(m, w)
	}
	return m
}

func (p *credentialProbe) figures(r *Result) {
	r.Figure("samples", float64(p.Samples))
	r.Figure("refused-logins", float64(p.Dead))
	r.Figure("rotations", float64(p.Rotations))
	r.Figure("dead-seconds", p.DeadSeconds())
	r.Figure("dead-windows", float64(len(p.Windows)))
	if len(p.Windows) > 0 {
		r.Figure("dead-window-max-seconds", p.maxWindow().Seconds())
	}
}

func (p *credentialProbe) summary() string {
	s := fmt.Sprintf("Secret %s: %d samples, %d logins worked, %d refused %v, %d rotations of the username, %.0fs with a dead credential in the Secret",
		p.Secret, p.Samples, p.OK, p.Dead, p.Codes, p.Rotations, p.DeadSeconds())
	if len(p.Windows) > 0 {
		var ws []string
		for _, w := range p.Windows {
			ws = append(ws, fmt.Sprintf("%.0fs", w.Seconds()))
		}
		s += fmt.Sprintf(" (closed windows %v", ws)
		if !p.OpenSince.IsZero() {
			s += fmt.Sprintf(", one open for %.0fs at the end", p.stoppedAt.Sub(p.OpenSince).Seconds())
		}
		s += ")"
	} else if !p.OpenSince.IsZero() {
		s += " (one window, still open at the end)"
	}
	return s
}

// sample reads the Secret and logs in with what it holds. A login error that is neither
// Postgres refusing the credential nor the revocation's 42501 fails the probe.
func (e *Env) sample(ctx context.Context, p *credentialProbe) error {
	start := time.Now()
	if p.firstStart.IsZero() {
		p.firstStart = start
	}
	s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, p.Secret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("Secret %s is gone", p.Secret)
	}
	if err != nil {
		return err
	}
	user, pass := string(s.Data["username"]), string(s.Data["password"])
	if user == "" || pass == "" {
		return fmt.Errorf("Secret %s lacks username/password (keys %v)", p.Secret, keyNames(s.Data))
	}
	e.Lab.Secrets().Add(pass)
	if p.user != "" && user != p.user {
		p.Rotations++
	}
	p.user = user
	p.Samples++
	_, err = e.queryBooks(ctx, user, pass)
	switch code := pgRevoked(err); {
	case err == nil:
		p.OK++
		if !p.deadSince.IsZero() {
			p.Windows = append(p.Windows, start.Sub(p.deadSince))
			p.deadSince = time.Time{}
		}
	case code != "":
		p.Dead++
		if p.Codes == nil {
			p.Codes = map[string]int{}
		}
		p.Codes[code]++
		if p.deadSince.IsZero() {
			p.deadSince = start
			e.say("  refresh-race: Secret %s holds a refused credential (%s, user %s)", p.Secret, code, redact.Fingerprint([]byte(user)))
		}
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return fmt.Errorf("Secret %s: a login failed neither with Postgres refusing the credential (28P01, 28000) nor with the revocation's 42501: %s", p.Secret, err)
	}
	return nil
}

// observeRefreshRace runs one probe per ExternalSecret, side by side, for raceObserve.
func (e *Env) observeRefreshRace(ctx context.Context, r *Result) (long, half *credentialProbe, err error) {
	long, half = &credentialProbe{Secret: raceLong}, &credentialProbe{Secret: raceHalf}
	end := time.Now().Add(raceObserve)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*credentialProbe{long, half} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(raceProbe)
			defer t.Stop()
			for {
				if err := e.sample(ctx, p); err != nil {
					errs[i] = err
					return
				}
				select {
				case <-ctx.Done():
					errs[i] = ctx.Err()
					return
				case now := <-t.C:
					if now.After(end) {
						p.stoppedAt = now
						p.OpenSince = p.deadSince
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	r.Note("%s; %s", long.summary(), half.summary())
	return long, half, nil
}

// cleanupRefreshRace deletes what the scenario applied, revokes the role's leases and waits
// until Postgres has none of the roles Vault minted.
func (e *Env) cleanupRefreshRace(ctx context.Context, r *Result) error {
	gen, long, half, err := e.raceObjects()
	if err != nil {
		return err
	}
	if err := e.Kube.Delete(ctx, long, half, gen); err != nil {
		return err
	}
	for _, o := range []*unstructured.Unstructured{long, half} {
		if err := e.Kube.WaitGone(ctx, o, e.Timeouts.Gone); err != nil {
			return err
		}
	}
	leases, err := e.countLeases(ctx)
	if err != nil {
		return err
	}
	r.Figure("leases-before-cleanup", float64(leases))
	left := -1
	err = waitFor(ctx, "every lease of the database role revoked and no minted role left in Postgres", e.Timeouts.Revoke, func(ctx context.Context) (bool, error) {
		if err := e.revokeDynamic(ctx); err != nil {
			return false, err
		}
		n, err := e.countLeases(ctx)
		if err != nil || n != 0 {
			return false, err
		}
		left, err = e.countMintedRoles(ctx)
		return left == 0, err
	})
	r.Figure("minted-roles-left", float64(left))
	return err
}
