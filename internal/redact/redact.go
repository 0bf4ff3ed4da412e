// Package redact keeps secret values out of logs and output: a registry of known values,
// a line-buffered writer that masks them (and well-known secret-bearing lines), and a
// fingerprint for talking about a value without showing it.
package redact

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"sort"
	"sync"
)

// Mask replaces every redacted value.
const Mask = "[REDACTED]"

// minLen: shorter values are not registered; masking them would shred ordinary text.
const minLen = 6

// secretLines match lines that carry a secret after a label, whatever its value
// (Vault's dev-mode banner prints its unseal key and root token this way).
var secretLines = regexp.MustCompile(`(?i)((?:unseal key(?: \d+)?|root token|initial root token|recovery key(?: \d+)?|password|token)[ \t]*[:=][ \t]*)(\S+)`)

// Set is a registry of secret values. The zero value is ready to use.
type Set struct {
	mu     sync.RWMutex
	values [][]byte
}

// Add registers values to be masked from now on.
func (s *Set) Add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if len(v) < minLen {
			continue
		}
		dup := false
		for _, have := range s.values {
			if string(have) == v {
				dup = true
				break
			}
		}
		if !dup {
			s.values = append(s.values, []byte(v))
		}
	}
	// longest first, so a value containing another is masked whole
	sort.Slice(s.values, func(i, j int) bool { return len(s.values[i]) > len(s.values[j]) })
}

// Values returns a copy of the registered values (for canary checks).
func (s *Set) Values() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, len(s.values))
	for i, v := range s.values {
		out[i] = string(v)
	}
	return out
}

// Bytes returns b with every registered value and labelled secret masked.
func (s *Set) Bytes(b []byte) []byte {
	s.mu.RLock()
	for _, v := range s.values {
		if bytes.Contains(b, v) {
			b = bytes.ReplaceAll(b, v, []byte(Mask))
		}
	}
	s.mu.RUnlock()
	return secretLines.ReplaceAll(b, []byte("${1}"+Mask))
}

// String is Bytes for strings.
func (s *Set) String(v string) string { return string(s.Bytes([]byte(v))) }

// Writer returns a writer that masks whole lines before passing them to w.
// Close flushes a final partial line.
func (s *Set) Writer(w io.Writer) io.WriteCloser { return &lineWriter{set: s, w: w} }

type lineWriter struct {
	set *Set
	w   io.Writer
	mu  sync.Mutex
	buf []byte
}

// maxLine bounds buffering when a process never writes a newline.
const maxLine = 64 << 10

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		if _, err := l.w.Write(l.set.Bytes(l.buf[:i+1])); err != nil {
			return 0, err
		}
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > maxLine {
		if _, err := l.w.Write(l.set.Bytes(l.buf)); err != nil {
			return 0, err
		}
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

func (l *lineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.w.Write(l.set.Bytes(l.buf))
	l.buf = nil
	return err
}

// Fingerprint describes a value without revealing it: its length and a SHA-256 prefix.
func Fingerprint(v []byte) string {
	sum := sha256.Sum256(v)
	return fmt.Sprintf("len=%d sha256=%s", len(v), hex.EncodeToString(sum[:])[:12])
}
