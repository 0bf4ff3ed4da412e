package redact

import (
	"bytes"
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

func TestFingerprintHidesTheValue(t *testing.T) {
	f := Fingerprint([]byte("devpassword"))
	if strings.Contains(f, "devpassword") || !strings.HasPrefix(f, "len=11 sha256=") {
		t.Fatalf("bad fingerprint %q", f)
	}
}
