package vaultproc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteRaftConfigPerformanceMultiplier(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mult int
		want string // "" : no performance_multiplier line
	}{{0, ""}, {1, "performance_multiplier = 1"}, {3, "performance_multiplier = 3"}} {
		p := filepath.Join(dir, "vault.hcl")
		if err := writeRaftConfig(p, "vault-0", filepath.Join(dir, "data"), 8200, 8201, tc.mult, nil); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		hcl := string(b)
		stanza := hcl[strings.Index(hcl, `storage "raft" {`):]
		stanza = stanza[:strings.Index(stanza, "}")]
		has := strings.Contains(stanza, "performance_multiplier")
		if tc.want == "" && has {
			t.Errorf("multiplier 0 wrote a performance_multiplier: %s", stanza)
		}
		if tc.want != "" && !strings.Contains(stanza, tc.want) {
			t.Errorf("multiplier %d: the raft stanza lacks %q: %s", tc.mult, tc.want, stanza)
		}
	}
	if err := writeRaftConfig(filepath.Join(dir, "x.hcl"), "vault-0", filepath.Join(dir, "data"), 1, 2, -1, nil); err == nil {
		t.Error("a negative multiplier: want an error")
	}
}
