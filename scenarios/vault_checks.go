package scenarios

// Vault writes that are read back, and the leases and database roles Vault reports.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
)

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

// deniedBeyondKV tries, with c, to write mount/data/path, to read mount/data/other and each of
// extra (named by what it does): Vault must refuse every one with "permission denied". It
// returns how many were tried; who names the token in the error.
func deniedBeyondKV(ctx context.Context, c *vault.Client, who, mount, path string, extra map[string]func() error) (int, error) {
	attempts := map[string]func() error{
		"write " + mount + "/data/" + path: func() error {
			_, err := c.KVv2(mount).Put(ctx, path, map[string]any{"x": "y"})
			return err
		},
		"read " + mount + "/data/other": func() error { _, err := c.KVv2(mount).Get(ctx, "other"); return err },
	}
	maps.Copy(attempts, extra)
	for what, try := range attempts {
		if err := try(); err == nil || !strings.Contains(err.Error(), "permission denied") {
			return 0, fmt.Errorf("%s with %s: want permission denied, got %v", what, who, err)
		}
	}
	return len(attempts), nil
}
