package reports

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// DiffSchemaVersion of diff.json.
const DiffSchemaVersion = 1

// File names written by WriteDiff.
const (
	DiffJSONFile     = "diff.json"
	DiffMarkdownFile = "diff.md"
	DiffHTMLFile     = "diff.html"
)

// DiffOptions set the noise band within which a figure is considered unchanged.
type DiffOptions struct {
	// NoisePercent: a figure moved when it changed by more than this percentage of its
	// baseline value (a figure that was 0 moved whenever it is not 0 any more).
	NoisePercent float64 `json:"noisePercent"`
	// FloorSeconds: a time (a check's duration, a figure ending in -seconds or -ms) moved
	// only when it also changed by more than this many seconds, so that tiny times do not
	// flap. Figures without a time unit (counts, TTL-less flags) have no floor.
	FloorSeconds float64 `json:"floorSeconds"`
}

// DefaultDiffOptions: ±25 %, and at least 0.5 s for times.
func DefaultDiffOptions() DiffOptions {
	return DiffOptions{NoisePercent: 25, FloorSeconds: 0.5}
}

// Band describes the noise band in words, e.g. "±25% (times also by more than 0.5 s)".
func (o DiffOptions) Band() string {
	return fmt.Sprintf("±%s%% (times also by more than %s s)", trimFloat(o.NoisePercent), trimFloat(o.FloorSeconds))
}

// Diff is what changed from a baseline conformance run to a candidate run. It is computed
// by Compare from two reports and holds only what they hold (ids, statuses, figures, the
// reports' already redacted messages): nothing new is read from a lab.
type Diff struct {
	SchemaVersion int    `json:"schemaVersion"`
	Baseline      RunRef `json:"baseline"`
	Candidate     RunRef `json:"candidate"`
	// Versions lists each component (and the backend first), side by side.
	Versions []VersionPair `json:"versions"`
	// Noise is the band applied to Figures, with Band its wording.
	Noise DiffOptions `json:"noise"`
	Band  string      `json:"band"`
	// Verdicts are the checks in both runs whose status changed: regressions first, then
	// other changes, coverage changes, improvements; each group in baseline report order.
	Verdicts []VerdictChange `json:"verdicts"`
	// Regressions are the ids of the regressions, in the order of Verdicts.
	Regressions []string `json:"regressions"`
	// Claims are the ledger claims whose verdict differs, compared by ledger id, in id order:
	// holds <-> does not hold, and a verdict gained or lost (the ledger's coverage changed).
	Claims []ClaimChange `json:"claims"`
	// Figures that moved beyond the noise band, for checks that ran (passed or failed) in
	// both runs; "duration" is the check's duration.
	Figures []FigureChange `json:"figures"`
	// OnlyBaseline and OnlyCandidate are checks present in one run only, in report order.
	OnlyBaseline  []CheckRef  `json:"onlyBaseline"`
	OnlyCandidate []CheckRef  `json:"onlyCandidate"`
	Summary       DiffSummary `json:"summary"`
}

// RunRef identifies one of the two runs.
type RunRef struct {
	RunID     string    `json:"runId"`
	Backend   string    `json:"backend"`
	StartedAt time.Time `json:"startedAt"`
	Summary   Summary   `json:"summary"`
	// ClaimsWithVerdict of ClaimsTotal ledger claims have a verdict in the run.
	ClaimsWithVerdict int `json:"claimsWithVerdict"`
	ClaimsTotal       int `json:"claimsTotal"`
}

// VersionPair is one component's version in both runs.
type VersionPair struct {
	Name      string `json:"name"`
	Baseline  string `json:"baseline"`
	Candidate string `json:"candidate"`
	Changed   bool   `json:"changed"`
}

// ChangeKind classifies a verdict change.
type ChangeKind string

const (
	// Regression: passed -> failed or unknown.
	Regression ChangeKind = "regression"
	// Improvement: failed or unknown -> passed.
	Improvement ChangeKind = "improvement"
	// Coverage: passed <-> skipped; the check ran in one run only, nothing was lost or fixed.
	Coverage ChangeKind = "coverage"
	// OtherChange: failed <-> unknown, skipped <-> failed or unknown.
	OtherChange ChangeKind = "other"
)

// VerdictChange is a check whose status differs between the runs.
type VerdictChange struct {
	ID       string     `json:"id"`
	Title    string     `json:"title,omitempty"`
	Kind     ChangeKind `json:"kind"`
	Baseline Status     `json:"baseline"`
	// Candidate is the candidate's status; Note says what the change means.
	Candidate Status `json:"candidate"`
	Note      string `json:"note"`
	// Messages are the reports' own (redacted) messages.
	BaselineMessage  string `json:"baselineMessage,omitempty"`
	CandidateMessage string `json:"candidateMessage,omitempty"`
}

// ClaimChange is a ledger claim whose verdict changed between the runs.
type ClaimChange struct {
	ID        string  `json:"id"` // the ledger id, e.g. C05-05
	Source    string  `json:"source"`
	Text      string  `json:"text"`
	Baseline  Verdict `json:"baseline"`
	Candidate Verdict `json:"candidate"`
	// Checks observed the claim in the candidate (in the baseline when the candidate has no verdict).
	Checks []string `json:"checks,omitempty"`
}

// FigureChange is a figure beyond the noise band, or one present in one run only
// (then Baseline or Candidate is null).
type FigureChange struct {
	ID        string   `json:"id"`
	Figure    string   `json:"figure"` // "duration" for the check's duration
	Unit      string   `json:"unit,omitempty"`
	Baseline  *float64 `json:"baseline"`
	Candidate *float64 `json:"candidate"`
	Delta     float64  `json:"delta,omitempty"`
	// Percent is the change relative to the baseline; null when the baseline is 0 or absent.
	Percent *float64 `json:"percent,omitempty"`
}

// CheckRef is a check present in one run only.
type CheckRef struct {
	ID     string `json:"id"`
	Title  string `json:"title,omitempty"`
	Status Status `json:"status"`
}

// DiffSummary counts the differences.
type DiffSummary struct {
	Common        int `json:"common"` // checks in both runs
	Unchanged     int `json:"unchanged"`
	Regressions   int `json:"regressions"`
	Improvements  int `json:"improvements"`
	Coverage      int `json:"coverage"`
	Other         int `json:"other"`
	Claims        int `json:"claims"`
	Figures       int `json:"figures"`
	OnlyBaseline  int `json:"onlyBaseline"`
	OnlyCandidate int `json:"onlyCandidate"`
}

// RegressionError is returned by Diff.Err when the candidate regressed.
type RegressionError struct{ IDs []string }

func (e *RegressionError) Error() string {
	word := "regressions"
	if len(e.IDs) == 1 {
		word = "regression"
	}
	return fmt.Sprintf("%d %s: %s", len(e.IDs), word, strings.Join(e.IDs, ", "))
}

// Err is a *RegressionError naming the regressions, or nil when there is none.
func (d *Diff) Err() error {
	if len(d.Regressions) == 0 {
		return nil
	}
	return &RegressionError{IDs: append([]string(nil), d.Regressions...)}
}

// Compare computes what changed from base to cand. It does not modify either report.
// A status outside the four counts as unknown; of checks with the same id in one report
// the first counts. Negative or NaN options count as 0.
func Compare(base, cand *Report, opts DiffOptions) *Diff {
	opts.NoisePercent = nonNegative(opts.NoisePercent)
	opts.FloorSeconds = nonNegative(opts.FloorSeconds)
	d := &Diff{
		SchemaVersion: DiffSchemaVersion,
		Baseline:      runRef(base),
		Candidate:     runRef(cand),
		Noise:         opts,
		Band:          opts.Band(),
		Verdicts:      []VerdictChange{},
		Regressions:   []string{},
		Claims:        []ClaimChange{},
		Figures:       []FigureChange{},
		OnlyBaseline:  []CheckRef{},
		OnlyCandidate: []CheckRef{},
	}
	d.Versions = versionPairs(base, cand)

	baseChecks, baseOrder := indexChecks(base)
	candChecks, candOrder := indexChecks(cand)
	for _, id := range baseOrder {
		b := baseChecks[id]
		c, ok := candChecks[id]
		if !ok {
			d.OnlyBaseline = append(d.OnlyBaseline, CheckRef{ID: id, Title: b.Title, Status: statusOf(b)})
			continue
		}
		d.Summary.Common++
		bs, cs := statusOf(b), statusOf(c)
		if bs != cs {
			kind, note := classify(bs, cs)
			title := c.Title
			if title == "" {
				title = b.Title
			}
			d.Verdicts = append(d.Verdicts, VerdictChange{
				ID: id, Title: title, Kind: kind, Baseline: bs, Candidate: cs, Note: note,
				BaselineMessage: b.Message, CandidateMessage: c.Message,
			})
		} else {
			d.Summary.Unchanged++
		}
		if ran(bs) && ran(cs) {
			d.Figures = append(d.Figures, moved(b, c, opts)...)
		}
	}
	for _, id := range candOrder {
		if _, ok := baseChecks[id]; !ok {
			c := candChecks[id]
			d.OnlyCandidate = append(d.OnlyCandidate, CheckRef{ID: id, Title: c.Title, Status: statusOf(c)})
		}
	}
	d.Claims = compareClaims(ledgerOf(base), ledgerOf(cand))
	rank := map[ChangeKind]int{Regression: 0, OtherChange: 1, Coverage: 2, Improvement: 3}
	sort.SliceStable(d.Verdicts, func(i, j int) bool { return rank[d.Verdicts[i].Kind] < rank[d.Verdicts[j].Kind] })
	for _, v := range d.Verdicts {
		switch v.Kind {
		case Regression:
			d.Regressions = append(d.Regressions, v.ID)
			d.Summary.Regressions++
		case Improvement:
			d.Summary.Improvements++
		case Coverage:
			d.Summary.Coverage++
		default:
			d.Summary.Other++
		}
	}
	d.Summary.Claims = len(d.Claims)
	d.Summary.Figures = len(d.Figures)
	d.Summary.OnlyBaseline = len(d.OnlyBaseline)
	d.Summary.OnlyCandidate = len(d.OnlyCandidate)
	return d
}

func runRef(r *Report) RunRef {
	cp := *r
	cp.Checks = append([]Check(nil), r.Checks...)
	cp.Summarize() // on a copy: the caller's report is left alone
	l := ledgerOf(r)
	return RunRef{RunID: r.RunID, Backend: r.Backend, StartedAt: r.StartedAt, Summary: cp.Summary,
		ClaimsWithVerdict: l.WithVerdict, ClaimsTotal: l.Total}
}

// compareClaims lists the claims whose verdict differs, by ledger id.
func compareClaims(base, cand *Ledger) []ClaimChange {
	b := map[string]LedgerClaim{}
	for _, c := range base.Claims {
		b[c.ID] = c
	}
	c := map[string]LedgerClaim{}
	for _, x := range cand.Claims {
		c[x.ID] = x
	}
	ids := slices.Sorted(maps.Keys(b))
	for id := range c {
		if _, ok := b[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := []ClaimChange{}
	for _, id := range ids {
		bc, bok := b[id]
		cc, cok := c[id]
		bv, cv := verdictOf(bc, bok), verdictOf(cc, cok)
		if bv == cv {
			continue
		}
		ref := cc // the candidate's observers, or the baseline's when the candidate has none
		if bok && cv == NoVerdict {
			ref = bc
		}
		ch := ClaimChange{ID: id, Source: ref.Source, Text: ref.Text, Baseline: bv, Candidate: cv}
		for _, o := range ref.Observations {
			if !slices.Contains(ch.Checks, o.Check) {
				ch.Checks = append(ch.Checks, o.Check)
			}
		}
		out = append(out, ch)
	}
	return out
}

func verdictOf(c LedgerClaim, ok bool) Verdict {
	if !ok || c.Verdict == "" {
		return NoVerdict
	}
	return c.Verdict
}

func versionPairs(base, cand *Report) []VersionPair {
	bv, cv := base.Versions, cand.Versions
	pairs := []VersionPair{
		{Name: "Backend", Baseline: base.Backend, Candidate: cand.Backend},
		{Name: "Version set", Baseline: bv.Set, Candidate: cv.Set},
		{Name: "Kubernetes", Baseline: bv.Kubernetes, Candidate: cv.Kubernetes},
		{Name: "Vault", Baseline: bv.Vault, Candidate: cv.Vault},
		{Name: "Vault chart", Baseline: bv.VaultChart, Candidate: cv.VaultChart},
		{Name: "External Secrets Operator", Baseline: bv.ESO, Candidate: cv.ESO},
		{Name: "ESO chart", Baseline: bv.ESOChart, Candidate: cv.ESOChart},
		{Name: "Postgres", Baseline: bv.Postgres, Candidate: cv.Postgres},
	}
	for i := range pairs {
		pairs[i].Changed = pairs[i].Baseline != pairs[i].Candidate
	}
	return pairs
}

func indexChecks(r *Report) (map[string]Check, []string) {
	m := make(map[string]Check, len(r.Checks))
	var order []string
	for _, c := range r.Checks {
		if _, dup := m[c.ID]; dup {
			continue
		}
		m[c.ID] = c
		order = append(order, c.ID)
	}
	return m, order
}

func statusOf(c Check) Status {
	switch c.Status {
	case Passed, Failed, Skipped:
		return c.Status
	}
	return Unknown
}

// ran: the check produced a verdict of its own, so its duration and figures mean something.
func ran(s Status) bool { return s == Passed || s == Failed }

func classify(b, c Status) (ChangeKind, string) {
	switch {
	case b == Passed && (c == Failed || c == Unknown):
		return Regression, "regression: passed in the baseline, " + string(c) + " now"
	case (b == Failed || b == Unknown) && c == Passed:
		return Improvement, "improvement: " + string(b) + " in the baseline, passes now"
	case b == Passed && c == Skipped:
		return Coverage, "coverage lost: skipped now, so not tested (not a regression)"
	case b == Skipped && c == Passed:
		return Coverage, "coverage gained: skipped in the baseline, runs and passes now"
	case b == Skipped:
		return OtherChange, "coverage gained, but the check is " + string(c) + " (it was skipped in the baseline)"
	case c == Skipped:
		return OtherChange, "coverage lost: skipped now (it was " + string(b) + ")"
	}
	return OtherChange, "still not passing: " + string(b) + " -> " + string(c)
}

// moved returns the duration and figures of b and c that differ beyond the band, in
// order: duration, then figures by name.
func moved(b, c Check, o DiffOptions) []FigureChange {
	var out []FigureChange
	if fc, ok := compareValue(b.ID, "duration", "s", b.DurationSeconds, c.DurationSeconds, o); ok {
		out = append(out, fc)
	}
	names := map[string]bool{}
	for n := range b.Figures {
		names[n] = true
	}
	for n := range c.Figures {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		bv, bok := b.Figures[n]
		cv, cok := c.Figures[n]
		unit := unitOf(n)
		switch {
		case bok && cok:
			if fc, ok := compareValue(b.ID, n, unit, bv, cv, o); ok {
				out = append(out, fc)
			}
		case bok && finite(bv):
			out = append(out, FigureChange{ID: b.ID, Figure: n, Unit: unit, Baseline: ptr(bv)})
		case cok && finite(cv):
			out = append(out, FigureChange{ID: b.ID, Figure: n, Unit: unit, Candidate: ptr(cv)})
		}
	}
	return out
}

func compareValue(id, name, unit string, b, c float64, o DiffOptions) (FigureChange, bool) {
	if !finite(b) || !finite(c) {
		return FigureChange{}, false
	}
	delta := c - b
	abs := math.Abs(delta)
	if abs == 0 {
		return FigureChange{}, false
	}
	switch unit {
	case "s":
		if abs <= o.FloorSeconds {
			return FigureChange{}, false
		}
	case "ms":
		if abs <= o.FloorSeconds*1000 {
			return FigureChange{}, false
		}
	}
	fc := FigureChange{ID: id, Figure: name, Unit: unit, Baseline: ptr(b), Candidate: ptr(c), Delta: delta}
	if b == 0 {
		return fc, true
	}
	pct := 100 * delta / math.Abs(b)
	if math.Abs(pct) <= o.NoisePercent {
		return FigureChange{}, false
	}
	fc.Percent = ptr(pct)
	return fc, true
}

func unitOf(name string) string {
	switch {
	case strings.HasSuffix(name, "-ms"):
		return "ms"
	case strings.HasSuffix(name, "-seconds"):
		return "s"
	}
	return ""
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func nonNegative(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return v
}

func ptr(v float64) *float64 { return &v }

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}
