package versions

import (
	"flag"
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

func TestEverySetIsCompleteAndWellFormed(t *testing.T) {
	for _, name := range Names() {
		for _, backend := range []string{"kind", Embedded} {
			s, err := Named(name, backend)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range s.entries() {
				if *e.field == "" {
					t.Errorf("set %s (%s) has no %s", name, backend, e.env)
				}
			}
			if err := s.Validate(); err != nil {
				t.Errorf("set %s (%s): %v", name, backend, err)
			}
		}
	}
}

func TestEmbeddedViewAppliesTheEmbeddedBlock(t *testing.T) {
	kind, err := Named("candidate", "kind")
	if err != nil {
		t.Fatal(err)
	}
	emb, err := Named("candidate", Embedded)
	if err != nil {
		t.Fatal(err)
	}
	if kind.ESO == emb.ESO {
		t.Fatalf("candidate: the embedded block should change ESO for the embedded backend (kind %s, embedded %s)", kind.ESO, emb.ESO)
	}
	if kind.VaultChart != emb.VaultChart || kind.Kubernetes != emb.Kubernetes {
		t.Fatalf("the embedded block changed more than it lists: %+v vs %+v", kind, emb)
	}
}

func TestSetIsPickedByEnvironmentThenFlag(t *testing.T) {
	t.Setenv(SetEnv, "candidate")
	s, err := FromEnv("kind")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Named("candidate", "kind")
	if s != want {
		t.Fatalf("VERSIONS=candidate gave %+v, want %+v", s, want)
	}
	var c Choice
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--versions=pinned"}); err != nil {
		t.Fatal(err)
	}
	if s, err = c.Resolve("kind"); err != nil || s != Pinned() {
		t.Fatalf("--versions=pinned should win over VERSIONS: %+v, %v", s, err)
	}
}

func TestUnknownSetNamesTheKnownOnes(t *testing.T) {
	t.Setenv(SetEnv, "nightly")
	_, err := FromEnv("kind")
	if err == nil || !strings.Contains(err.Error(), "pinned") || !strings.Contains(err.Error(), "candidate") {
		t.Fatalf("want an error listing the sets, got %v", err)
	}
}

func TestEnvironmentOverridesOneVersion(t *testing.T) {
	t.Setenv("VAULT_VERSION", "1.18.0")
	s, err := FromEnv(Embedded)
	if err != nil {
		t.Fatal(err)
	}
	if s.Vault != "1.18.0" || s.ESO != Pinned().ESO {
		t.Fatalf("override not applied alone: %+v", s)
	}
}

func TestChartOverriddenAloneRunsItsOwnAppVersionOnKind(t *testing.T) {
	t.Setenv("VAULT_CHART_VERSION", "0.34.1")
	s, err := FromEnv("kind")
	if err != nil {
		t.Fatal(err)
	}
	if s.VaultChart != "0.34.1" || s.Vault != "" || s.ESO != Pinned().ESO {
		t.Fatalf("want chart 0.34.1 with its own app version (empty) and ESO untouched, got %+v", s)
	}
	if s, _ = FromEnv(Embedded); s.Vault != Pinned().Vault {
		t.Fatalf("embedded has no chart: its Vault must stay the set's, got %+v", s)
	}
	t.Setenv("VAULT_VERSION", "1.17.2")
	if s, _ = FromEnv("kind"); s.Vault != "1.17.2" {
		t.Fatalf("chart and image tag both given: want image tag 1.17.2, got %+v", s)
	}
}

func TestFlagsRoundTrip(t *testing.T) {
	t.Setenv("ESO_CHART_VERSION", "2.9.0")
	want, err := FromEnv("kind")
	if err != nil {
		t.Fatal(err)
	}
	var c Choice
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(want.Flags()); err != nil {
		t.Fatal(err)
	}
	got, err := c.Resolve("kind")
	if err != nil || got != want {
		t.Fatalf("a child given Flags() resolves %+v (%v), want %+v", got, err, want)
	}
}

func TestMalformedOverrideNamesItsVariable(t *testing.T) {
	t.Setenv("ESO_VERSION", "0.10.4") // missing the v
	_, err := FromEnv(Embedded)
	if err == nil || !strings.Contains(err.Error(), "ESO_VERSION") {
		t.Fatalf("want an error naming ESO_VERSION, got %v", err)
	}
}

func TestUpgradeTargetTakesPrefixedOverrides(t *testing.T) {
	t.Setenv("TO_VAULT_VERSION", "1.17.2")
	t.Setenv("VAULT_VERSION", "9.9.9") // the running set's override does not leak into the target
	s, err := Target("candidate", "kind", "TO_")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Named("candidate", "kind")
	if s.Vault != "1.17.2" || s.VaultChart != want.VaultChart || s.ESO != want.ESO {
		t.Fatalf("target %+v: want candidate with Vault image tag 1.17.2", s)
	}
}
