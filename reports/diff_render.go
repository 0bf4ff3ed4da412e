package reports

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteDiff writes dir/diff.json, dir/diff.md and dir/diff.html, creating dir.
func WriteDiff(dir string, d *Diff) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("diff dir: %w", err)
	}
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", DiffJSONFile, err)
	}
	if err := writeFile(filepath.Join(dir, DiffJSONFile), append(data, '\n')); err != nil {
		return err
	}
	var buf bytes.Buffer
	writeDiffMarkdown(&buf, d)
	if err := writeFile(filepath.Join(dir, DiffMarkdownFile), buf.Bytes()); err != nil {
		return err
	}
	buf.Reset()
	if err := diffHTMLTemplate.Execute(&buf, d); err != nil {
		return fmt.Errorf("render %s: %w", DiffHTMLFile, err)
	}
	return writeFile(filepath.Join(dir, DiffHTMLFile), buf.Bytes())
}

// WriteDiffSummary writes a short plain-text summary for a terminal, at most limit lines
// per section (0: no limit).
func WriteDiffSummary(w io.Writer, d *Diff, limit int) {
	s := d.Summary
	fmt.Fprintf(w, "baseline  %s (%s): %s\n", d.Baseline.RunID, d.Baseline.Backend, countsLine(d.Baseline.Summary))
	fmt.Fprintf(w, "candidate %s (%s): %s\n", d.Candidate.RunID, d.Candidate.Backend, countsLine(d.Candidate.Summary))
	var changed []string
	for _, v := range d.Versions {
		if v.Changed {
			changed = append(changed, fmt.Sprintf("%s %s -> %s", v.Name, orNone(v.Baseline), orNone(v.Candidate)))
		}
	}
	if len(changed) == 0 {
		fmt.Fprintln(w, "versions: the same")
	} else {
		fmt.Fprintf(w, "versions: %s\n", strings.Join(changed, "; "))
	}
	fmt.Fprintf(w, "verdicts: %d checks in both, %d unchanged; %d regressions, %d other changes, %d coverage changes, %d improvements\n",
		s.Common, s.Unchanged, s.Regressions, s.Other, s.Coverage, s.Improvements)
	section(w, len(d.Verdicts), limit, func(i int) string {
		v := d.Verdicts[i]
		label, _, _ := strings.Cut(v.Note, ":")
		if v.Kind == Regression {
			label = "REGRESSION"
		}
		return fmt.Sprintf("%s: %s -> %s (%s)", v.ID, v.Baseline, v.Candidate, label)
	})
	fmt.Fprintf(w, "course claims changed: %d (ledger claims with a verdict: %d of %d -> %d of %d)\n", s.Claims,
		d.Baseline.ClaimsWithVerdict, d.Baseline.ClaimsTotal, d.Candidate.ClaimsWithVerdict, d.Candidate.ClaimsTotal)
	section(w, len(d.Claims), limit, func(i int) string {
		c := d.Claims[i]
		return fmt.Sprintf("%s (%s): %s -> %s", c.ID, c.Source, c.Baseline, c.Candidate)
	})
	fmt.Fprintf(w, "figures beyond %s: %d\n", d.Band, s.Figures)
	section(w, len(d.Figures), limit, func(i int) string {
		f := d.Figures[i]
		return fmt.Sprintf("%s %s: %s", f.ID, f.Figure, f.Movement())
	})
	fmt.Fprintf(w, "only in the baseline: %d, only in the candidate: %d\n", s.OnlyBaseline, s.OnlyCandidate)
	section(w, len(d.OnlyBaseline), limit, func(i int) string {
		return fmt.Sprintf("baseline only:  %s (%s)", d.OnlyBaseline[i].ID, d.OnlyBaseline[i].Status)
	})
	section(w, len(d.OnlyCandidate), limit, func(i int) string {
		return fmt.Sprintf("candidate only: %s (%s)", d.OnlyCandidate[i].ID, d.OnlyCandidate[i].Status)
	})
}

func section(w io.Writer, n, limit int, line func(int) string) {
	for i := 0; i < n; i++ {
		if limit > 0 && i == limit {
			fmt.Fprintf(w, "  ... and %d more (see %s)\n", n-limit, DiffMarkdownFile)
			return
		}
		fmt.Fprintf(w, "  %s\n", line(i))
	}
}

func countsLine(s Summary) string {
	return fmt.Sprintf("%d checks, %d passed, %d failed, %d skipped, %d unknown", s.Total, s.Passed, s.Failed, s.Skipped, s.Unknown)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func holdsWord(h bool) string {
	if h {
		return "holds"
	}
	return "does not hold"
}

// BaselineValue and CandidateValue are the figure for people, with its unit, or "absent".
func (f FigureChange) BaselineValue() string  { return fmtUnitValue(f.Baseline, f.Unit) }
func (f FigureChange) CandidateValue() string { return fmtUnitValue(f.Candidate, f.Unit) }

// Change is the delta and percentage for people, e.g. "+1.2 s (+40%)".
func (f FigureChange) Change() string {
	switch {
	case f.Baseline == nil:
		return "new in the candidate"
	case f.Candidate == nil:
		return "absent in the candidate"
	}
	s := fmtUnitValue(&f.Delta, f.Unit)
	if f.Delta > 0 {
		s = "+" + s
	}
	if f.Percent != nil {
		s += fmt.Sprintf(" (%+.0f%%)", *f.Percent)
	} else {
		s += " (was 0)"
	}
	return s
}

// Movement is "BASE -> CAND, CHANGE".
func (f FigureChange) Movement() string {
	return f.BaselineValue() + " -> " + f.CandidateValue() + ", " + f.Change()
}

// Direction is "up", "down", or "" for a figure in one run only (for colour only: whether
// up is worse depends on the figure).
func (f FigureChange) Direction() string {
	switch {
	case f.Baseline == nil || f.Candidate == nil:
		return ""
	case f.Delta > 0:
		return "up"
	}
	return "down"
}

// plural is "N one" or "N many".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func fmtUnitValue(v *float64, unit string) string {
	if v == nil {
		return "absent"
	}
	var s string
	switch a := math.Abs(*v); {
	case a >= 1e15:
		s = strconv.FormatFloat(*v, 'g', 6, 64)
	case a == 0 || a >= 1:
		s = strconv.FormatFloat(*v, 'f', 3, 64)
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	default:
		s = strconv.FormatFloat(*v, 'g', 3, 64)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

func writeDiffMarkdown(b *bytes.Buffer, d *Diff) {
	s := d.Summary
	b.WriteString("# secretslab conformance diff\n\n")
	fmt.Fprintf(b, "**%s**: %d regressions, %d other changes, %d coverage changes, %d improvements; %d course claims changed; %d figures beyond the noise band; %d checks only in the baseline, %d only in the candidate.\n\n",
		diffVerdict(d), s.Regressions, s.Other, s.Coverage, s.Improvements, s.Claims, s.Figures, s.OnlyBaseline, s.OnlyCandidate)
	b.WriteString("| | Baseline | Candidate |\n|---|---|---|\n")
	fmt.Fprintf(b, "| Run | `%s` | `%s` |\n", mdCode(d.Baseline.RunID), mdCode(d.Candidate.RunID))
	fmt.Fprintf(b, "| Started | %s | %s |\n", fmtTime(d.Baseline.StartedAt), fmtTime(d.Candidate.StartedAt))
	fmt.Fprintf(b, "| Checks | %s | %s |\n", countsLine(d.Baseline.Summary), countsLine(d.Candidate.Summary))
	for _, v := range d.Versions {
		name := mdCell(v.Name)
		if v.Changed {
			name = "**" + name + "** (changed)"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", name, mdCell(orNone(v.Baseline)), mdCell(orNone(v.Candidate)))
	}

	b.WriteString("\n## Verdicts that changed\n\n")
	if len(d.Verdicts) == 0 {
		fmt.Fprintf(b, "None: the %d checks in both runs have the same verdict.\n", s.Common)
	} else {
		b.WriteString("Regressions first. passed -> failed/unknown is a regression; failed/unknown -> passed an improvement; passed <-> skipped a change in coverage.\n\n")
		b.WriteString("| Check | Change | Baseline | Candidate | Candidate message |\n|---|---|---|---|---|\n")
		for _, v := range d.Verdicts {
			kind := string(v.Kind)
			if v.Kind == Regression {
				kind = "**REGRESSION**"
			}
			msg, _ := shorten(v.CandidateMessage, shortMessageRunes)
			fmt.Fprintf(b, "| `%s` | %s: %s | %s | %s | %s |\n", mdCode(v.ID), kind, mdCell(v.Note),
				statusMark(v.Baseline), statusMark(v.Candidate), mdCell(msg))
		}
	}

	b.WriteString("\n## Course claims that changed\n\n")
	fmt.Fprintf(b, "Compared by ledger id. Ledger claims with a verdict: %d of %d in the baseline, %d of %d in the candidate.\n\n",
		d.Baseline.ClaimsWithVerdict, d.Baseline.ClaimsTotal, d.Candidate.ClaimsWithVerdict, d.Candidate.ClaimsTotal)
	if len(d.Claims) == 0 {
		b.WriteString("None: every claim has the same verdict in both runs.\n")
	} else {
		b.WriteString("| Id | Source | Claim | Baseline | Candidate | Observed by |\n|---|---|---|---|---|---|\n")
		for _, c := range d.Claims {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", mdCell(c.ID), mdCell(c.Source), mdCell(c.Text),
				c.Baseline, c.Candidate, mdCell(strings.Join(c.Checks, ", ")))
		}
	}

	fmt.Fprintf(b, "\n## Figures beyond the noise band\n\nNoise band: a figure moved when it changed by more than %s; a figure that was 0 moved when it is not 0 any more. Compared for checks that ran (passed or failed) in both runs; `duration` is the check's duration.\n\n", d.Band)
	if len(d.Figures) == 0 {
		b.WriteString("None.\n")
	} else {
		b.WriteString("| Check | Figure | Baseline | Candidate | Change |\n|---|---|---|---|---|\n")
		for _, f := range d.Figures {
			fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", mdCode(f.ID), mdCell(f.Figure),
				f.BaselineValue(), f.CandidateValue(), f.Change())
		}
	}

	b.WriteString("\n## Checks in one run only\n\n")
	if len(d.OnlyBaseline)+len(d.OnlyCandidate) == 0 {
		b.WriteString("None: both runs have the same checks.\n")
	} else {
		b.WriteString("| Check | In | Status |\n|---|---|---|\n")
		for _, c := range d.OnlyBaseline {
			fmt.Fprintf(b, "| `%s` | baseline only | %s |\n", mdCode(c.ID), statusMark(c.Status))
		}
		for _, c := range d.OnlyCandidate {
			fmt.Fprintf(b, "| `%s` | candidate only | %s |\n", mdCode(c.ID), statusMark(c.Status))
		}
	}
}

// diffVerdict is the diff in one word: REGRESSED, CHANGED or UNCHANGED.
func diffVerdict(d *Diff) string {
	s := d.Summary
	switch {
	case s.Regressions > 0:
		return "REGRESSED"
	case s.Other+s.Coverage+s.Improvements+s.Claims+s.Figures+s.OnlyBaseline+s.OnlyCandidate > 0:
		return "CHANGED"
	}
	return "UNCHANGED"
}

//go:embed diff.html.tmpl
var diffHTMLSource string

// diffHTMLTemplate renders diff.html: one self-contained page (inline CSS, no script, no
// external assets); html/template escapes every value.
var diffHTMLTemplate = template.Must(template.New("diff.html").
	Funcs(template.FuncMap{
		"diffVerdict": diffVerdict,
		"holdsWord":   holdsWord,
		"verdictClass": func(v Verdict) string {
			switch v {
			case Holds:
				return "st-passed"
			case DoesNotHold:
				return "st-failed"
			}
			return "st-skipped"
		},
		"orNone":     orNone,
		"plural":     plural,
		"fmtTime":    fmtTime,
		"countsLine": countsLine,
		"short": func(s string) string {
			short, _ := shorten(s, shortMessageRunes)
			return short
		},
	}).
	Parse(diffHTMLSource))
