package versions

import (
	"strings"
	"testing"
)

func TestPinnedMatchesTheDesignCard(t *testing.T) {
	p := Pinned()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Kubernetes, "v1.31.") || p.Vault != "1.17.2" || p.VaultChart != "0.28.1" ||
		p.ESO != "v0.10.4" || p.ESOChart != "0.10.4" || !strings.HasPrefix(p.Etcd, "v3.5.") || p.Postgres != "15" {
		t.Fatalf("pinned versions drifted from the design card: %+v", p)
	}
}

func TestEnvironmentOverridesOneVersion(t *testing.T) {
	t.Setenv("VAULT_VERSION", "1.18.0")
	s, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if s.Vault != "1.18.0" || s.ESO != Pinned().ESO {
		t.Fatalf("override not applied alone: %+v", s)
	}
}

func TestMalformedOverrideNamesItsVariable(t *testing.T) {
	t.Setenv("ESO_VERSION", "0.10.4") // missing the v
	_, err := FromEnv()
	if err == nil || !strings.Contains(err.Error(), "ESO_VERSION") {
		t.Fatalf("want an error naming ESO_VERSION, got %v", err)
	}
}
