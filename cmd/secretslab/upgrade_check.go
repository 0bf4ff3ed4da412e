package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/secretslab/secretslab/reports"
)

// upgradeRun is one of the three conformance runs of an upgrade check.
type upgradeRun struct {
	name, what string
	args       []string
	err        error
	took       time.Duration
	report     *reports.Report
}

// upgradeCheckCmd: "secretslab upgrade-check --from SET --to SET [-- conformance flags]": a fresh run on FROM, a
// fresh run on TO, a run on FROM upgraded in place to TO (the upgrade scenario), then the
// diffs of the last two against the first and one summary page linking the three reports.
// Each run is `secretslab conformance` in a child process, so an interrupted check stops the
// run in progress, which cleans up after itself. It exits non-zero when a run failed or a
// diff shows a regression.
func upgradeCheckCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("upgrade-check", flag.ContinueOnError)
	from := fs.String("from", "pinned", "the version set running today")
	to := fs.String("to", "candidate", "the version set to upgrade to")
	out := fs.String("out", filepath.Join("reports", "upgrade-check"), "directory for the three reports, the diffs and index.md / index.html")
	if err := fs.Parse(args); err != nil {
		return err
	}
	passOn := fs.Args() // after "--": conformance flags for every run (--backend, --ha, --bookstore-binary, ...)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	runs := []*upgradeRun{
		{name: "baseline", what: "fresh run on " + *from, args: []string{"--versions=" + *from}},
		{name: "candidate", what: "fresh run on " + *to, args: []string{"--versions=" + *to}},
		{name: "upgrade", what: *from + " upgraded in place to " + *to, args: []string{"--versions=" + *from, "--upgrade-to=" + *to}},
	}
	for i, r := range runs {
		if ctx.Err() != nil {
			r.err = fmt.Errorf("not run: interrupted")
			continue
		}
		dir := filepath.Join(*out, r.name)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		fmt.Printf("upgrade-check: run %d of 3: %s (report: %s)\n", i+1, r.what, dir)
		start := time.Now()
		r.err = runChild(ctx, exe, append(append([]string{"conformance", "--out=" + dir, "--name=secretslab-upgrade-check"}, r.args...), passOn...))
		r.took = time.Since(start)
		if rep, err := reports.Read(filepath.Join(dir, reports.JSONFile)); err == nil {
			r.report = rep
		} else if r.err == nil {
			r.err = err
		}
		fmt.Printf("upgrade-check: %s took %s: %s\n", r.name, r.took.Round(time.Second), outcome(r.err))
	}
	var errs []error
	var diffs []*reports.Diff
	for _, r := range runs {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", r.name, r.what, r.err))
		}
	}
	for _, r := range runs[1:] {
		if runs[0].report == nil || r.report == nil {
			diffs = append(diffs, nil)
			continue
		}
		d := reports.Compare(runs[0].report, r.report, reports.DefaultDiffOptions())
		if err := reports.WriteDiff(filepath.Join(*out, "diff-"+r.name), d); err != nil {
			return err
		}
		diffs = append(diffs, d)
		if len(d.Regressions) > 0 {
			errs = append(errs, fmt.Errorf("%s against baseline: %d regression(s): %s", r.name, len(d.Regressions), strings.Join(d.Regressions, ", ")))
		}
	}
	if err := writeUpgradeSummary(*out, *from, *to, runs, diffs); err != nil {
		return err
	}
	fmt.Printf("upgrade-check: summary %s\n", filepath.Join(*out, "index.html"))
	return errors.Join(errs...)
}

// runChild runs the CLI with args; on ctx's end it sends SIGINT, so the child cleans up.
func runChild(ctx context.Context, exe string, args []string) error {
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGINT)
		return errors.Join(errors.New("interrupted"), <-done)
	}
}

func outcome(err error) string {
	if err == nil {
		return "passed"
	}
	return err.Error()
}

// writeUpgradeSummary writes index.md and index.html: each run with its verdict and versions,
// and each diff's regressions and flipped claims, linking the reports and diffs.
func writeUpgradeSummary(dir, from, to string, runs []*upgradeRun, diffs []*reports.Diff) error {
	var md, h strings.Builder
	fmt.Fprintf(&md, "# Upgrade check: %s -> %s\n\n| run | what | verdict | checks | ESO | Vault | took | report |\n|---|---|---|---|---|---|---|---|\n", from, to)
	fmt.Fprintf(&h, "<!doctype html><meta charset=utf-8><title>Upgrade check %s -&gt; %s</title>"+
		"<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}.bad{color:#b00}</style>"+
		"<h1>Upgrade check: %s &rarr; %s</h1><table><tr><th>run<th>what<th>verdict<th>checks<th>ESO<th>Vault<th>took<th>report</tr>",
		html.EscapeString(from), html.EscapeString(to), html.EscapeString(from), html.EscapeString(to))
	for _, r := range runs {
		verdict, checks, eso, vault := outcome(r.err), "", "", ""
		if r.report != nil {
			s := r.report.Summary
			checks = fmt.Sprintf("%d passed, %d failed, %d skipped, %d unknown", s.Passed, s.Failed, s.Skipped, s.Unknown)
			eso, vault = r.report.Versions.ESO, r.report.Versions.Vault
		}
		link := r.name + "/" + reports.HTMLFile
		fmt.Fprintf(&md, "| %s | %s | %s | %s | %s | %s | %s | [%s](%s) |\n", r.name, r.what, firstLine(verdict), checks, eso, vault, r.took.Round(time.Second), link, link)
		fmt.Fprintf(&h, "<tr><td>%s<td>%s<td%s>%s<td>%s<td>%s<td>%s<td>%s<td><a href=%q>report</a></tr>",
			html.EscapeString(r.name), html.EscapeString(r.what), badIf(r.err != nil), html.EscapeString(firstLine(verdict)),
			checks, html.EscapeString(eso), html.EscapeString(vault), r.took.Round(time.Second), link)
	}
	h.WriteString("</table>")
	for i, d := range diffs {
		r := runs[i+1]
		link := "diff-" + r.name + "/" + reports.DiffHTMLFile
		fmt.Fprintf(&md, "\n## %s against baseline\n\n", r.name)
		fmt.Fprintf(&h, "<h2>%s against baseline</h2>", html.EscapeString(r.name))
		if d == nil {
			md.WriteString("No diff: a report is missing.\n")
			h.WriteString("<p class=bad>No diff: a report is missing.</p>")
			continue
		}
		fmt.Fprintf(&md, "%d regression(s), %d verdict change(s), %d claim verdict(s) changed, %d figure(s) moved: [diff](%s)\n",
			len(d.Regressions), len(d.Verdicts), len(d.Claims), len(d.Figures), link)
		fmt.Fprintf(&h, "<p%s>%d regression(s), %d verdict change(s), %d claim verdict(s) changed, %d figure(s) moved: <a href=%q>diff</a></p><ul>",
			badIf(len(d.Regressions) > 0), len(d.Regressions), len(d.Verdicts), len(d.Claims), len(d.Figures), link)
		for _, id := range d.Regressions {
			fmt.Fprintf(&md, "- regression: %s\n", id)
			fmt.Fprintf(&h, "<li class=bad>regression: %s", html.EscapeString(id))
		}
		for _, c := range d.Claims {
			fmt.Fprintf(&md, "- claim %s (%s): %s -> %s\n", c.ID, c.Text, c.Baseline, c.Candidate)
			fmt.Fprintf(&h, "<li>claim %s (%s): %s &rarr; %s", html.EscapeString(c.ID), html.EscapeString(c.Text), c.Baseline, c.Candidate)
		}
		h.WriteString("</ul>")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.html"), []byte(h.String()), 0o644)
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

func badIf(b bool) string {
	if b {
		return " class=bad"
	}
	return ""
}
