package kind

import (
	"strings"
	"testing"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/charts"
)

func TestSetImageTagKeepsTheChapterValues(t *testing.T) {
	raw, err := fixtures.File(fixtures.HelmValuesDir + "/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	values, err := charts.ValuesFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	setImageTag(values, "server", "1.17.2")
	server := values["server"].(map[string]any)
	if tag := server["image"].(map[string]any)["tag"]; tag != "1.17.2" {
		t.Fatalf("server.image.tag = %v", tag)
	}
	if dev, _ := server["dev"].(map[string]any); dev["enabled"] != true {
		t.Fatalf("server.dev.enabled lost: %+v", server)
	}

	eso := map[string]any{"installCRDs": true}
	setImageTag(eso, "", "v2.9.0")
	if eso["image"].(map[string]any)["tag"] != "v2.9.0" || eso["installCRDs"] != true {
		t.Fatalf("ESO values: %+v", eso)
	}
	none := map[string]any{}
	setImageTag(none, "server", "")
	if len(none) != 0 {
		t.Fatalf("an empty tag must leave the chart's default: %+v", none)
	}
}

func TestRaftPerformanceMultiplierInTheChartConfig(t *testing.T) {
	chartDefaults := map[string]any{"server": map[string]any{"ha": map[string]any{"raft": map[string]any{
		"config": "ui = true\n\nstorage \"raft\" {\n  path = \"/vault/data\"\n}\n\nservice_registration \"kubernetes\" {}\n"}}}}
	raw, err := fixtures.File(fixtures.HelmValuesDir + "/ha-raft.yaml")
	if err != nil {
		t.Fatal(err)
	}
	values, err := charts.ValuesFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := setRaftPerformanceMultiplier(values, chartDefaults, 1); err != nil {
		t.Fatal(err)
	}
	cfg, _ := nestedString(values, "server", "ha", "raft", "config")
	want := "storage \"raft\" {\n  performance_multiplier = 1\n  path = \"/vault/data\"\n}"
	if !strings.Contains(cfg, want) || !strings.Contains(cfg, `service_registration "kubernetes"`) {
		t.Fatalf("server.ha.raft.config:\n%s\nwant it to contain\n%s", cfg, want)
	}
	if values["server"].(map[string]any)["ha"].(map[string]any)["raft"].(map[string]any)["setNodeId"] != true {
		t.Fatal("the fixture's server.ha.raft.setNodeId was lost")
	}
	if _, err := withPerformanceMultiplier(cfg, 2); err == nil {
		t.Fatal("a config with a performance_multiplier already: want an error")
	}
	if err := setRaftPerformanceMultiplier(map[string]any{}, map[string]any{}, 1); err == nil {
		t.Fatal("no raft config anywhere: want an error")
	}
}
