// Package redact keeps secret values out of logs and output: a registry of known values,
// a line-buffered writer that masks them (and well-known secret-bearing lines), and a keyed
// fingerprint for talking about a value without showing it.
//
// A registered value is masked in every form Forms lists: as it is, JSON-escaped,
// URL-escaped, base64 (standard and URL alphabets, with and without padding) and the part of
// its base64 that survives inside a larger base64 blob (a Secret's data, say) at any of the
// three byte alignments. The canary package searches files for the same forms.
package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Mask replaces every redacted value.
const Mask = "[REDACTED]"

// minLen: shorter values are not registered; masking them would shred ordinary text.
const minLen = 6

// MinInner is the shortest in-blob base64 fragment Forms returns: shorter fragments (of
// values under 6 bytes) would match ordinary base64 by chance.
const MinInner = 8

// secretLines match lines that carry a secret after a label, whatever its value
// (Vault's dev-mode banner prints its unseal key and root token this way).
var secretLines = regexp.MustCompile(`(?i)((?:unseal key(?: \d+)?|root token|initial root token|recovery key(?: \d+)?|password|token)[ \t]*[:=][ \t]*)(\S+)`)

// Form is one way a secret value can appear in text.
type Form struct {
	Name string // raw, json, url-query, url-path, base64, base64-nopad, base64url, base64url-nopad, base64-in-blob+N, base64url-in-blob+N
	Text string
}

// Forms returns the forms of v that Set masks and the canary searches for, most specific
// first, without duplicates (when two encodings give the same text, the first name stays):
//
//   - raw: v itself
//   - json: v JSON-escaped without the quotes, as encoding/json writes it (with and without
//     its HTML escaping of <, > and &)
//   - url-query, url-path: url.QueryEscape(v) and url.PathEscape(v)
//   - base64, base64-nopad, base64url, base64url-nopad: v encoded on its own
//   - base64-in-blob+N, base64url-in-blob+N (N = 0, 1, 2): v inside a larger base64 text that
//     starts N bytes (mod 3) before it. Only the characters that depend on v's bytes alone are
//     kept (the first and last one or two depend on the neighbours); fragments shorter than
//     MinInner are left out.
//
// Not covered: other encodings (hex, lower-case percent escapes, double encoding, \/ escapes,
// compression), base64 wrapped across lines, and a value split over lines.
func Forms(v string) []Form {
	if v == "" {
		return nil
	}
	var out []Form
	seen := map[string]bool{}
	add := func(name, text string) {
		if text == "" || seen[text] {
			return
		}
		seen[text] = true
		out = append(out, Form{Name: name, Text: text})
	}
	add("raw", v)
	if b, err := json.Marshal(v); err == nil {
		add("json", string(b[1:len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		add("json", strings.TrimSuffix(strings.TrimSpace(buf.String()), `"`)[1:])
	}
	add("url-query", url.QueryEscape(v))
	add("url-path", url.PathEscape(v))
	add("base64", base64.StdEncoding.EncodeToString([]byte(v)))
	add("base64-nopad", base64.RawStdEncoding.EncodeToString([]byte(v)))
	add("base64url", base64.URLEncoding.EncodeToString([]byte(v)))
	add("base64url-nopad", base64.RawURLEncoding.EncodeToString([]byte(v)))
	for _, e := range []struct {
		name string
		enc  *base64.Encoding
	}{{"base64", base64.RawStdEncoding}, {"base64url", base64.RawURLEncoding}} {
		for shift := 0; shift < 3; shift++ {
			if inner := inBlob(e.enc, v, shift); len(inner) >= MinInner {
				add(fmt.Sprintf("%s-in-blob+%d", e.name, shift), inner)
			}
		}
	}
	return out
}

// inBlob returns the base64 characters of v that do not depend on its neighbours when v
// starts shift bytes into a 3-byte group of a larger encoded text.
func inBlob(enc *base64.Encoding, v string, shift int) string {
	b := make([]byte, shift+len(v))
	copy(b[shift:], v)
	s := enc.EncodeToString(b)
	// character k holds bits [6k, 6k+6); keep those entirely within v's bits
	start := (8*shift + 5) / 6
	end := 8 * (shift + len(v)) / 6
	if end <= start {
		return ""
	}
	return s[start:end]
}

// Set is a registry of secret values. The zero value is ready to use.
type Set struct {
	mu       sync.RWMutex
	values   [][]byte
	patterns [][]byte // every Form of every value, longest first
	m        matcher
}

// Add registers values to be masked from now on, in every form Forms lists.
func (s *Set) Add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// sets of what is registered: Add of thousands of values (a lease storm's passwords)
	// stays linear
	haveValue := make(map[string]bool, len(s.values)+len(values))
	for _, v := range s.values {
		haveValue[string(v)] = true
	}
	havePattern := make(map[string]bool, len(s.patterns))
	for _, p := range s.patterns {
		havePattern[string(p)] = true
	}
	added := false
	for _, v := range values {
		if len(v) < minLen || haveValue[v] {
			continue
		}
		haveValue[v] = true
		added = true
		s.values = append(s.values, []byte(v))
		for _, f := range Forms(v) {
			if !havePattern[f.Text] {
				havePattern[f.Text] = true
				s.patterns = append(s.patterns, []byte(f.Text))
			}
		}
	}
	if !added {
		return
	}
	// longest first, so a value containing another is masked whole
	sort.SliceStable(s.values, func(i, j int) bool { return len(s.values[i]) > len(s.values[j]) })
	sort.SliceStable(s.patterns, func(i, j int) bool { return len(s.patterns[i]) > len(s.patterns[j]) })
	s.m = newMatcher(s.patterns)
}

// Values returns a copy of the registered values (for canary checks), as registered: not
// their encoded forms.
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
	spans := s.m.spans(b)
	s.mu.RUnlock()
	if len(spans) > 0 {
		out := make([]byte, 0, len(b))
		at := 0
		for _, sp := range spans {
			out = append(append(out, b[at:sp[0]]...), Mask...)
			at = sp[1]
		}
		b = append(out, b[at:]...)
	}
	if !mayHaveSecretLine(b) {
		return b
	}
	return secretLines.ReplaceAll(b, []byte("${1}"+Mask))
}

// mayHaveSecretLine is a quick test before the (slow) secretLines expression: every label
// it matches ends with "key", "token" or "password". Non-ASCII text, which case folding can
// make match otherwise, always goes to the expression.
func mayHaveSecretLine(b []byte) bool {
	for i, c := range b {
		if c >= 0x80 {
			return true
		}
		switch c | 0x20 { // lower case, for letters
		case 'k':
			if hasFoldAt(b, i, "key") {
				return true
			}
		case 't':
			if hasFoldAt(b, i, "token") {
				return true
			}
		case 'p':
			if hasFoldAt(b, i, "password") {
				return true
			}
		}
	}
	return false
}

// hasFoldAt reports whether b holds word (lower-case ASCII letters) at i, ignoring case.
func hasFoldAt(b []byte, i int, word string) bool {
	if len(b)-i < len(word) {
		return false
	}
	for j := 0; j < len(word); j++ {
		if b[i+j]|0x20 != word[j] {
			return false
		}
	}
	return true
}

// safeCut returns how much of b, a line still incomplete, can be masked and written now:
// all but the last (longest form - 1) bytes, where a value may yet be completing, and
// never in the middle of a match. (A label of secretLines and its value can still be cut
// apart; that needs a line over 64 KiB.)
func (s *Set) safeCut(b []byte) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	longest := 0
	if len(s.patterns) > 0 {
		longest = len(s.patterns[0])
	}
	c := len(b) - max(longest-1, 0)
	for _, sp := range s.m.spans(b) {
		if sp[0] < c && c < sp[1] {
			c = sp[0]
		}
	}
	if c <= 0 {
		return len(b)
	}
	return c
}

// matcher finds every pattern in one pass: a bitset of the patterns' first two bytes
// rules out most positions, and the patterns starting with those two bytes are compared
// (longest first) at the rest.
type matcher struct {
	first    [1 << 16 / 64]uint64
	byPrefix map[uint16][][]byte
}

func newMatcher(patterns [][]byte) matcher {
	m := matcher{byPrefix: map[uint16][][]byte{}}
	for _, p := range patterns { // longest first, and so they stay per prefix
		if len(p) < 2 {
			continue
		}
		k := uint16(p[0])<<8 | uint16(p[1])
		m.first[k/64] |= 1 << (k % 64)
		m.byPrefix[k] = append(m.byPrefix[k], p)
	}
	return m
}

// spans returns the byte ranges of b covered by a pattern, overlapping matches merged, in
// order: every byte of every occurrence of every pattern lies in one of them.
func (m *matcher) spans(b []byte) [][2]int {
	var out [][2]int
	for i := 0; i+1 < len(b); i++ {
		k := uint16(b[i])<<8 | uint16(b[i+1])
		if m.first[k/64]&(1<<(k%64)) == 0 {
			continue
		}
		for _, p := range m.byPrefix[k] {
			if !bytes.HasPrefix(b[i:], p) {
				continue
			}
			end := i + len(p)
			if n := len(out); n > 0 && i < out[n-1][1] {
				out[n-1][1] = max(out[n-1][1], end)
			} else {
				out = append(out, [2]int{i, end})
			}
			break // the longest match here covers the shorter ones
		}
	}
	return out
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
		// a long line goes out in parts, cut where no value can run across
		c := l.set.safeCut(l.buf)
		if _, err := l.w.Write(l.set.Bytes(l.buf[:c])); err != nil {
			return 0, err
		}
		l.buf = append(l.buf[:0], l.buf[c:]...)
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

// fingerprintKey keys Fingerprint: random, per process, never written anywhere.
var fingerprintKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("redact: no randomness for the fingerprint key: " + err.Error())
	}
	return k
}()

// Fingerprint describes a value without revealing it: an HMAC-SHA256 prefix under a random
// key made for this process, and the length, e.g. "hmac:3f9a0c1d22e4 len=11". Within one
// process equal values have equal fingerprints, so two can be compared; since the key is
// never shown, a fingerprint cannot be checked against guesses offline (a plain hash of a
// low-entropy password like a demo one could), and fingerprints from different runs are
// not comparable.
func Fingerprint(v []byte) string {
	m := hmac.New(sha256.New, fingerprintKey)
	m.Write(v)
	return fmt.Sprintf("hmac:%s len=%d", hex.EncodeToString(m.Sum(nil))[:12], len(v))
}
