package redact

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestWriterMasksRegisteredValuesAcrossWrites(t *testing.T) {
	var s Set
	s.Add("hunter2-canary", "short")
	var out bytes.Buffer
	w := s.Writer(&out)
	// the value arrives split over two writes; the line is masked as a whole
	w.Write([]byte("login with hunter2-"))
	w.Write([]byte("canary ok\nnext short line\npartial hunter2-canary"))
	w.Close()
	got := out.String()
	if strings.Contains(got, "hunter2-canary") {
		t.Fatalf("secret leaked: %q", got)
	}
	if strings.Count(got, Mask) != 2 {
		t.Fatalf("want 2 masks, got %q", got)
	}
	if !strings.Contains(got, "next short line") {
		t.Fatalf("values shorter than %d chars must not be masked: %q", minLen, got)
	}
}

func TestVaultDevBannerIsMasked(t *testing.T) {
	var s Set
	banner := "Unseal Key: q1w2e3r4t5y6u7i8o9p0AbCdEfGh=\nRoot Token: hvs.abcdefghijklmnop\nThe unseal key and root token are displayed below\n"
	got := s.String(banner)
	for _, leak := range []string{"q1w2e3r4t5y6u7i8o9p0AbCdEfGh=", "hvs.abcdefghijklmnop"} {
		if strings.Contains(got, leak) {
			t.Fatalf("banner secret %q leaked: %q", leak, got)
		}
	}
	if !strings.Contains(got, "The unseal key and root token are displayed below") {
		t.Fatalf("ordinary text was altered: %q", got)
	}
}

func TestFingerprintIsKeyedAndHidesTheValue(t *testing.T) {
	f := Fingerprint([]byte("devpassword"))
	if strings.Contains(f, "devpassword") || !strings.HasPrefix(f, "hmac:") || !strings.HasSuffix(f, " len=11") {
		t.Fatalf("bad fingerprint %q", f)
	}
	// an unkeyed hash of a guess must not confirm it
	sum := sha256.Sum256([]byte("devpassword"))
	if strings.Contains(f, hex.EncodeToString(sum[:])[:12]) {
		t.Fatalf("fingerprint %q is the plain SHA-256 of the value", f)
	}
	if g := Fingerprint([]byte("devpassword")); g != f {
		t.Fatalf("same value, different fingerprints in one process: %q, %q", f, g)
	}
	if g := Fingerprint([]byte("devpassworD")); g == f {
		t.Fatalf("different values, same fingerprint %q", f)
	}
}

func TestFormsFindTheValueInsideLargerBase64(t *testing.T) {
	v := "devpassword"
	forms := map[string]string{}
	for _, f := range Forms(v) {
		forms[f.Name] = f.Text
	}
	for _, name := range []string{"raw", "base64", "base64-in-blob+0", "base64-in-blob+1", "base64-in-blob+2"} {
		if forms[name] == "" {
			t.Fatalf("form %s missing: %v", name, forms)
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for pre := 0; pre < 6; pre++ {
			blob := enc.EncodeToString([]byte(strings.Repeat("x", pre) + v + "@postgres:5432/bookstore"))
			found := ""
			for name, text := range forms {
				if strings.Contains(name, "in-blob") && strings.Contains(blob, text) {
					found = name
				}
			}
			if found == "" {
				t.Errorf("value at offset %d not found in blob %s by any in-blob form", pre, blob)
			}
		}
	}
}

func TestFormsEscapes(t *testing.T) {
	v := `p@ss w/rd&"<x>"+=?`
	want := map[string]bool{url.QueryEscape(v): false, url.PathEscape(v): false, base64.StdEncoding.EncodeToString([]byte(v)): false,
		base64.RawURLEncoding.EncodeToString([]byte(v)): false, `p@ss w/rd\u0026\"\u003cx\u003e\"+=?`: false, `p@ss w/rd&\"<x>\"+=?`: false}
	for _, f := range Forms(v) {
		if _, ok := want[f.Text]; ok {
			want[f.Text] = true
		}
	}
	for text, ok := range want {
		if !ok {
			t.Errorf("form %q missing from %v", text, Forms(v))
		}
	}
	if Forms("") != nil {
		t.Error("the empty value has forms")
	}
}

func TestWriterMasksEncodedForms(t *testing.T) {
	const v = "s3cr3t/pass+word&more"
	var s Set
	s.Add(v)
	lines := []string{
		"raw " + v,
		"b64 " + base64.StdEncoding.EncodeToString([]byte(v)),
		"b64url " + base64.RawURLEncoding.EncodeToString([]byte(v)),
		"query ?p=" + url.QueryEscape(v) + "&x=1",
		"path /" + url.PathEscape(v) + "/x",
		`json {"DB":"` + strings.ReplaceAll(v, "&", `\u0026`) + `"}`,
		"secret data DB_DSN: " + base64.StdEncoding.EncodeToString([]byte("postgres://bookstore:"+v+"@postgres:5432/bookstore")),
		"secret data X: " + base64.StdEncoding.EncodeToString([]byte("ab:"+v+"@h")),
		"secret data Y: " + base64.StdEncoding.EncodeToString([]byte("a:"+v+"@h")),
	}
	var out bytes.Buffer
	w := s.Writer(&out)
	for _, l := range lines {
		w.Write([]byte(l + "\n"))
	}
	w.Close()
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("want %d lines, got %q", len(lines), out.String())
	}
	for i, l := range got {
		if !strings.Contains(l, Mask) {
			t.Errorf("line %d not masked: %q", i, l)
		}
		for _, f := range Forms(v) {
			if strings.Contains(l, f.Text) {
				t.Errorf("line %d still holds the %s form: %q", i, f.Name, l)
			}
		}
	}
	if !strings.HasPrefix(got[3], "query ?p=") || !strings.HasSuffix(got[3], "&x=1") {
		t.Errorf("text around the value altered: %q", got[3])
	}
	if vs := s.Values(); len(vs) != 1 || vs[0] != v {
		t.Errorf("Values must return the value as registered, got %d values", len(vs))
	}
}

// 60 registered values (about 12 forms each) on a 200-byte log line.
func BenchmarkBytes(b *testing.B) {
	var s Set
	for i := 0; i < 60; i++ {
		s.Add(fmt.Sprintf("secret-value-%02d-%x", i, sha256.Sum256([]byte{byte(i)})))
	}
	line := []byte(strings.Repeat("2024-01-01T00:00:00Z [INFO] core: ordinary log text ", 4) + "\n")
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		s.Bytes(line)
	}
}

func TestSecretLinesThroughTheQuickTest(t *testing.T) {
	var s Set
	for _, line := range []string{"PASSWORD=abcdef", "x Token: hvs.123", "Recovery Key 2: qwerty", "\u212Aey\u212A: nope", "Unseal \u212Aey: sekrit"} {
		got := s.String(line)
		if got == line && !strings.Contains(line, "nope") {
			t.Errorf("%q not masked", line)
		}
	}
	if got := s.String("Unseal \u212Aey: sekrit"); strings.Contains(got, "sekrit") {
		t.Errorf("case-folded label not masked: %q", got)
	}
}

func TestOverlappingValuesAreMaskedWhole(t *testing.T) {
	var s Set
	s.Add("abcdef-secret", "secret-ghijkl", "abcdef")
	got := s.String("x abcdef-secret-ghijkl y abcdef z")
	if got != "x "+Mask+" y "+Mask+" z" {
		t.Fatalf("got %q", got)
	}
	if got := s.String("nothing here"); got != "nothing here" {
		t.Fatalf("clean text altered: %q", got)
	}
}

// A line longer than the writer buffers goes out in parts; a value across the cut is masked.
func TestLongLineCutKeepsValuesWhole(t *testing.T) {
	const v = "long-line-secret-value"
	var s Set
	s.Add(v)
	for _, at := range []int{maxLine - 5, maxLine - len(v) + 1, maxLine, maxLine + 3} {
		var out bytes.Buffer
		w := s.Writer(&out)
		line := strings.Repeat("a", at) + v + strings.Repeat("b", 10)
		w.Write([]byte(line[:maxLine+1])) // over the limit: a part is written now
		w.Write([]byte(line[maxLine+1:] + "\n"))
		w.Close()
		if strings.Contains(out.String(), v[:8]) || strings.Count(out.String(), Mask) != 1 || out.Len() != len(line)+1-len(v)+len(Mask) {
			t.Errorf("value at %d: masked %d times, output %d bytes", at, strings.Count(out.String(), Mask), out.Len())
		}
	}
}
