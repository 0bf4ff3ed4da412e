package scenarios

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5/pgconn"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/proc"
)

const (
	raw      = "bookstore/raw-manifests/"
	sec      = "bookstore/secrets/"
	ns       = "bookstore"
	esGroup  = "external-secrets.io"
	genGroup = "generators.external-secrets.io"
	esoSA    = "bookstore-eso"
)

// objects decodes a fixture and adapts it to this lab: ESO objects are moved to a served
// API version (one source of truth: the fixture names its version; if the cluster does not
// serve it, the preferred served one is used), and the Vault server address is the backend's.
func (e *Env) objects(path string) ([]*unstructured.Unstructured, error) {
	raw, err := fixtures.Manifest(path)
	if err != nil {
		return nil, err
	}
	objs, err := kube.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, o := range objs {
		gv := strings.SplitN(o.GetAPIVersion(), "/", 2)
		if len(gv) == 2 && (gv[0] == esGroup) {
			v, err := e.servedVersion(gv[0], gv[1])
			if err != nil {
				return nil, err
			}
			o.SetAPIVersion(gv[0] + "/" + v)
		}
		if _, err := fixtures.SetVaultServer(o, e.Lab.VaultAddrForESO()); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return objs, nil
}

// servedVersion returns want if the group serves it, else the first (preferred) served one.
func (e *Env) servedVersion(group, want string) (string, error) {
	if group == esGroup && e.State.ESVersion != "" && e.State.ESVersion != want {
		return e.State.ESVersion, nil
	}
	served, err := e.Kube.ServedVersions(group)
	if err != nil {
		return "", err
	}
	if len(served) == 0 {
		return "", fmt.Errorf("the cluster serves no version of %s (is ESO installed?)", group)
	}
	for _, v := range served {
		if v == want {
			return want, nil
		}
	}
	return served[0], nil
}

func (e *Env) apply(ctx context.Context, paths ...string) ([]*unstructured.Unstructured, error) {
	var all []*unstructured.Unstructured
	for _, p := range paths {
		objs, err := e.objects(p)
		if err != nil {
			return nil, err
		}
		if err := e.Kube.Apply(ctx, objs...); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, objs...)
	}
	return all, nil
}

func (e *Env) find(ctx context.Context, path, kind, name string) (*unstructured.Unstructured, error) {
	objs, err := e.objects(path)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o, nil
		}
	}
	return nil, fmt.Errorf("%s has no %s %s", path, kind, name)
}

func (e *Env) secretData(ctx context.Context, name string) (map[string][]byte, error) {
	s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return s.Data, nil
}

func secretObj(name string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion("v1")
	o.SetKind("Secret")
	o.SetNamespace(ns)
	o.SetName(name)
	return o
}

// books asks the catalog for /books and returns how many it listed.
func (e *Env) books(ctx context.Context) (int, error) {
	if e.State.Catalog == nil {
		return 0, errNoCatalog
	}
	var n int
	err := proc.WaitFor(ctx, "the catalog to serve /books", e.Timeouts.Serve, 500*time.Millisecond, nil, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.State.Catalog.URL()+"/books", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("GET /books: %s", resp.Status)
		}
		var list []json.RawMessage
		if err := json.Unmarshal(body, &list); err != nil {
			return false, fmt.Errorf("GET /books: not a JSON list: %w", err)
		}
		n = len(list)
		return n > 0, fmt.Errorf("GET /books: empty list")
	})
	return n, err
}

// loginAsESO logs in to Vault the way ESO does: a TokenRequest token of bookstore-eso
// presented to auth/kubernetes with the given role.
func (e *Env) loginAsESO(ctx context.Context, role string) (*vault.Client, *vault.SecretAuth, error) {
	tr, err := e.Lab.Kube().CoreV1().ServiceAccounts(ns).CreateToken(ctx, esoSA, &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("TokenRequest for %s/%s: %w", ns, esoSA, err)
	}
	e.Lab.Secrets().Add(tr.Status.Token)
	c, err := e.Lab.Vault().Clone()
	if err != nil {
		return nil, nil, err
	}
	c.ClearToken()
	sec, err := c.Logical().WriteWithContext(ctx, "auth/kubernetes/login", map[string]any{"role": role, "jwt": tr.Status.Token})
	if err != nil {
		return nil, nil, fmt.Errorf("auth/kubernetes/login as %s: %w", role, err)
	}
	if sec == nil || sec.Auth == nil {
		return nil, nil, fmt.Errorf("auth/kubernetes/login as %s returned no token", role)
	}
	e.Lab.Secrets().Add(sec.Auth.ClientToken)
	c.SetToken(sec.Auth.ClientToken)
	return c, sec.Auth, nil
}

// conditionOf returns the condition of type typ, if any.
func conditionOf(obj *unstructured.Unstructured, typ string) (kube.Condition, bool) {
	for _, c := range kube.Conditions(obj) {
		if c.Type == typ {
			return c, true
		}
	}
	return kube.Condition{}, false
}

var errNoCatalog = errors.New("the catalog is not running (baseline did not complete)")

func since(t time.Time) float64 { return time.Since(t).Seconds() }

func conditionsOf(o *unstructured.Unstructured) []kube.Condition { return kube.Conditions(o) }

func randomSecret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func waitFor(ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	return proc.WaitFor(ctx, what, timeout, 250*time.Millisecond, nil, cond)
}

// rotationProbe derives a probe ExternalSecret from the db-credentials fixture: same store
// and remote key, target NAME, only POSTGRES_PASSWORD, no template.
func (e *Env) rotationProbe(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	es, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
	if err != nil {
		return nil, err
	}
	probe := es.DeepCopy()
	probe.SetName(name)
	probe.SetAnnotations(nil)
	unstructured.RemoveNestedField(probe.Object, "spec", "target", "template")
	_ = unstructured.SetNestedField(probe.Object, name, "spec", "target", "name")
	data, _, _ := unstructured.NestedSlice(probe.Object, "spec", "data")
	var keep []any
	for _, d := range data {
		if m, ok := d.(map[string]any); ok && m["secretKey"] == "POSTGRES_PASSWORD" {
			keep = append(keep, d)
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("the db-credentials ExternalSecret fixture maps no POSTGRES_PASSWORD")
	}
	_ = unstructured.SetNestedSlice(probe.Object, keep, "spec", "data")
	return probe, nil
}

// writeChecked writes data to the Vault path, fails on any warning Vault gives (with its
// text), reads the path back and compares every key written that the read-back also has
// (Vault does not return some, e.g. passwords and the reviewer JWT). Durations are compared
// in seconds (Vault returns ttl fields as integer seconds, we write "150s" or "1h"); lists as
// sets, except *_statements, whose order is kept. It returns the read-back.
func (e *Env) writeChecked(ctx context.Context, path string, data map[string]any) (*vault.Secret, error) {
	v := e.Lab.Vault()
	w, err := v.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		return nil, fmt.Errorf("write %s: %s", path, e.Lab.Secrets().String(err.Error()))
	}
	if w != nil && len(w.Warnings) > 0 {
		return nil, fmt.Errorf("write %s: Vault warned: %s", path, e.Lab.Secrets().String(strings.Join(w.Warnings, "; ")))
	}
	got, err := v.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read back %s: %s", path, e.Lab.Secrets().String(err.Error()))
	}
	if got == nil || got.Data == nil {
		return nil, fmt.Errorf("read back %s: nothing there after the write", path)
	}
	diffs, compared := compareReadBack(data, got.Data, e.Lab.Secrets().String)
	if len(diffs) > 0 {
		return nil, fmt.Errorf("%s reads back differently: %s", path, strings.Join(diffs, "; "))
	}
	if compared == 0 {
		return nil, fmt.Errorf("%s: none of the fields written (%s) reads back", path, strings.Join(sortedKeys(data), ", "))
	}
	return got, nil
}

// compareReadBack compares want (what was written) with got (Vault's read-back) on the keys
// both have; the database engine returns a connection's plugin parameters under
// connection_details, so those count as got's own. It returns one line per differing key
// (values only for keys that cannot carry a secret, masked by redactFn) and how many keys it
// compared.
func compareReadBack(want, got map[string]any, redactFn func(string) string) (diffs []string, compared int) {
	view := map[string]any{}
	if cd, ok := got["connection_details"].(map[string]any); ok {
		for k, v := range cd {
			view[k] = v
		}
	}
	for k, v := range got {
		view[k] = v
	}
	for _, k := range sortedKeys(want) {
		g, ok := view[k]
		if !ok {
			continue
		}
		compared++
		if !sameValue(k, want[k], g) {
			if sensitiveKey(k) {
				diffs = append(diffs, fmt.Sprintf("%s differs (value not shown)", k))
				continue
			}
			diffs = append(diffs, fmt.Sprintf("%s: wrote %s, Vault has %s", k, shorten(redactFn(fmt.Sprint(want[k]))), shorten(redactFn(fmt.Sprint(g)))))
		}
	}
	return diffs, compared
}

// sameValue reports whether Vault's read-back got of key holds what want wrote.
func sameValue(key string, want, got any) bool {
	if d, ok := want.(time.Duration); ok {
		want = int64(d / time.Second)
	}
	if wl, ok := asStrings(want); ok {
		gl, ok := asStrings(got)
		if !ok {
			return false
		}
		if !strings.HasSuffix(key, "_statements") {
			wl, gl = slices.Sorted(slices.Values(wl)), slices.Sorted(slices.Values(gl))
		}
		return slices.Equal(wl, gl)
	}
	if gn, ok := asNumber(got); ok {
		if ws, ok := want.(string); ok {
			secs, err := parseVaultDuration(ws)
			return err == nil && float64(secs) == gn
		}
		wn, ok := asNumber(want)
		return ok && wn == gn
	}
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		return ok && g == w
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	}
	return reflect.DeepEqual(want, got)
}

// parseVaultDuration parses a duration as Vault's API takes it: integer seconds ("150"), a Go
// duration ("150s", "1h", "2m30s") or days ("1d"). It returns whole seconds.
func parseVaultDuration(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		return n * 24 * 3600, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return int64(d / time.Second), nil
}

// asNumber is v as a float64 when it is a number (Vault's client decodes numbers as json.Number).
func asNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// asStrings is v as a list of strings when it is one ([]string, or []any of strings).
func asStrings(v any) ([]string, bool) {
	switch l := v.(type) {
	case []string:
		return slices.Clone(l), true
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// sensitiveKey: a field whose value is never shown (it is, or may be, a credential).
func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "jwt", "token", "secret", "username", "private"} {
		if strings.Contains(k, s) && !strings.HasSuffix(k, "_ttl") && !strings.HasSuffix(k, "_policies") {
			return true
		}
	}
	return false
}

func shorten(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// redactedError carries an error's text with every registered secret masked, and the error
// itself, so that errors.As still finds (say) Postgres' *pgconn.PgError.
type redactedError struct {
	msg string
	err error
}

func (r *redactedError) Error() string { return r.msg }
func (r *redactedError) Unwrap() error { return r.err }

func (e *Env) redactErr(prefix string, err error) error {
	return &redactedError{msg: prefix + e.Lab.Secrets().String(err.Error()), err: err}
}

// Postgres' SQLSTATEs for a refused login: invalid_password, invalid_authorization_specification
// (for example a role that does not exist).
const (
	sqlstateInvalidPassword = "28P01"
	sqlstateInvalidAuthSpec = "28000"
)

// pgAuthFailure returns Postgres' SQLSTATE when err is Postgres refusing the login (28P01 or
// 28000), and "" for any other error (a network error, a timeout, a failing query).
func pgAuthFailure(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == sqlstateInvalidPassword || pe.Code == sqlstateInvalidAuthSpec) {
		return pe.Code
	}
	return ""
}

// Vault's default username template of the postgresql-database-plugin (Vault 1.17,
// plugins/database/postgresql): v-DISPLAYNAME8-ROLENAME8-RANDOM20-UNIXTIME, at most 63.
const defaultPostgresUsernameTemplate = `{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}`

// usernameLikePattern is a Postgres LIKE pattern that matches the usernames Vault mints for
// role with the username template tmpl ("" or the default: Vault's default template). A custom
// template gives its literal text before the first "{{" followed by %; a custom template that
// starts with an action has no safe prefix, and is an error rather than a pattern that would
// match every role.
func usernameLikePattern(tmpl, role string) (string, error) {
	if t := strings.TrimSpace(tmpl); t == "" || t == defaultPostgresUsernameTemplate {
		// The display name is the token's (it varies: root, kubernetes-...), so it is a wildcard.
		return "v-%-" + likeEscape(truncateRunes(role, 8)) + "-%", nil
	}
	prefix, _, _ := strings.Cut(tmpl, "{{")
	if prefix == "" {
		return "", fmt.Errorf("username template %q starts with an action: no literal prefix to find its users by", tmpl)
	}
	return likeEscape(prefix) + "%", nil
}

// likeEscape escapes LIKE's wildcards (Postgres' default escape character is the backslash).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// likeMatch reports whether s matches the LIKE pattern (%, _ and backslash escapes).
func likeMatch(pattern, s string) bool {
	var re strings.Builder
	re.WriteString("^(?s)")
	esc := false
	for _, c := range pattern {
		switch {
		case esc:
			re.WriteString(regexp.QuoteMeta(string(c)))
			esc = false
		case c == '\\':
			esc = true
		case c == '%':
			re.WriteString(".*")
		case c == '_':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(s)
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// mintedRolePattern is the LIKE pattern of the Postgres roles Vault mints for the database
// role, from the username template Vault actually has: the role's, else its connection's
// (connection_details.username_template), else the postgres plugin's default.
func (e *Env) mintedRolePattern(ctx context.Context) (string, error) {
	mount, _, _, role, _, err := dbSetup("")
	if err != nil {
		return "", err
	}
	rd, err := e.readDBRole(ctx, mount, role)
	if err != nil {
		return "", err
	}
	tmpl, _ := rd["username_template"].(string)
	if tmpl == "" {
		db, _ := rd["db_name"].(string)
		if db == "" {
			return "", fmt.Errorf("%s/roles/%s names no db_name", mount, role)
		}
		c, err := e.Lab.Vault().Logical().ReadWithContext(ctx, mount+"/config/"+db)
		if err != nil {
			return "", fmt.Errorf("read %s/config/%s: %w", mount, db, err)
		}
		if c == nil {
			return "", fmt.Errorf("%s/config/%s does not exist", mount, db)
		}
		if cd, ok := c.Data["connection_details"].(map[string]any); ok {
			tmpl, _ = cd["username_template"].(string)
		}
		if tmpl == "" {
			if p, _ := c.Data["plugin_name"].(string); p != "postgresql-database-plugin" {
				return "", fmt.Errorf("%s/config/%s: plugin %q has no username template set and is not the postgres plugin, whose default is known", mount, db, p)
			}
		}
	}
	return usernameLikePattern(tmpl, role)
}

// readDBRole reads MOUNT/roles/ROLE, failing when the mount is not a database engine or the
// role does not exist.
func (e *Env) readDBRole(ctx context.Context, mount, role string) (map[string]any, error) {
	mounts, err := e.Lab.Vault().Sys().ListMountsWithContext(ctx)
	if err != nil {
		return nil, err
	}
	m, ok := mounts[mount+"/"]
	if !ok {
		return nil, fmt.Errorf("Vault has no mount %s/", mount)
	}
	if m.Type != "database" {
		return nil, fmt.Errorf("Vault's mount %s/ is a %s engine, not database", mount, m.Type)
	}
	s, err := e.Lab.Vault().Logical().ReadWithContext(ctx, mount+"/roles/"+role)
	if err != nil {
		return nil, fmt.Errorf("read %s/roles/%s: %w", mount, role, err)
	}
	if s == nil || s.Data == nil {
		return nil, fmt.Errorf("the database role %s/roles/%s does not exist", mount, role)
	}
	return s.Data, nil
}

// leaseInfo is what sys/leases/lookup says of a lease.
type leaseInfo struct {
	ID      string
	Issued  time.Time
	Expires time.Time
	TTL     time.Duration // Expires - Issued: the lease's whole life as granted
	Renewed bool
}

// parseLease reads sys/leases/lookup's answer.
func parseLease(data map[string]any) (leaseInfo, error) {
	var l leaseInfo
	l.ID, _ = data["id"].(string)
	get := func(k string) (time.Time, error) {
		s, _ := data[k].(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return t, fmt.Errorf("lease lookup: %s %q: %w", k, s, err)
		}
		return t, nil
	}
	var err error
	if l.Issued, err = get("issue_time"); err != nil {
		return l, err
	}
	if l.Expires, err = get("expire_time"); err != nil {
		return l, err
	}
	if lr, _ := data["last_renewal"].(string); lr != "" {
		l.Renewed = true
	}
	l.TTL = l.Expires.Sub(l.Issued)
	return l, nil
}

// lookupLease asks Vault about one lease; gone is true when Vault says the lease is invalid
// (revoked or expired).
func (e *Env) lookupLease(ctx context.Context, id string) (l leaseInfo, gone bool, err error) {
	s, err := e.Lab.Vault().Logical().WriteWithContext(ctx, "sys/leases/lookup", map[string]any{"lease_id": id})
	if err != nil {
		if strings.Contains(err.Error(), "invalid lease") {
			return l, true, nil
		}
		return l, false, fmt.Errorf("sys/leases/lookup: %s", e.Lab.Secrets().String(err.Error()))
	}
	if s == nil || s.Data == nil {
		return l, false, fmt.Errorf("sys/leases/lookup returned nothing")
	}
	l, err = parseLease(s.Data)
	return l, false, err
}
