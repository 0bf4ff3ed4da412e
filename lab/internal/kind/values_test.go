package kind

import (
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
