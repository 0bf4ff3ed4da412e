package reports

import (
	"bytes"
	"fmt"
	"strings"
)

func writeMarkdown(b *bytes.Buffer, v *view) {
	r := v.R
	fmt.Fprintf(b, "# secretslab conformance report\n\n")
	fmt.Fprintf(b, "- Run: `%s`\n", mdCode(r.RunID))
	fmt.Fprintf(b, "- Backend: %s\n", mdText(r.Backend))
	fmt.Fprintf(b, "- Started: %s\n", v.Started)
	fmt.Fprintf(b, "- Finished: %s\n", v.Finished)
	if v.Duration != "" {
		fmt.Fprintf(b, "- Duration: %s\n", v.Duration)
	}

	b.WriteString("\n## Versions\n\n")
	if len(v.Versions) == 0 {
		b.WriteString("No versions recorded.\n")
	} else {
		b.WriteString("| Component | Version |\n|---|---|\n")
		for _, nv := range v.Versions {
			fmt.Fprintf(b, "| %s | %s |\n", mdCell(nv.Name), mdCell(nv.Value))
		}
	}

	s := r.Summary
	fmt.Fprintf(b, "\n## Summary\n\n**%s**: %d checks, %d passed, %d failed, %d skipped, %d unknown\n",
		verdictWord(v.Verdict), s.Total, s.Passed, s.Failed, s.Skipped, s.Unknown)

	if len(v.Problems) > 0 {
		b.WriteString("\n## Failures\n")
		for _, c := range v.Problems {
			fmt.Fprintf(b, "\n### `%s`: %s\n\n", mdCode(c.ID), c.Status)
			if c.Title != "" {
				fmt.Fprintf(b, "%s\n\n", mdText(c.Title))
			}
			msg := c.Message
			if msg == "" {
				msg = "(no message)"
				if c.Status == Unknown {
					msg = "(no result)"
				}
			}
			fence := mdFence(msg)
			fmt.Fprintf(b, "%s\n%s\n%s\n", fence, strings.TrimRight(msg, "\n"), fence)
		}
	}

	writeLedgerMarkdown(b, v.Ledger)
	b.WriteString("\n## Verdicts\n")
	for _, sc := range v.Scenarios {
		fmt.Fprintf(b, "\n### %s\n\n", mdText(sc.Name))
		fmt.Fprintf(b, "%d checks, %d passed, %d failed, %d skipped, %d unknown\n\n",
			sc.Summary.Total, sc.Summary.Passed, sc.Summary.Failed, sc.Summary.Skipped, sc.Summary.Unknown)
		b.WriteString("| Check | Status | Duration | Figures | Message |\n|---|---|---|---|---|\n")
		for _, c := range sc.Checks {
			figs := make([]string, len(c.Figures))
			for i, f := range c.Figures {
				figs[i] = mdCell(f.String())
			}
			fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n",
				mdCode(c.ID), statusMark(c.Status), c.Duration, strings.Join(figs, "<br>"), mdCell(c.Short))
		}
	}
}

func verdictWord(s Status) string {
	switch s {
	case Passed:
		return "PASSED"
	case Failed:
		return "FAILED"
	}
	return "INCOMPLETE"
}

func statusMark(s Status) string {
	switch s {
	case Passed:
		return "passed"
	case Failed:
		return "**FAILED**"
	case Skipped:
		return "skipped"
	}
	return "**UNKNOWN**"
}

var (
	mdCellEscaper = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "\r", " ", "\n", " ")
	mdTextEscaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "\r", " ", "\n", " ")
)

// mdCell escapes text for a table cell: pipes, HTML and line breaks.
func mdCell(s string) string { return mdCellEscaper.Replace(s) }

// mdText escapes text for a heading or list item.
func mdText(s string) string { return mdTextEscaper.Replace(s) }

// mdCode makes s safe inside a single-backtick code span (in a table cell too).
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "|", `\|`, "\r", " ", "\n", " ").Replace(s)
}

// mdFence is a code fence longer than any backtick run in s.
func mdFence(s string) string {
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// writeLedgerMarkdown writes the claims table: every ledger claim by id, the run's verdict, the
// checks that observed it (with what they saw) and the versions they saw it on.
func writeLedgerMarkdown(b *bytes.Buffer, l *Ledger) {
	fmt.Fprintf(b, "\n## Course claims\n\n**%s ledger claims have a verdict** on this run: %d hold, %d do not hold.\n\n", l.Coverage(), l.Hold, l.DoNotHold)
	b.WriteString("| id | claim | on this run | observed by | versions |\n|---|---|---|---|---|\n")
	for _, c := range l.Claims {
		verdict := string(c.Verdict)
		switch c.Verdict {
		case DoesNotHold:
			verdict = "**does not hold**"
		case NoVerdict:
			verdict = "—"
		}
		var by []string
		for _, o := range c.Observations {
			s := "`" + mdCode(o.Check) + "` " + holdsWord(o.Holds)
			if o.Status != Passed {
				s += " (check " + string(o.Status) + ")"
			}
			if o.Detail != "" {
				short, _ := shorten(o.Detail, shortMessageRunes)
				s += ": " + mdCell(short)
			}
			by = append(by, s)
		}
		text := mdCell(c.Text)
		if c.NotInLedger {
			text += " (not in the ledger)"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", mdCell(c.ID), text, verdict, strings.Join(by, "<br>"), mdCell(strings.Join(versionsOf(c.Observations), "; ")))
	}
}
