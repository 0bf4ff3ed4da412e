package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Bench files written by WriteBench.
const (
	BenchJSONFile     = "bench.json"
	BenchMarkdownFile = "bench.md"
)

// BenchFigures are the figures the bench table shows, as SCENARIO.FIGURE, in this order. A
// figure a scenario records once per kill (killN-FIGURE) is one row over all kills.
var BenchFigures = []string{
	"failover.raft-performance-multiplier",
	"failover.new-active-seconds",
	"failover.first-write-seconds",
	"failover.eso-error-window-seconds",
	"failover.eso-errors",
	"failover.rejoin-seconds",
	"lease-storm.leases-planned",
	"lease-storm.minted-before-error",
	"lease-storm.mint-per-second",
	"lease-storm.restart-seconds",
	"lease-storm.restart-voters-seconds",
	"lease-storm.expiry-revoke-per-second",
	"lease-storm.revoke-per-second",
	"lease-storm.settle-seconds",
	"lease-storm.vault-peak-rss-mb",
	"lease-storm.orphaned-roles",
}

// BenchRun is one conformance run of a bench, with its label (e.g. "failover-pm1").
type BenchRun struct {
	Label  string  `json:"label"`
	Report *Report `json:"-"`
	// Summary of the run's checks, so the table says whether the run it comes from passed.
	Summary Summary `json:"summary"`
}

// BenchRow is one figure of one run: min, median and max over its values (one value: all
// three are it).
type BenchRow struct {
	Run    string  `json:"run"`
	Figure string  `json:"figure"`
	Count  int     `json:"count"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

var perKill = regexp.MustCompile(`^kill[0-9]+-(.+)$`)

// BenchTable makes the rows of BenchFigures found in runs, run by run.
func BenchTable(runs []BenchRun) []BenchRow {
	var rows []BenchRow
	for _, run := range runs {
		single := map[string]float64{}
		series := map[string][]float64{}
		for _, c := range run.Report.Checks {
			for name, v := range c.Figures {
				if m := perKill.FindStringSubmatch(name); m != nil {
					series[c.Scenario+"."+m[1]] = append(series[c.Scenario+"."+m[1]], v)
					continue
				}
				single[c.Scenario+"."+name] = v
			}
		}
		for _, f := range BenchFigures {
			xs := series[f]
			if len(xs) == 0 {
				v, ok := single[f]
				if !ok {
					continue
				}
				xs = []float64{v}
			}
			slices.Sort(xs)
			med := xs[len(xs)/2]
			if len(xs)%2 == 0 {
				med = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
			}
			rows = append(rows, BenchRow{Run: run.Label, Figure: f, Count: len(xs), Min: xs[0], Median: med, Max: xs[len(xs)-1]})
		}
	}
	return rows
}

// BenchMarkdown renders the runs and rows as one compact table.
func BenchMarkdown(runs []BenchRun, rows []BenchRow) string {
	var b strings.Builder
	b.WriteString("# secretslab bench\n\nMeasurements, not assertions: each run is a conformance run on its own lab.\n\n")
	for _, r := range runs {
		s := r.Summary
		fmt.Fprintf(&b, "- `%s`: %d checks, %d passed, %d failed, %d skipped, %d unknown\n", mdCode(r.Label), s.Total, s.Passed, s.Failed, s.Skipped, s.Unknown)
	}
	b.WriteString("\n| run | figure | n | min | median | max |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s |\n", mdCell(r.Run), mdCell(r.Figure), r.Count, benchNum(r.Min), benchNum(r.Median), benchNum(r.Max))
	}
	return b.String()
}

func benchNum(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}

// WriteBench writes dir/bench.json and dir/bench.md.
func WriteBench(dir string, runs []BenchRun, rows []BenchRow) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(struct {
		Runs []BenchRun `json:"runs"`
		Rows []BenchRow `json:"rows"`
	}{runs, rows}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, BenchJSONFile), append(data, '\n')); err != nil {
		return err
	}
	var md bytes.Buffer
	md.WriteString(BenchMarkdown(runs, rows))
	return writeFile(filepath.Join(dir, BenchMarkdownFile), md.Bytes())
}
