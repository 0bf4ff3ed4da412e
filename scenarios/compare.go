package scenarios

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/secretslab/secretslab/internal/redact"
)

// DiffData compares two Secrets' data. It returns "" when both hold the same keys with the
// same bytes; otherwise one line per differing key with lengths and keyed fingerprints, never
// the values. Labels and annotations are not data, so ESO's own are ignored by design.
func DiffData(want, got map[string][]byte) string {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var diffs []string
	for _, k := range sorted {
		w, inWant := want[k]
		g, inGot := got[k]
		switch {
		case !inGot:
			diffs = append(diffs, fmt.Sprintf("%s missing (want %s)", k, redact.Fingerprint(w)))
		case !inWant:
			diffs = append(diffs, fmt.Sprintf("%s unexpected (%s)", k, redact.Fingerprint(g)))
		case !bytes.Equal(w, g):
			diffs = append(diffs, fmt.Sprintf("%s differs (want %s, got %s)", k, redact.Fingerprint(w), redact.Fingerprint(g)))
		}
	}
	return strings.Join(diffs, "; ")
}

// keyNames lists the keys of data, sorted.
func keyNames(data map[string][]byte) []string {
	var out []string
	for k := range data {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
