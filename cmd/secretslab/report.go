package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/secretslab/secretslab/reports"
)

// reportCmd: "secretslab report render FILE.json [--out DIR]" and
// "secretslab report diff BASELINE.json CANDIDATE.json [--out DIR] [--noise PCT]".
func reportCmd(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "diff" {
		return reportDiffCmd(args[1:], os.Stdout)
	}
	if len(args) > 0 && args[0] == "bench" {
		return reportBenchCmd(args[1:], os.Stdout)
	}
	if len(args) == 0 || args[0] != "render" {
		return fmt.Errorf("report: want render or diff (secretslab report render FILE.json [--out DIR]; " +
			"secretslab report diff BASELINE.json CANDIDATE.json [--out DIR] [--noise PCT])")
	}
	fs := flag.NewFlagSet("report render", flag.ContinueOnError)
	out := fs.String("out", "", "directory for junit.xml, report.md and report.html (default: the directory of FILE.json)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: secretslab report render FILE.json [--out DIR]")
		fs.PrintDefaults()
	}
	// Flags may come before or after FILE.json.
	var files []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		fs.Usage()
		return fmt.Errorf("report render: want one FILE.json, got %d", len(files))
	}
	dir := *out
	if dir == "" {
		dir = filepath.Dir(files[0])
	}
	if err := reports.Render(files[0], dir); err != nil {
		return err
	}
	for _, name := range []string{reports.JUnitFile, reports.MarkdownFile, reports.HTMLFile} {
		fmt.Println(filepath.Join(dir, name))
	}
	return nil
}

// reportBenchCmd: "secretslab report bench --out DIR RUN/report.json...": one table of the
// bench figures (min, median, max) of each run, labelled by the run's directory name, on
// stdout and in DIR/bench.md and DIR/bench.json. It fails when a run has a failed check
// (after writing the table).
func reportBenchCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report bench", flag.ContinueOnError)
	out := fs.String("out", "", "directory for bench.md and bench.json (default: the parent of the first run's directory)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: secretslab report bench [--out DIR] RUN/report.json...")
		fs.PrintDefaults()
	}
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return fmt.Errorf("report bench: want at least one report.json")
	}
	var runs []reports.BenchRun
	var failed []string
	for _, f := range files {
		r, err := reports.Read(f)
		if err != nil {
			return err
		}
		label := filepath.Base(filepath.Dir(f))
		runs = append(runs, reports.BenchRun{Label: label, Report: r, Summary: r.Summary})
		if r.Summary.Failed > 0 {
			failed = append(failed, fmt.Sprintf("%s (%d failed)", label, r.Summary.Failed))
		}
	}
	dir := *out
	if dir == "" {
		dir = filepath.Dir(filepath.Dir(files[0]))
	}
	rows := reports.BenchTable(runs)
	if err := reports.WriteBench(dir, runs, rows); err != nil {
		return err
	}
	fmt.Fprint(stdout, reports.BenchMarkdown(runs, rows))
	fmt.Fprintf(stdout, "\nwritten to %s and %s\n", filepath.Join(dir, reports.BenchMarkdownFile), filepath.Join(dir, reports.BenchJSONFile))
	if len(failed) > 0 {
		return fmt.Errorf("report bench: runs with failed checks: %s", strings.Join(failed, ", "))
	}
	return nil
}

// reportDiffCmd compares two report.json files, writes diff.json, diff.md and diff.html
// and prints a short summary to stdout. It returns a *reports.RegressionError ("N
// regressions: ids") after writing everything when a check that passed in the baseline
// failed or has no result in the candidate, so CI can gate on the exit status.
func reportDiffCmd(args []string, stdout io.Writer) error {
	def := reports.DefaultDiffOptions()
	fs := flag.NewFlagSet("report diff", flag.ContinueOnError)
	out := fs.String("out", "", "directory for diff.json, diff.md and diff.html (default: the directory of CANDIDATE.json)")
	noise := fs.Float64("noise", def.NoisePercent, "noise band in percent: figures and durations that moved less are not reported")
	floor := fs.Float64("noise-floor", def.FloorSeconds, "absolute floor in seconds for times (durations, -seconds and -ms figures): smaller moves are not reported")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: secretslab report diff BASELINE.json CANDIDATE.json [--out DIR] [--noise PCT] [--noise-floor SECONDS]")
		fmt.Fprintln(fs.Output(), "exits non-zero when a check that passed in BASELINE failed or has no result in CANDIDATE")
		fs.PrintDefaults()
	}
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 2 {
		fs.Usage()
		return fmt.Errorf("report diff: want BASELINE.json and CANDIDATE.json, got %d files", len(files))
	}
	if *noise < 0 || *floor < 0 {
		return fmt.Errorf("report diff: --noise and --noise-floor must not be negative")
	}
	base, err := reports.Read(files[0])
	if err != nil {
		return err
	}
	cand, err := reports.Read(files[1])
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = filepath.Dir(files[1])
	}
	d := reports.Compare(base, cand, reports.DiffOptions{NoisePercent: *noise, FloorSeconds: *floor})
	if err := reports.WriteDiff(dir, d); err != nil {
		return err
	}
	reports.WriteDiffSummary(stdout, d, 15)
	for _, name := range []string{reports.DiffJSONFile, reports.DiffMarkdownFile, reports.DiffHTMLFile} {
		fmt.Fprintln(stdout, filepath.Join(dir, name))
	}
	return d.Err()
}

// parseInterleaved parses flags that may come before, between or after the positional
// arguments, and returns the positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return files, nil
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
