package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestPgAuthFailure(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Severity: "FATAL", Code: code, Message: "m"} }
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"invalid password", pg("28P01"), "28P01"},
		{"no such role", pg("28000"), "28000"},
		{"wrapped and redacted", &redactedError{msg: "login: [REDACTED]", err: fmt.Errorf("connect: %w", pg("28P01"))}, "28P01"},
		{"joined", errors.Join(errors.New("first host"), pg("28000")), "28000"},
		{"permission denied is not a login refusal", pg("42501"), ""},
		{"too many connections", pg("53300"), ""},
		{"network error", errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), ""},
		{"text alone does not count", errors.New("password authentication failed for user x (SQLSTATE 28P01)"), ""},
		{"nil", nil, ""},
	} {
		if got := pgAuthFailure(c.err); got != c.want {
			t.Errorf("%s: pgAuthFailure = %q, want %q", c.name, got, c.want)
		}
	}
}

// While Vault revokes a credential (REVOKE, then DROP ROLE) the read is refused with 42501:
// the ESO routes' login loop counts that as the credential's end, nothing else new.
func TestPgRevoked(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "m"} }
	for code, want := range map[string]string{"28P01": "28P01", "28000": "28000", "42501": "42501", "53300": "", "42P01": ""} {
		if got := pgRevoked(fmt.Errorf("select from books: %w", pg(code))); got != want {
			t.Errorf("%s: pgRevoked = %q, want %q", code, got, want)
		}
	}
	if pgRevoked(errors.New("connection refused")) != "" {
		t.Error("a network error counted as revoked")
	}
}

func TestRedactedErrorKeepsChainNotText(t *testing.T) {
	inner := &pgconn.PgError{Code: "28P01", Message: `password authentication failed for user "v-secret-user"`}
	e := &redactedError{msg: "login: masked", err: inner}
	if strings.Contains(e.Error(), "v-secret-user") {
		t.Fatalf("the text shows the unmasked error: %s", e)
	}
	var pe *pgconn.PgError
	if !errors.As(e, &pe) || pe.Code != "28P01" {
		t.Fatalf("errors.As does not reach the PgError")
	}
}

func TestParseVaultDuration(t *testing.T) {
	for in, want := range map[string]int64{"150s": 150, "1h": 3600, "15m": 900, "2m30s": 150, "75": 75, "1d": 86400, " 24h ": 86400} {
		got, err := parseVaultDuration(in)
		if err != nil || got != want {
			t.Errorf("parseVaultDuration(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "1x"} {
		if _, err := parseVaultDuration(in); err == nil {
			t.Errorf("parseVaultDuration(%q): want an error", in)
		}
	}
}

func TestSameValue(t *testing.T) {
	for _, c := range []struct {
		key       string
		want, got any
		same      bool
	}{
		{"default_ttl", "150s", json.Number("150"), true},
		{"default_ttl", "1h", json.Number("3600"), true},
		{"ttl", "15m", json.Number("900"), true},
		{"max_ttl", "24h", json.Number("86400"), true},
		{"token_ttl", 75 * time.Second, json.Number("75"), true},
		{"default_ttl", "1h", json.Number("3599"), false},
		{"default_ttl", "soon", json.Number("3600"), false},
		{"policies", []string{"bookstore-ro"}, []any{"bookstore-ro"}, true},
		{"policies", []string{"b", "a"}, []any{"a", "b"}, true},
		{"policies", []string{"a"}, []any{"a", "default"}, false},
		{"creation_statements", []string{"CREATE", "GRANT"}, []any{"CREATE", "GRANT"}, true},
		{"creation_statements", []string{"CREATE", "GRANT"}, []any{"GRANT", "CREATE"}, false},
		{"allowed_roles", []string{"bookstore-app"}, "bookstore-app", false},
		{"verify_connection", true, true, true},
		{"disable_local_ca_jwt", true, false, false},
		{"kubernetes_host", "https://127.0.0.1:6443", "https://127.0.0.1:6443", true},
		{"kubernetes_host", "https://127.0.0.1:6443", "https://127.0.0.1:6444", false},
		{"n", 3, json.Number("3"), true},
	} {
		if got := sameValue(c.key, c.want, c.got); got != c.same {
			t.Errorf("sameValue(%s, %#v, %#v) = %v, want %v", c.key, c.want, c.got, got, c.same)
		}
	}
}

func TestCompareReadBack(t *testing.T) {
	id := func(s string) string { return s }
	// A database connection: Vault returns plugin parameters under connection_details, never
	// the password.
	want := map[string]any{
		"plugin_name": "postgresql-database-plugin", "allowed_roles": []string{"bookstore-app"},
		"connection_url": "postgresql://{{username}}:{{password}}@h:5432/db", "verify_connection": true,
		"username": "admin-user", "password": "hunter2-secret",
	}
	got := map[string]any{
		"plugin_name": "postgresql-database-plugin", "allowed_roles": []any{"bookstore-app"},
		"connection_details": map[string]any{"connection_url": "postgresql://{{username}}:{{password}}@h:5432/db", "username": "admin-user"},
		"verify_connection":  true,
	}
	diffs, n := compareReadBack(want, got, id)
	if len(diffs) != 0 || n != 5 {
		t.Fatalf("connection: diffs %v, compared %d; want none, 5", diffs, n)
	}
	got["connection_details"].(map[string]any)["username"] = "someone-else"
	got["plugin_name"] = "mysql-database-plugin"
	diffs, _ = compareReadBack(want, got, id)
	if len(diffs) != 2 {
		t.Fatalf("want 2 diffs, got %v", diffs)
	}
	for _, d := range diffs {
		if strings.Contains(d, "someone-else") || strings.Contains(d, "admin-user") {
			t.Errorf("a diff shows a username: %s", d)
		}
	}
	if !strings.Contains(strings.Join(diffs, ";"), "mysql-database-plugin") {
		t.Errorf("the plugin_name diff does not say what Vault has: %v", diffs)
	}
	// Nothing in common: compared 0 (writeChecked fails on that).
	if _, n := compareReadBack(map[string]any{"token_reviewer_jwt": "x"}, map[string]any{"kubernetes_host": "h"}, id); n != 0 {
		t.Errorf("compared %d keys with nothing in common", n)
	}
	// Durations of a role.
	diffs, n = compareReadBack(map[string]any{"default_ttl": "150s", "max_ttl": "24h"}, map[string]any{"default_ttl": json.Number("150"), "max_ttl": json.Number("86400")}, id)
	if len(diffs) != 0 || n != 2 {
		t.Errorf("role durations: diffs %v, compared %d", diffs, n)
	}
}

func TestUsernameLikePattern(t *testing.T) {
	for _, c := range []struct {
		tmpl, role, want string
		err              bool
	}{
		{"", "bookstore-app", "v-%-bookstor-%", false},
		{defaultPostgresUsernameTemplate, "bookstore-app", "v-%-bookstor-%", false},
		{"", "app", "v-%-app-%", false},
		{"", "my_role_x", `v-%-my\_role\_-%`, false},
		{"bookstore-{{.RoleName}}-{{random 8}}", "bookstore-app", "bookstore-%", false},
		{"100%_{{.RoleName}}", "r", `100\%\_%`, false},
		{`{{ printf "x-%s" (random 8) }}`, "r", "", true},
	} {
		got, err := usernameLikePattern(c.tmpl, c.role)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("usernameLikePattern(%q, %q) = %q, %v; want %q (error %v)", c.tmpl, c.role, got, err, c.want, c.err)
		}
	}
}

func TestLikeMatch(t *testing.T) {
	p, err := usernameLikePattern("", "bookstore-app")
	if err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]bool{
		"v-kubernet-bookstor-AbCdEfGhIjKlMnOpQrSt-1717000000": true, // ESO's login
		"v-root-bookstor-AbCdEfGhIjKlMnOpQrSt-1717000000":     true, // the root token
		"v--bookstor-AbCdEfGhIjKlMnOpQrSt-1717000000":         true, // no display name
		"v-root-otherrol-AbCdEfGhIjKlMnOpQrSt-1717000000":     false,
		"bookstore":           false,
		"postgres":            false,
		"vbookstor-x":         false,
		"v-token-bookstore-1": false, // the role name is truncated to 8: "bookstor-", not "bookstore"
	} {
		if got := likeMatch(p, user); got != want {
			t.Errorf("likeMatch(%q, %q) = %v, want %v", p, user, got, want)
		}
	}
	if !likeMatch(`a\_b%`, "a_bc") || likeMatch(`a\_b%`, "axbc") || !likeMatch("a_b", "axb") {
		t.Errorf("LIKE escapes or _ are not honoured")
	}
	if !likeMatch(likeEscape("v-x_y"), "v-x_y") || likeMatch(likeEscape("v-x_y"), "v-xzy") {
		t.Errorf("likeEscape does not make an exact name")
	}
}

func TestParseLease(t *testing.T) {
	l, err := parseLease(map[string]any{
		"id":          "database/creds/bookstore-app/abc",
		"issue_time":  "2024-06-01T10:00:00.123456789Z",
		"expire_time": "2024-06-01T10:02:30.123456789Z",
		"ttl":         json.Number("149"),
		"renewable":   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.TTL != 150*time.Second || l.Renewed || l.ID != "database/creds/bookstore-app/abc" {
		t.Errorf("parseLease = %+v", l)
	}
	if _, err := parseLease(map[string]any{"issue_time": "2024-06-01T10:00:00Z"}); err == nil {
		t.Errorf("a lease without expire_time parsed")
	}
}

func TestCredentialLifeBounds(t *testing.T) {
	issued := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return issued.Add(time.Duration(s * float64(time.Second))) }
	life := func(loginAfterSync bool, lastOK, firstDead float64) credentialLife {
		c := credentialLife{Issued: issued, Expires: at(150), LoginAfterSync: loginAfterSync}
		if lastOK >= 0 {
			c.LastOK = at(lastOK)
		}
		if firstDead >= 0 {
			c.FirstDead = at(firstDead)
		}
		return c
	}
	for _, c := range []struct {
		name        string
		c           credentialLife
		alive, dead bool
	}{
		{"lives for the lease, dies at expiry", life(true, 149, 151.5), true, true},
		{"dies a second early (clock granularity)", life(true, 147, 149), true, true},
		{"dies with ESO's token at 75 s", life(true, 74, 76), false, true},
		{"dead at sync", life(false, -1, 5), false, true},
		{"outlives its lease", life(true, 165.5, -1), true, false},
		{"dies late, after the grace", life(true, 164, 166), true, false},
		{"no refusal seen before the loop ended early", life(true, 100, -1), false, false},
	} {
		alive, dead := c.c.bounds()
		if alive != c.alive || dead != c.dead {
			t.Errorf("%s: bounds = alive %v, dead %v; want %v, %v", c.name, alive, dead, c.alive, c.dead)
		}
	}
}

func TestKVDiff(t *testing.T) {
	want := map[string]any{"A": "secret-a", "B": "secret-b"}
	if d := kvDiff(want, map[string]any{"A": "secret-a", "B": "secret-b"}); d != "" {
		t.Errorf("same value: %s", d)
	}
	d := kvDiff(want, map[string]any{"A": "other", "C": "x"})
	if d != "A differs, B missing, C not written" {
		t.Errorf("kvDiff = %q", d)
	}
	if strings.Contains(d, "secret") || strings.Contains(d, "other") {
		t.Errorf("kvDiff shows a value: %s", d)
	}
}
