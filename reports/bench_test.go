package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchTable(t *testing.T) {
	r := &Report{Checks: []Check{
		{ID: "failover.kills", Scenario: "failover", Figures: map[string]float64{
			"kill1-new-active-seconds": 19, "kill2-new-active-seconds": 22.3, "kill3-new-active-seconds": 21.4,
			"new-active-min-seconds": 19, "eso-error-window-seconds": 23.2,
			"kill1-eso-error-window-seconds": 19.6, "kill2-eso-error-window-seconds": 24.6, "kill3-eso-error-window-seconds": 23.2,
		}},
		{ID: "failover.raft-timing", Scenario: "failover", Figures: map[string]float64{"raft-performance-multiplier": 5}},
		{ID: "lease-storm.mint", Scenario: "lease-storm", Figures: map[string]float64{"mint-per-second": 80.5, "roles": 200}},
	}}
	runs := []BenchRun{{Label: "pm-default", Report: r, Summary: Summary{Total: 3, Passed: 3}}}
	rows := BenchTable(runs)
	got := map[string]BenchRow{}
	for _, row := range rows {
		got[row.Figure] = row
	}
	if w := (BenchRow{Run: "pm-default", Figure: "failover.new-active-seconds", Count: 3, Min: 19, Median: 21.4, Max: 22.3}); got[w.Figure] != w {
		t.Errorf("new-active row %+v, want %+v", got[w.Figure], w)
	}
	// per-kill values win over the run's own summary figure of the same name
	if w := (BenchRow{Run: "pm-default", Figure: "failover.eso-error-window-seconds", Count: 3, Min: 19.6, Median: 23.2, Max: 24.6}); got[w.Figure] != w {
		t.Errorf("eso window row %+v, want %+v", got[w.Figure], w)
	}
	if row := got["lease-storm.mint-per-second"]; row.Count != 1 || row.Min != 80.5 || row.Max != 80.5 {
		t.Errorf("mint row %+v", row)
	}
	if _, ok := got["lease-storm.roles"]; ok {
		t.Error("a figure not in BenchFigures made a row")
	}
	if rows[0].Figure != "failover.raft-performance-multiplier" {
		t.Errorf("rows not in BenchFigures order: first %s", rows[0].Figure)
	}
	dir := t.TempDir()
	if err := WriteBench(dir, runs, rows); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, BenchMarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| pm-default | failover.new-active-seconds | 3 | 19 | 21.4 | 22.3 |") {
		t.Errorf("bench.md lacks the new-active row:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(dir, BenchJSONFile)); err != nil {
		t.Error(err)
	}
}
