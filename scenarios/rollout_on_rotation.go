package scenarios

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rollout-on-rotation: the catalog reads DB_DSN from Secret db-credentials through an env var,
// once, at start (ch05 production notes, ch15.05 diagram B). A rotated KV value reaches the
// Secret on a forced sync and stops there; the catalog picks it up only when its pods are
// replaced: by the chapter's `secret-rotation: <ts>` bump on the pod template, or by a
// reloader watching the Secret. The running catalog's value is observed through its
// /debug/credential-fingerprint endpoint: keyed fingerprints only, under a key the scenario
// puts in Secret catalog-debug (the fixture's optional DEBUG_FINGERPRINT_KEY).
//
// The rotation is a real one: the password of the Postgres user the Secret names is changed
// first (ALTER ROLE), then the KV value, so the new value logs in; the original is put back
// at the end (check restored, and a deferred cleanup in any case).
const (
	debugSecret     = "catalog-debug"
	debugSecretKey  = "fingerprint-key"
	fingerprintPath = "/debug/credential-fingerprint"
	// staleHold is how long the running catalog is watched after the Secret holds the new value.
	staleHold = 10 * time.Second
	// booksEvery is the /books probe's period.
	booksEvery = 200 * time.Millisecond
	// confirmReads: after a rollout, this many fingerprint reads in a row must show the new
	// value (each on a new connection, so through whatever the Service picks).
	confirmReads = 5
)

// rotationRun is what the checks of one rollout-on-rotation run hand on.
type rotationRun struct {
	key             string // the fingerprint key in Secret catalog-debug
	user, db        string // the Postgres user and database the Secret names
	original        string // the password before the scenario
	current         string // the password Postgres and Vault have now
	kvMount, kvPath string
	kvOriginal      map[string]any
	fpOriginal      catalogFingerprint // the catalog's answer on the original value
	instance        string             // the catalog process last seen
	staleHeld       bool               // stale-after-sync saw only the old value for staleHold
	books           *booksProbe
	rl              *reloader
}

func rolloutOnRotation() Scenario {
	run := &rotationRun{}
	return Scenario{Name: "rollout-on-rotation", Title: "a rotated KV value reaches an env-var consumer only by a rollout: the secret-rotation bump, and a reloader",
		Needs: []string{"swap"}, Checks: []Check{
			{"consumer-fingerprint", "db-credentials is synced by ESO; the catalog, started with a fingerprint key, reports the fingerprint of the DB_DSN in the Secret", func(ctx context.Context, e *Env, r *Result) error {
				return e.rotationConsumer(ctx, r, run)
			}},
			{"stale-after-sync", "after a KV rotation (vault kv put) and a forced sync the Secret holds the new value; the running catalog keeps the old one", func(ctx context.Context, e *Env, r *Result) error {
				return e.rotationStale(ctx, r, run)
			}},
			{"annotation-rollout", "a secret-rotation bump on the pod template rolls the catalog: every pod on the new value, /books answering throughout", func(ctx context.Context, e *Env, r *Result) error {
				return e.rotationBump(ctx, r, run)
			}},
			{"reloader-rollout", "with a reloader watching the Secret's data, the next rotation reaches every pod with no hand on the Deployment; /books answering throughout", func(ctx context.Context, e *Env, r *Result) error {
				var err error
				if run.rl, err = e.startReloader(ctx, "db-credentials", e.State.Catalog); err != nil {
					return err
				}
				next := randomSecret("rotated")
				e.Lab.Secrets().Add(next)
				return e.rotationByReloader(ctx, r, run, next, "C15-19")
			}},
			{"restored", "the original value is back in Postgres, Vault, the Secret and (through the reloader) the catalog", func(ctx context.Context, e *Env, r *Result) error {
				if run.rl == nil {
					return fmt.Errorf("the reloader-rollout check did not run")
				}
				if err := e.rotationByReloader(ctx, r, run, run.original, ""); err != nil {
					return err
				}
				run.rl.stop()
				fp, err := e.catalogFingerprint(ctx)
				if err != nil {
					return err
				}
				if fp.DBDSN != run.fpOriginal.DBDSN {
					return fmt.Errorf("the catalog's DB_DSN fingerprint is not the original one after the restore")
				}
				if e.State.Demo != nil {
					got, err := e.secretData(ctx, "db-credentials")
					if err != nil {
						return err
					}
					if d := DiffData(e.State.Demo, got); d != "" {
						return fmt.Errorf("db-credentials differs from the demo Secret after the restore: %s", d)
					}
				}
				return nil
			}},
		}}
}

// catalogFingerprint is the bookstore's /debug/credential-fingerprint answer.
type catalogFingerprint struct {
	Instance string `json:"instance"`
	DBDSN    string `json:"db_dsn"`
	Password string `json:"password"`
}

// credentialFingerprint is the bookstore's CredentialFingerprint (fixtures/bookstore/app):
// hex(HMAC-SHA256(key, value)), its first 32 characters.
func credentialFingerprint(key, value string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// freshClient opens a new connection for every request, so that each one reaches whatever
// pod (or process) the Service picks now, not one kept alive from before a rollout.
var freshClient = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func (e *Env) catalogFingerprint(ctx context.Context) (catalogFingerprint, error) {
	var fp catalogFingerprint
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.CatalogURL()+fingerprintPath, nil)
	if err != nil {
		return fp, err
	}
	resp, err := freshClient.Do(req)
	if err != nil {
		return fp, fmt.Errorf("GET %s: %w", fingerprintPath, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fp, fmt.Errorf("GET %s: %s (is DEBUG_FINGERPRINT_KEY set in the catalog's environment?)", fingerprintPath, resp.Status)
	}
	if err := json.Unmarshal(body, &fp); err != nil || fp.DBDSN == "" || fp.Instance == "" {
		return fp, fmt.Errorf("GET %s: not a fingerprint answer (%v)", fingerprintPath, err)
	}
	return fp, nil
}

// rotationConsumer makes sure db-credentials is the ExternalSecret's (swapping it in when an
// earlier scenario reverted to the demo Secret, and back afterwards), gives the catalog a
// fingerprint key and restarts it, and checks its answer against the Secret.
func (e *Env) rotationConsumer(ctx context.Context, r *Result, run *rotationRun) error {
	if e.State.Catalog == nil {
		return errNoCatalog
	}
	es, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
	if err != nil {
		return err
	}
	if _, err := e.Kube.Get(ctx, es); apierrors.IsNotFound(err) {
		if err := e.swapInExternalSecret(ctx); err != nil {
			return err
		}
		r.Note("db-credentials was the demo Secret (revert ran): swapped to the ExternalSecret for this scenario, and back afterwards")
	} else if err != nil {
		return err
	}
	if _, err := e.Kube.WaitCondition(ctx, es, "Ready", e.Timeouts.Sync); err != nil {
		return err
	}
	s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, "db-credentials", metav1.GetOptions{})
	if err != nil {
		return err
	}
	owned := false
	for _, o := range s.OwnerReferences {
		owned = owned || (o.Kind == "ExternalSecret" && o.Name == "db-credentials")
	}
	if !owned {
		return fmt.Errorf("Secret db-credentials is not owned by ExternalSecret db-credentials: ESO does not manage it")
	}

	run.key = randomSecret("fingerprint-key")
	e.Lab.Secrets().Add(run.key)
	debug := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: debugSecret, Namespace: ns}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{debugSecretKey: []byte(run.key)}}
	secrets := e.Lab.Kube().CoreV1().Secrets(ns)
	if _, err := secrets.Create(ctx, debug, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		_, err = secrets.Update(ctx, debug, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	e.Defer("delete Secret "+debugSecret+" and restart the catalog without the fingerprint key", func(ctx context.Context) error {
		if err := secrets.Delete(ctx, debugSecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return e.State.Catalog.Restart(ctx)
	})
	if err := e.State.Catalog.Restart(ctx); err != nil {
		return err
	}
	fp, err := e.catalogFingerprint(ctx)
	if err != nil {
		return err
	}
	dsn, pass := string(s.Data["DB_DSN"]), string(s.Data["POSTGRES_PASSWORD"])
	if fp.DBDSN != credentialFingerprint(run.key, dsn) || fp.Password != credentialFingerprint(run.key, pass) {
		return fmt.Errorf("the catalog's fingerprints (DB_DSN %t, password %t equal) are not those of db-credentials' DB_DSN and POSTGRES_PASSWORD under the key",
			fp.DBDSN == credentialFingerprint(run.key, dsn), fp.Password == credentialFingerprint(run.key, pass))
	}
	run.fpOriginal, run.instance = fp, fp.Instance
	run.user, run.db, run.original = string(s.Data["POSTGRES_USER"]), string(s.Data["POSTGRES_DB"]), pass
	run.current = pass
	r.Note("the catalog reports the keyed fingerprint of db-credentials' DB_DSN (keys %v)", keyNames(s.Data))
	return nil
}

// swapInExternalSecret replaces the demo Secret db-credentials with the ExternalSecret's, as
// swap does, and registers the way back (the demo Secret, the catalog restarted on it).
func (e *Env) swapInExternalSecret(ctx context.Context) error {
	if _, err := e.apply(ctx, sec+"10-secretstore-vault.yaml"); err != nil {
		return err
	}
	es, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
	if err != nil {
		return err
	}
	e.Defer("put the demo Secret db-credentials back as the scenario found it, and restart the catalog on it", func(ctx context.Context) error {
		if err := e.Kube.Delete(ctx, es); err != nil {
			return err
		}
		if err := e.Kube.WaitGone(ctx, secretObj("db-credentials"), e.Timeouts.Gone); err != nil {
			return err
		}
		if _, err := e.apply(ctx, raw+"16-db-credentials.yaml"); err != nil {
			return err
		}
		return e.State.Catalog.Restart(ctx)
	})
	demo := secretObj("db-credentials")
	if err := e.Kube.Delete(ctx, demo); err != nil {
		return err
	}
	if err := e.Kube.WaitGone(ctx, demo, e.Timeouts.Gone); err != nil {
		return err
	}
	if err := e.Kube.Apply(ctx, es); err != nil {
		return err
	}
	if _, err := e.Kube.WaitCondition(ctx, es, "Ready", e.Timeouts.Sync); err != nil {
		return err
	}
	return waitFor(ctx, "Secret "+ns+"/db-credentials to be created by ESO", e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
		_, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, "db-credentials", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// setPassword changes the Postgres user's password to to, logging in as that user with the
// first of the candidate passwords that works (the user is the database's owner and, as the
// postgres image makes POSTGRES_USER, a superuser).
func (e *Env) setPassword(ctx context.Context, run *rotationRun, to string, candidates ...string) error {
	ctx, cancel := context.WithTimeout(ctx, e.Timeouts.Login)
	defer cancel()
	var errs []string
	for _, pw := range candidates {
		conn, err := pgx.Connect(ctx, e.Lab.PostgresDSN(run.user, pw, run.db))
		if err != nil {
			errs = append(errs, e.Lab.Secrets().String(err.Error()))
			continue
		}
		defer conn.Close(ctx)
		// a utility statement takes no parameters; the password is a literal (randomSecret
		// values and the demo's are free of quotes; doubled in case)
		_, err = conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{run.user}.Sanitize()+" WITH PASSWORD '"+strings.ReplaceAll(to, "'", "''")+"'")
		if err != nil {
			return e.redactErr("alter role: ", err)
		}
		run.current = to
		return nil
	}
	return fmt.Errorf("no known password of the Postgres user logs in: %s", strings.Join(errs, "; "))
}

// rotateTo rotates the password to next: Postgres first (so the new value logs in), then the
// KV value (vault kv put through the API), then a forced sync of db-credentials until the
// Secret holds it. It returns when the KV write was made and when the Secret had the value.
func (e *Env) rotateTo(ctx context.Context, run *rotationRun, next string) (kvPut, synced time.Time, err error) {
	if err := e.setPassword(ctx, run, next, run.current, run.original); err != nil {
		return kvPut, synced, err
	}
	mount, path, _, err := kvTarget()
	if err != nil {
		return kvPut, synced, err
	}
	kv := e.Lab.Vault().KVv2(mount)
	if run.kvOriginal == nil {
		old, err := kv.Get(ctx, path)
		if err != nil {
			return kvPut, synced, err
		}
		if pw, _ := old.Data["POSTGRES_PASSWORD"].(string); pw != run.original {
			return kvPut, synced, fmt.Errorf("%s/%s's POSTGRES_PASSWORD is not the one in db-credentials (fingerprints %s, %s)", mount, path, credentialFingerprint(run.key, pw), credentialFingerprint(run.key, run.original))
		}
		run.kvMount, run.kvPath, run.kvOriginal = mount, path, old.Data
	}
	data := maps.Clone(run.kvOriginal)
	data["POSTGRES_PASSWORD"] = next
	kvPut = time.Now()
	if _, err := kv.Put(ctx, path, data); err != nil {
		return kvPut, synced, fmt.Errorf("vault kv put %s/%s: %s", mount, path, e.Lab.Secrets().String(err.Error()))
	}
	synced, err = e.forceSyncDBCredentials(ctx, next)
	return kvPut, synced, err
}

// forceSyncDBCredentials sets the force-sync annotation on ExternalSecret db-credentials and
// waits until the Secret's POSTGRES_PASSWORD is want; it returns when it was.
func (e *Env) forceSyncDBCredentials(ctx context.Context, want string) (time.Time, error) {
	es, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
	if err != nil {
		return time.Time{}, err
	}
	if err := e.requestSync(ctx, es); err != nil {
		return time.Time{}, err
	}
	var at time.Time
	err = waitFor(ctx, "Secret db-credentials to carry the rotated password after the forced sync", e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
		d, err := e.secretData(ctx, "db-credentials")
		if err != nil {
			return false, err
		}
		if string(d["POSTGRES_PASSWORD"]) == want {
			at = time.Now()
			return true, nil
		}
		return false, nil
	})
	return at, err
}

// restoreRotation puts the original password back in Postgres and Vault and syncs it; a
// deferred cleanup, harmless when the restored check did it already.
func (e *Env) restoreRotation(ctx context.Context, run *rotationRun) error {
	if run.user == "" {
		return nil
	}
	if err := e.setPassword(ctx, run, run.original, run.current, run.original); err != nil {
		return err
	}
	if run.kvOriginal == nil {
		return nil
	}
	kv := e.Lab.Vault().KVv2(run.kvMount)
	cur, err := kv.Get(ctx, run.kvPath)
	if err != nil {
		return err
	}
	if pw, _ := cur.Data["POSTGRES_PASSWORD"].(string); pw == run.original {
		return nil
	}
	if _, err := kv.Put(ctx, run.kvPath, run.kvOriginal); err != nil {
		return err
	}
	_, err = e.forceSyncDBCredentials(ctx, run.original)
	return err // the catalog is restarted by the cleanup that removes its fingerprint key
}

// rotationStale rotates to a new value and watches the running catalog for staleHold.
func (e *Env) rotationStale(ctx context.Context, r *Result, run *rotationRun) error {
	if run.key == "" {
		return fmt.Errorf("the consumer-fingerprint check did not run")
	}
	run.books = e.startBooksProbe(ctx)
	e.Defer("put the original password back in Postgres and Vault and sync db-credentials", func(ctx context.Context) error { return e.restoreRotation(ctx, run) })
	next := randomSecret("rotated")
	e.Lab.Secrets().Add(next)
	kvPut, synced, err := e.rotateTo(ctx, run, next)
	if err != nil {
		return err
	}
	r.Figure("kv-put-to-secret-seconds", synced.Sub(kvPut).Seconds())
	d, err := e.secretData(ctx, "db-credentials")
	if err != nil {
		return err
	}
	fpNew := credentialFingerprint(run.key, string(d["DB_DSN"]))
	if fpNew == run.fpOriginal.DBDSN {
		return fmt.Errorf("db-credentials' DB_DSN did not change with the password: the template does not render it from the KV value")
	}
	reads, stale := 0, 0
	var lastStale time.Time
	end := time.Now().Add(staleHold)
	for time.Now().Before(end) {
		fp, err := e.catalogFingerprint(ctx)
		if err != nil {
			return err
		}
		reads++
		if fp.DBDSN == run.fpOriginal.DBDSN && fp.Instance == run.instance {
			stale++
			lastStale = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	n, errs, _ := run.books.between(kvPut, time.Now())
	r.Figure("fingerprint-reads", float64(reads))
	if !lastStale.IsZero() {
		r.Figure("stale-seconds", lastStale.Sub(synced).Seconds()) // the Secret new, the catalog old
	}
	r.Figure("books-requests", float64(n))
	r.Figure("books-errors", float64(errs))
	run.staleHeld = reads > 0 && stale == reads
	r.Note("Secret on the new value %.1fs after the KV write; %d of %d reads of the running catalog over %s showed the old DB_DSN; /books %d errors in %d requests",
		synced.Sub(kvPut).Seconds(), stale, reads, staleHold, errs, n)
	if !run.staleHeld {
		r.Claim("C05-19", false, fmt.Sprintf("the running catalog showed a new DB_DSN (or process) in %d of %d reads within %s of the Secret changing, without a rollout", reads-stale, reads, staleHold))
		return fmt.Errorf("the running catalog did not keep the old value: %d of %d reads were not the original process on the old DB_DSN", reads-stale, reads)
	}
	return nil
}

// rotationBump is the chapter's rollout: secret-rotation: <ts> on the pod template.
func (e *Env) rotationBump(ctx context.Context, r *Result, run *rotationRun) error {
	if run.books == nil || !run.staleHeld {
		return fmt.Errorf("the stale-after-sync check did not pass")
	}
	bump := time.Now()
	if err := e.State.Catalog.Rollout(ctx, map[string]string{rotationAnnotation: bump.UTC().Format(time.RFC3339)}); err != nil {
		return err
	}
	rolled := time.Now()
	newOK, err := e.confirmCatalog(ctx, run)
	if err != nil {
		return err
	}
	time.Sleep(time.Second) // /books a moment past the rollout, as the old pod goes
	n, errs, first := run.books.between(bump, time.Now())
	r.Figure("rollout-seconds", rolled.Sub(bump).Seconds())
	r.Figure("books-requests-during-rollout", float64(n))
	r.Figure("books-errors-during-rollout", float64(errs))
	r.Note("secret-rotation bump to every pod on the new value: %.1fs; /books %d errors in %d requests", rolled.Sub(bump).Seconds(), errs, n)
	holds := run.staleHeld && newOK
	detail := fmt.Sprintf("the running catalog kept the old DB_DSN for %s after the Secret changed; after the secret-rotation bump (rollout %.1fs) every read showed the new one", staleHold, rolled.Sub(bump).Seconds())
	if !newOK {
		detail = "after the secret-rotation bump the catalog still showed the old DB_DSN"
	}
	r.Claim("C05-19", holds, detail)
	r.Claim("C15-19", newOK, fmt.Sprintf("a rollout (the secret-rotation annotation on the pod template) brought the rotated value to the env-var consumer in %.1fs", rolled.Sub(bump).Seconds()))
	if !newOK {
		return fmt.Errorf("after the rollout the catalog does not report the new DB_DSN")
	}
	if errs > 0 {
		return fmt.Errorf("/books failed %d of %d times during the rollout (first: %s)", errs, n, first)
	}
	return nil
}

// confirmCatalog reads the catalog's fingerprint confirmReads times in a row: every read must
// be the current Secret's DB_DSN, from a process other than the one seen before.
func (e *Env) confirmCatalog(ctx context.Context, run *rotationRun) (bool, error) {
	d, err := e.secretData(ctx, "db-credentials")
	if err != nil {
		return false, err
	}
	want := credentialFingerprint(run.key, string(d["DB_DSN"]))
	ok := true
	var last string
	for i := 0; i < confirmReads; i++ {
		fp, err := e.catalogFingerprint(ctx)
		if err != nil {
			return false, err
		}
		ok = ok && fp.DBDSN == want && fp.Instance != run.instance
		last = fp.Instance
		time.Sleep(100 * time.Millisecond)
	}
	run.instance = last
	return ok, nil
}

// rotationByReloader rotates to next with the reloader running and waits for its rollout;
// claimID, if given, records C15-19's verdict for the reloader path.
func (e *Env) rotationByReloader(ctx context.Context, r *Result, run *rotationRun, next, claimID string) error {
	if run.books == nil || run.rl == nil {
		return fmt.Errorf("the earlier checks did not run")
	}
	kvPut, synced, err := e.rotateTo(ctx, run, next)
	if err != nil {
		return err
	}
	rl, err := run.rl.next(ctx, e.Timeouts.Sync+e.Timeouts.Serve)
	if err != nil {
		return err
	}
	newOK, err := e.confirmCatalog(ctx, run)
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	n, errs, first := run.books.between(kvPut, time.Now())
	r.Figure("kv-put-to-secret-seconds", synced.Sub(kvPut).Seconds())
	r.Figure("rotation-to-rollout-seconds", rl.Rolled.Sub(kvPut).Seconds())
	r.Figure("reloader-rollout-seconds", rl.Rolled.Sub(rl.Seen).Seconds())
	r.Figure("books-requests", float64(n))
	r.Figure("books-errors", float64(errs))
	r.Note("vault kv put to every pod on the new value: %.1fs (Secret synced %.1fs, reloader saw it %.1fs, rollout %.1fs); /books %d errors in %d requests",
		rl.Rolled.Sub(kvPut).Seconds(), synced.Sub(kvPut).Seconds(), rl.Seen.Sub(kvPut).Seconds(), rl.Rolled.Sub(rl.Seen).Seconds(), errs, n)
	if claimID != "" {
		r.Claim(claimID, newOK, fmt.Sprintf("a reloader watching the Secret's data rolled the catalog; %.1fs from vault kv put to every pod on the new value", rl.Rolled.Sub(kvPut).Seconds()))
	}
	if !newOK {
		return fmt.Errorf("after the reloader's rollout the catalog does not report the Secret's DB_DSN")
	}
	if errs > 0 {
		return fmt.Errorf("/books failed %d of %d times from the KV write to after the rollout (first: %s)", errs, n, first)
	}
	return nil
}

// booksProbe asks the catalog for /books every booksEvery, each time on a new connection.
type booksProbe struct {
	mu      sync.Mutex
	samples []bookSample
	cancel  context.CancelFunc
	done    chan struct{}
}

type bookSample struct {
	at  time.Time
	err string // "" when /books answered 200 with a non-empty JSON list
}

func (e *Env) startBooksProbe(ctx context.Context) *booksProbe {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &booksProbe{cancel: cancel, done: make(chan struct{})}
	e.Defer("stop the /books probe", func(context.Context) error { p.stop(); return nil })
	go func() {
		defer close(p.done)
		t := time.NewTicker(booksEvery)
		defer t.Stop()
		for {
			at := time.Now()
			msg := ""
			if err := e.booksOnce(pctx); err != nil {
				msg = err.Error()
			}
			if pctx.Err() != nil {
				return
			}
			p.mu.Lock()
			p.samples = append(p.samples, bookSample{at: at, err: msg})
			p.mu.Unlock()
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *booksProbe) stop() {
	p.cancel()
	<-p.done
}

// between counts the requests started in [from, to], the failed ones, and the first failure.
func (p *booksProbe) between(from, to time.Time) (n, errs int, first string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.samples {
		if s.at.Before(from) || s.at.After(to) {
			continue
		}
		n++
		if s.err != "" {
			errs++
			if first == "" {
				first = s.err
			}
		}
	}
	return n, errs, first
}

// booksOnce is one GET /books on a new connection: 200 with a non-empty JSON list, or an error.
func (e *Env) booksOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.CatalogURL()+"/books", nil)
	if err != nil {
		return err
	}
	resp, err := freshClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /books: %s", resp.Status)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(body, &list); err != nil || len(list) == 0 {
		return fmt.Errorf("GET /books: not a non-empty JSON list")
	}
	return nil
}
