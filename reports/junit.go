package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// The JUnit XML shape read by Jenkins, GitLab and the GitHub test reporters: one
// testsuite per scenario, one testcase per check. A check without a result is an
// <error>, so that it never counts as passed.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	ClassName string `xml:"classname,attr"`
	Name      string `xml:"name,attr"`
	Time      string `xml:"time,attr"`
	// Properties are the ledger claims the check observed: claim.C05-05 = holds.
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitProblem   `xml:"failure"`
	Error      *junitProblem   `xml:"error"`
	Skipped    *junitProblem   `xml:"skipped"`
	SystemOut  *junitText      `xml:"system-out"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}

// junitText is element text kept readable (line breaks as they are) in CDATA.
type junitText struct {
	Text string `xml:",cdata"`
}

const junitMessageRunes = 200

func junitTime(seconds float64) string { return fmt.Sprintf("%.3f", seconds) }

func buildJUnit(v *view) junitSuites {
	r := v.R
	root := junitSuites{Name: "secretslab", Time: junitTime(v.Seconds)}
	props := []junitProperty{{"backend", r.Backend}, {"runId", r.RunID},
		{"claims.coverage", v.Ledger.Coverage() + " ledger claims have a verdict"}}
	for _, p := range []junitProperty{
		{"version.set", r.Versions.Set},
		{"version.kubernetes", r.Versions.Kubernetes},
		{"version.vault", r.Versions.Vault},
		{"version.vaultChart", r.Versions.VaultChart},
		{"version.eso", r.Versions.ESO},
		{"version.esoChart", r.Versions.ESOChart},
		{"version.postgres", r.Versions.Postgres},
	} {
		if p.Value != "" {
			props = append(props, p)
		}
	}
	timestamp := ""
	if !r.StartedAt.IsZero() {
		// JUnit's timestamp is ISO 8601 without a zone; it is UTC here.
		timestamp = r.StartedAt.UTC().Format("2006-01-02T15:04:05")
	}
	for _, s := range v.Scenarios {
		suite := junitSuite{
			Name:       s.Name,
			Tests:      s.Summary.Total,
			Failures:   s.Summary.Failed,
			Errors:     s.Summary.Unknown,
			Skipped:    s.Summary.Skipped,
			Time:       junitTime(s.Seconds),
			Timestamp:  timestamp,
			Properties: props,
		}
		for _, c := range s.Checks {
			suite.Cases = append(suite.Cases, junitCaseOf(c))
		}
		root.Suites = append(root.Suites, suite)
		root.Tests += suite.Tests
		root.Failures += suite.Failures
		root.Errors += suite.Errors
		root.Skipped += suite.Skipped
	}
	return root
}

func junitCaseOf(c checkView) junitCase {
	jc := junitCase{
		ClassName: "secretslab." + c.Scenario,
		Name:      c.ID,
		Time:      junitTime(c.DurationSeconds),
	}
	for _, cl := range c.Claims {
		jc.Properties = append(jc.Properties, junitProperty{"claim." + cl.ID, holdsWord(cl.Holds)})
	}
	switch c.Status {
	case Passed:
	case Failed:
		msg := firstLine(c.Message, junitMessageRunes)
		if msg == "" {
			msg = "failed"
		}
		jc.Failure = &junitProblem{Message: msg, Type: string(Failed), Text: xmlSafe(c.Message)}
	case Skipped:
		msg := firstLine(c.Message, junitMessageRunes)
		if msg == "" {
			msg = "skipped"
		}
		jc.Skipped = &junitProblem{Message: msg}
	default:
		text := c.Message
		if text == "" {
			text = "the check produced no result"
		}
		jc.Error = &junitProblem{Message: "no result", Type: string(Unknown), Text: xmlSafe(text)}
	}
	var out strings.Builder
	for _, f := range c.Figures {
		fmt.Fprintf(&out, "%s=%s\n", f.Name, f.Raw)
	}
	if out.Len() > 0 {
		jc.SystemOut = &junitText{Text: xmlSafe(out.String())}
	}
	return jc
}

// xmlSafe replaces characters XML 1.0 cannot hold (control characters such as the
// ANSI escapes of terminal output) with U+FFFD; CDATA sections do not escape them.
// Attributes need no such care: encoding/xml escapes them itself.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '\uFFFD'
	}, s)
}

func writeJUnit(w io.Writer, v *view) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(buildJUnit(v)); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
