package canary

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secretslab/secretslab/internal/redact"
)

// a value with characters every escape treats differently; 22 bytes, so its base64 is padded
const secret = `dev p@ss/w0rd+&<"x">??`

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func jsonEscaped(v string) string {
	b, _ := json.Marshal(v)
	return string(b[1 : len(b)-1])
}

func jsonNoHTML(v string) string {
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	e.Encode(v)
	s := strings.TrimSpace(b.String())
	return s[1 : len(s)-1]
}

// Each encoded form, planted in a file of its own, is found and named; a clean file gives
// no hit; a hit's text holds no form of the value.
func TestScanFindsEveryForm(t *testing.T) {
	prefix := func(n int) string { return "postgres://" + strings.Repeat("a", n) + ":" }
	dsn := func(n int) []byte { return []byte(prefix(n) + secret + "@postgres:5432/bookstore") }
	shift := func(n int) string { return fmt.Sprint(len(prefix(n)) % 3) }
	plants := map[string]struct{ content, form string }{
		"raw.log":        {"connecting with " + secret + "\n", "raw"},
		"json.json":      {`{"password":"` + jsonEscaped(secret) + `"}`, "json"},
		"json-html.json": {`{"password":"` + jsonNoHTML(secret) + `"}`, "json"},
		"query.log":      {"GET /login?p=" + url.QueryEscape(secret) + "&x=1", "url-query"},
		"path.log":       {"GET /users/" + url.PathEscape(secret) + "/x", "url-path"},
		"b64.txt":        {"data: " + base64.StdEncoding.EncodeToString([]byte(secret)) + "\n", "base64"},
		"b64nopad.txt":   {"data: " + base64.RawStdEncoding.EncodeToString([]byte(secret)) + "\n", "base64-nopad"},
		"b64url.txt":     {"t=" + base64.URLEncoding.EncodeToString([]byte(secret)), "base64url"},
		"b64urlnopad.t":  {"t=" + base64.RawURLEncoding.EncodeToString([]byte(secret)) + ".", "base64url-nopad"},
		"blob0.yaml":     {"DB_DSN: " + base64.StdEncoding.EncodeToString(dsn(1)), "base64-in-blob+" + shift(1)},
		"blob1.yaml":     {"DB_DSN: " + base64.StdEncoding.EncodeToString(dsn(2)), "base64-in-blob+" + shift(2)},
		"blob2.yaml":     {"DB_DSN: " + base64.StdEncoding.EncodeToString(dsn(3)), "base64-in-blob+" + shift(3)},
		"urlblob0.jwt":   {"eyJ." + base64.RawURLEncoding.EncodeToString(dsn(1)) + ".sig", "base64url-in-blob+" + shift(1)},
		"urlblob1.jwt":   {"eyJ." + base64.RawURLEncoding.EncodeToString(dsn(2)) + ".sig", "base64url-in-blob+" + shift(2)},
		"urlblob2.jwt":   {"eyJ." + base64.RawURLEncoding.EncodeToString(dsn(3)) + ".sig", "base64url-in-blob+" + shift(3)},
		"sub/deep/x.log": {"nested " + secret, "raw"},
	}
	// every form of the test value is distinct (none deduplicated), so each plant tests one
	if n := len(redact.Forms(secret)); n != 15 {
		t.Fatalf("the test value has %d distinct forms, want 15", n)
	}
	b64 := map[string]bool{}
	for _, f := range redact.Forms(secret) {
		b64[f.Name] = true
	}
	for _, p := range plants {
		if !b64[p.form] {
			t.Fatalf("form %s is not among redact.Forms of the test value: %v", p.form, redact.Forms(secret))
		}
	}
	dir := t.TempDir()
	for name, p := range plants {
		write(t, dir, name, p.content)
	}
	clean := write(t, dir, "clean.log", "nothing to see: "+strings.Repeat("ordinary log line with a password: [REDACTED]\n", 2000))
	other := t.TempDir()
	write(t, other, "other.log", "another dir, clean")

	r, err := Scan([]string{dir, other}, []string{secret, "", secret, "unused-value-xyz"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != len(plants)+2 || r.Values != 2 || r.Forms == 0 || r.Bytes == 0 {
		t.Fatalf("counts: %+v", r)
	}
	got := map[string]Hit{}
	for _, h := range r.Hits {
		rel, _ := filepath.Rel(dir, h.File)
		if _, dup := got[rel]; dup {
			t.Errorf("two hits for one value in %s", rel)
		}
		got[rel] = h
	}
	fp := redact.Fingerprint([]byte(secret))
	for name, p := range plants {
		h, ok := got[name]
		if !ok {
			t.Errorf("%s (%s) not found", name, p.form)
			continue
		}
		if h.Forms[0] != p.form || h.Fingerprint != fp {
			t.Errorf("%s: want form %s and %s, got %s", name, p.form, fp, h)
		}
	}
	if _, ok := got["clean.log"]; ok || len(r.Hits) != len(plants) {
		t.Errorf("want %d hits (none in %s), got %d: %v", len(plants), clean, len(r.Hits), r.Hits)
	}
	err = r.Err()
	if err == nil {
		t.Fatal("hits but no error")
	}
	for _, f := range redact.Forms(secret) {
		for _, text := range []string{err.Error(), r.Summary(), fmt.Sprint(r.Hits)} {
			if strings.Contains(text, f.Text) {
				t.Fatalf("hit text holds the %s form of the value: %s", f.Name, text)
			}
		}
	}
	if !strings.Contains(err.Error(), "b64.txt (base64; hmac:") {
		t.Errorf("hit text: %s", err)
	}
}

func TestScanCleanDirAndCustomFingerprint(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.log", "hello\n")
	write(t, dir, "b/c.log", "world\n")
	r, err := Scan([]string{dir}, []string{"hunter2-canary"}, func([]byte) string { return "FP" })
	if err != nil || r.Err() != nil || r.Files != 2 || r.Values != 1 {
		t.Fatalf("clean dir: %+v, %v", r, err)
	}
	if !strings.HasSuffix(r.Summary(), "none found") {
		t.Errorf("summary: %s", r.Summary())
	}
	write(t, dir, "d.log", "x hunter2-canary")
	r, _ = Scan([]string{dir}, []string{"hunter2-canary"}, func([]byte) string { return "FP" })
	if len(r.Hits) != 1 || r.Hits[0].String() != filepath.Join(dir, "d.log")+" (raw; FP)" {
		t.Fatalf("hits: %v", r.Hits)
	}
}

// A value across the boundary of the chunks a file is read in is found.
func TestScanAcrossChunks(t *testing.T) {
	dir := t.TempDir()
	v := "boundary-secret-value"
	for _, at := range []int{chunk - 5, chunk - 1, chunk, 2*chunk - 3} {
		name := fmt.Sprintf("f%d", at)
		write(t, dir, name, strings.Repeat(".", at)+v+strings.Repeat(".", 100))
	}
	r, err := Scan([]string{dir}, []string{v}, nil)
	if err != nil || len(r.Hits) != 4 {
		t.Fatalf("want 4 hits, got %v (%v)", r.Hits, err)
	}
}

func TestScanMissingDirIsAnError(t *testing.T) {
	if _, err := Scan([]string{filepath.Join(t.TempDir(), "nope")}, []string{"x"}, nil); err == nil {
		t.Fatal("a dir that cannot be walked must be an error")
	}
}
