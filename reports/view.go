package reports

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// view is the report prepared for the renderers: grouped, sorted and formatted, so
// that every output is deterministic and identical whether rendered from the
// in-memory Report or from report.json.
type view struct {
	R         *Report
	Verdict   Status
	Started   string // UTC, or "not recorded"
	Finished  string
	Duration  string // run wall time, or "" if unknown
	Seconds   float64
	Versions  []nameValue
	Problems  []checkView // failed and unknown, in report order
	Ledger    *Ledger     // the claims ledger with the run's verdicts, ordered by id
	Scenarios []scenarioView
}

type nameValue struct{ Name, Value string }

type scenarioView struct {
	Name     string
	Summary  Summary
	Seconds  float64
	Checks   []checkView
	Pictures []picture
}

type checkView struct {
	Check
	Scenario  string // c.Scenario, or derived from the id
	Duration  string // human form of DurationSeconds
	Figures   []figure
	Short     string // message on one line, truncated
	Truncated bool
}

type figure struct {
	Name  string
	Raw   string // exact, for machines
	Value string // rounded, with unit, for people
}

func (f figure) String() string { return f.Name + " = " + f.Value }

const shortMessageRunes = 160

func newView(r *Report) *view {
	v := &view{R: r, Verdict: r.Verdict()}
	v.Started = fmtTime(r.StartedAt)
	v.Finished = fmtTime(r.FinishedAt)
	if !r.StartedAt.IsZero() && !r.FinishedAt.IsZero() && !r.FinishedAt.Before(r.StartedAt) {
		d := r.FinishedAt.Sub(r.StartedAt)
		v.Seconds = d.Seconds()
		v.Duration = fmtDuration(d)
	}
	for _, nv := range []nameValue{
		{"Version set", r.Versions.Set},
		{"Kubernetes", r.Versions.Kubernetes},
		{"Vault", r.Versions.Vault},
		{"Vault chart", r.Versions.VaultChart},
		{"External Secrets Operator", r.Versions.ESO},
		{"ESO chart", r.Versions.ESOChart},
		{"Postgres", r.Versions.Postgres},
	} {
		if nv.Value != "" {
			v.Versions = append(v.Versions, nv)
		}
	}
	v.Ledger = ledgerOf(r)
	index := map[string]int{}
	for _, c := range r.Checks {
		cv := newCheckView(c)
		if cv.Status == Failed || cv.Status == Unknown {
			v.Problems = append(v.Problems, cv)
		}
		i, ok := index[cv.Scenario]
		if !ok {
			i = len(v.Scenarios)
			index[cv.Scenario] = i
			v.Scenarios = append(v.Scenarios, scenarioView{Name: cv.Scenario})
		}
		s := &v.Scenarios[i]
		s.Checks = append(s.Checks, cv)
		s.Seconds += cv.DurationSeconds
		s.Summary.Total++
		switch cv.Status {
		case Passed:
			s.Summary.Passed++
		case Failed:
			s.Summary.Failed++
		case Skipped:
			s.Summary.Skipped++
		default:
			s.Summary.Unknown++
		}
	}
	for i := range v.Scenarios {
		s := &v.Scenarios[i]
		var checks []Check
		for _, c := range s.Checks {
			checks = append(checks, c.Check)
		}
		s.Pictures = picturesOf(checks)
	}
	if v.Duration == "" {
		for _, s := range v.Scenarios {
			v.Seconds += s.Seconds
		}
	}
	return v
}

func newCheckView(c Check) checkView {
	cv := checkView{Check: c, Scenario: scenarioOf(c)}
	switch c.Status {
	case Passed, Failed, Skipped:
	default:
		cv.Status = Unknown
	}
	cv.Duration = fmtDuration(time.Duration(c.DurationSeconds * float64(time.Second)))
	names := make([]string, 0, len(c.Figures))
	for name := range c.Figures {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		val := c.Figures[name]
		cv.Figures = append(cv.Figures, figure{
			Name:  name,
			Raw:   strconv.FormatFloat(val, 'f', -1, 64),
			Value: fmtFigure(name, val),
		})
	}
	cv.Short, cv.Truncated = shorten(c.Message, shortMessageRunes)
	return cv
}

// scenarioOf is the check's scenario, or the part of its id before the first dot.
func scenarioOf(c Check) string {
	if c.Scenario != "" {
		return c.Scenario
	}
	if i := strings.IndexByte(c.ID, '.'); i > 0 {
		return c.ID[:i]
	}
	return "unscoped"
}

// shorten puts s on one line and cuts it to at most n runes (plus an ellipsis).
func shorten(s string, n int) (string, bool) {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	runes := []rune(s)
	return strings.TrimSpace(string(runes[:n])) + "…", true
}

// firstLine is the first line of s, shortened, for attributes such as JUnit's message.
func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	short, _ := shorten(s, n)
	return short
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "not recorded"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// fmtFigure rounds a figure for people and adds the unit its name ends in.
func fmtFigure(name string, v float64) string {
	var s string
	switch a := math.Abs(v); {
	case a >= 1e15:
		s = strconv.FormatFloat(v, 'g', 6, 64)
	case a == 0 || a >= 1:
		s = strconv.FormatFloat(v, 'f', 3, 64)
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	default:
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	switch {
	case strings.HasSuffix(name, "-ms"):
		s += " ms"
	case strings.HasSuffix(name, "-seconds"):
		s += " s"
	}
	return s
}
