package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func diffBase() *Report {
	return &Report{
		SchemaVersion: SchemaVersion, RunID: "base-run", Backend: "embedded",
		Versions: Versions{Kubernetes: "v1.31.14", Vault: "1.17.2", ESO: "v0.10.4", Postgres: "15.18"},
		Checks: []Check{
			{ID: "a.stable", Status: Passed, DurationSeconds: 1, Figures: map[string]float64{"books": 4}},
			{ID: "a.breaks", Status: Passed, DurationSeconds: 0.1},
			{ID: "a.fixed", Status: Failed, Message: "was broken"},
			{ID: "a.dropped-coverage", Status: Passed},
			{ID: "a.gained-coverage", Status: Skipped},
			{ID: "a.vanishes", Status: Unknown},
			{ID: "b.no-result", Status: Passed, DurationSeconds: 2},
			{ID: "b.claim", Status: Passed, Claims: []Claim{{ID: "C05-05", Holds: false}}},
			{ID: "b.claim-failed", Status: Passed, Claims: []Claim{{ID: "C05-06", Holds: false}}},
			{ID: "b.slow", Status: Passed, DurationSeconds: 10,
				Figures: map[string]float64{"sync-seconds": 10, "latency-ms": 100, "tiny-seconds": 0.1, "count": 0, "ttl-seconds": 100}},
			{ID: "b.skipped-figs", Status: Passed, DurationSeconds: 30, Claims: []Claim{{ID: "C05-11", Holds: true}}},
		},
	}
}

func diffCand() *Report {
	return &Report{
		SchemaVersion: SchemaVersion, RunID: "cand-run", Backend: "kind",
		Versions: Versions{Kubernetes: "v1.31.14", Vault: "1.17.2", VaultChart: "0.28.1", ESO: "v0.10.4", Postgres: "15.20"},
		Checks: []Check{
			{ID: "a.appears", Status: Passed, Claims: []Claim{{ID: "C05-09", Holds: true}}},
			{ID: "a.stable", Status: Passed, DurationSeconds: 1.1, Figures: map[string]float64{"books": 4}},
			{ID: "a.breaks", Status: Failed, DurationSeconds: 0.2, Message: "value differs (redacted)"},
			{ID: "a.fixed", Status: Passed},
			{ID: "a.dropped-coverage", Status: Skipped},
			{ID: "a.gained-coverage", Status: Passed},
			{ID: "b.no-result", Status: "exploded"},
			{ID: "b.claim", Status: Passed, Claims: []Claim{{ID: "C05-05", Holds: true}}},
			{ID: "b.claim-failed", Status: Failed, Claims: []Claim{{ID: "C05-06", Holds: false}}},
			{ID: "b.slow", Status: Passed, DurationSeconds: 12, // +20%: within the band
				Figures: map[string]float64{"sync-seconds": 20, "latency-ms": 900, "tiny-seconds": 0.4, "count": 1, "ttl-seconds": 120, "new-figure": 3}},
			{ID: "b.skipped-figs", Status: Skipped, Claims: []Claim{{ID: "C05-11", Holds: true}}},
		},
	}
}

func TestCompare(t *testing.T) {
	base, cand := diffBase(), diffCand()
	baseJSON, _ := json.Marshal(base)
	d := Compare(base, cand, DefaultDiffOptions())
	if after, _ := json.Marshal(base); !bytes.Equal(after, baseJSON) {
		t.Error("Compare modified the baseline")
	}

	type vc struct {
		ID   string
		Kind ChangeKind
		B, C Status
	}
	var got []vc
	for _, v := range d.Verdicts {
		got = append(got, vc{v.ID, v.Kind, v.Baseline, v.Candidate})
	}
	want := []vc{ // regressions first, then other, coverage, improvements; baseline order within
		{"a.breaks", Regression, Passed, Failed},
		{"b.no-result", Regression, Passed, Unknown},
		{"b.claim-failed", Regression, Passed, Failed},
		{"a.dropped-coverage", Coverage, Passed, Skipped},
		{"a.gained-coverage", Coverage, Skipped, Passed},
		{"b.skipped-figs", Coverage, Passed, Skipped},
		{"a.fixed", Improvement, Failed, Passed},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("verdicts\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(d.Regressions, []string{"a.breaks", "b.no-result", "b.claim-failed"}) {
		t.Errorf("regressions %v", d.Regressions)
	}
	if d.Verdicts[0].CandidateMessage != "value differs (redacted)" {
		t.Errorf("candidate message %q", d.Verdicts[0].CandidateMessage)
	}
	if !strings.Contains(d.Verdicts[3].Note, "not a regression") {
		t.Errorf("coverage note %q", d.Verdicts[3].Note)
	}

	// Claims are compared by ledger id, in id order: a verdict that flips, one gained, one lost
	// (a skipped check observed nothing); C05-06 does not hold in both, though its check failed.
	wantClaims := []ClaimChange{
		{ID: "C05-05", Source: "ch05 §3", Text: "the ExternalSecret shows `SecretSynced=True`", Baseline: DoesNotHold, Candidate: Holds, Checks: []string{"b.claim"}},
		{ID: "C05-09", Source: "ch05 how it works", Text: "creationPolicy Owner: deleting the ExternalSecret deletes the Secret", Baseline: NoVerdict, Candidate: Holds, Checks: []string{"a.appears"}},
		{ID: "C05-11", Source: "ch05 test 4", Text: "`metadata.ownerReferences` points at the ExternalSecret", Baseline: Holds, Candidate: NoVerdict, Checks: []string{"b.skipped-figs"}},
	}
	if !reflect.DeepEqual(d.Claims, wantClaims) {
		t.Errorf("claims\n got %+v\nwant %+v", d.Claims, wantClaims)
	}
	if d.Baseline.ClaimsWithVerdict != 3 || d.Candidate.ClaimsWithVerdict != 3 || d.Candidate.ClaimsTotal != 40 {
		t.Errorf("claim coverage %+v %+v", d.Baseline, d.Candidate)
	}

	figs := map[string]FigureChange{}
	for _, f := range d.Figures {
		figs[f.ID+" "+f.Figure] = f
	}
	for _, k := range []string{"b.slow sync-seconds", "b.slow latency-ms", "b.slow count", "b.slow new-figure"} {
		if _, ok := figs[k]; !ok {
			t.Errorf("figure %s not reported as moved", k)
		}
	}
	for _, k := range []string{
		"a.stable duration",       // +10 %: within
		"a.stable books",          // unchanged
		"b.slow duration",         // +20 %: within
		"b.slow ttl-seconds",      // +20 %: within
		"b.slow tiny-seconds",     // +300 %, but 0.3 s: under the floor
		"a.breaks duration",       // +100 %, but 0.1 s: under the floor
		"b.skipped-figs duration", // skipped in the candidate: not compared
	} {
		if _, ok := figs[k]; ok {
			t.Errorf("figure %s reported, but it is within the noise band or not comparable", k)
		}
	}
	if f := figs["b.slow sync-seconds"]; f.Percent == nil || *f.Percent != 100 || f.Delta != 10 || f.Unit != "s" {
		t.Errorf("sync-seconds %+v", f)
	}
	if f := figs["b.slow count"]; f.Percent != nil || f.Delta != 1 {
		t.Errorf("count from 0: %+v", f)
	}
	if f := figs["b.slow new-figure"]; f.Baseline != nil || f.Candidate == nil || *f.Candidate != 3 {
		t.Errorf("new figure %+v", f)
	}
	if len(d.Figures) != 4 {
		t.Errorf("%d figures moved, want 4: %+v", len(d.Figures), d.Figures)
	}

	if !reflect.DeepEqual(d.OnlyBaseline, []CheckRef{{ID: "a.vanishes", Status: Unknown}}) {
		t.Errorf("only baseline %+v", d.OnlyBaseline)
	}
	if !reflect.DeepEqual(d.OnlyCandidate, []CheckRef{{ID: "a.appears", Status: Passed}}) {
		t.Errorf("only candidate %+v", d.OnlyCandidate)
	}

	changed := map[string]bool{}
	for _, v := range d.Versions {
		changed[v.Name] = v.Changed
	}
	if !changed["Backend"] || !changed["Vault chart"] || !changed["Postgres"] || changed["Vault"] || changed["Kubernetes"] {
		t.Errorf("versions %+v", d.Versions)
	}
	if d.Versions[0].Name != "Backend" || d.Versions[0].Baseline != "embedded" || d.Versions[0].Candidate != "kind" {
		t.Errorf("first version row %+v, want the backend", d.Versions[0])
	}

	wantSum := DiffSummary{Common: 10, Unchanged: 3, Regressions: 3, Improvements: 1, Coverage: 3,
		Claims: 3, Figures: 4, OnlyBaseline: 1, OnlyCandidate: 1}
	if d.Summary != wantSum {
		t.Errorf("summary %+v\n   want %+v", d.Summary, wantSum)
	}
	if d.Candidate.Summary.Unknown != 1 || d.Baseline.Summary.Total != 11 {
		t.Errorf("run summaries %+v %+v", d.Baseline.Summary, d.Candidate.Summary)
	}

	err := d.Err()
	var re *RegressionError
	if !errors.As(err, &re) || err.Error() != "3 regressions: a.breaks, b.no-result, b.claim-failed" {
		t.Errorf("Err() = %v", err)
	}
}

func TestCompareNoise(t *testing.T) {
	base, cand := diffBase(), diffCand()
	// A wider band hides sync-seconds (+100 %) and latency-ms (+800 %); a value from 0 and
	// a figure in one run only are always reported.
	d := Compare(base, cand, DiffOptions{NoisePercent: 1000, FloorSeconds: 0.5})
	if d.Summary.Figures != 2 {
		t.Errorf("with ±1000%%: %d figures, want 2: %+v", d.Summary.Figures, d.Figures)
	}
	// No band, no floor: every change counts.
	d = Compare(base, cand, DiffOptions{})
	var names []string
	for _, f := range d.Figures {
		names = append(names, f.ID+" "+f.Figure)
	}
	want := []string{"a.stable duration", "a.breaks duration", "b.slow duration", "b.slow count",
		"b.slow latency-ms", "b.slow new-figure", "b.slow sync-seconds", "b.slow tiny-seconds", "b.slow ttl-seconds"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("no band:\n got %v\nwant %v", names, want)
	}
	if got := DefaultDiffOptions().Band(); got != "±25% (times also by more than 0.5 s)" {
		t.Errorf("band %q", got)
	}
}

func TestCompareIdentical(t *testing.T) {
	d := Compare(diffBase(), diffBase(), DefaultDiffOptions())
	if d.Err() != nil || len(d.Verdicts)+len(d.Claims)+len(d.Figures)+len(d.OnlyBaseline)+len(d.OnlyCandidate) != 0 {
		t.Errorf("identical runs differ: %+v", d)
	}
	if diffVerdict(d) != "UNCHANGED" {
		t.Errorf("verdict %s", diffVerdict(d))
	}
	// Empty lists are [] in JSON, not null.
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("null")) {
		t.Errorf("diff.json has null lists: %s", data)
	}
}

func TestWriteDiff(t *testing.T) {
	base, cand := diffBase(), diffCand()
	cand.Checks[2].Message = "<script>alert(1)</script> | pipe"
	d := Compare(base, cand, DefaultDiffOptions())
	dir := filepath.Join(t.TempDir(), "diff")
	if err := WriteDiff(dir, d); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, DiffJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var back Diff
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Regressions, d.Regressions) || back.Summary != d.Summary || back.SchemaVersion != DiffSchemaVersion {
		t.Errorf("diff.json round trip: %+v", back)
	}
	md, _ := os.ReadFile(filepath.Join(dir, DiffMarkdownFile))
	html, _ := os.ReadFile(filepath.Join(dir, DiffHTMLFile))
	for name, body := range map[string]string{"md": string(md), "html": string(html)} {
		if strings.Contains(body, "<script>") {
			t.Errorf("%s: message not escaped", name)
		}
		for _, want := range []string{"REGRESSED", "a.breaks", "b.claim", "±25% (times also by more than 0.5 s)", "a.vanishes", "a.appears", "0.28.1",
			"C05-05", "SecretSynced=True", "no verdict", "3 of 40 in the baseline"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
		if strings.Index(body, "a.breaks") > strings.Index(body, "a.fixed") {
			t.Errorf("%s: the regression is not listed before the improvement", name)
		}
	}
	if strings.Contains(string(html), "http://") || strings.Contains(string(html), "https://") || strings.Contains(string(html), "<script") {
		t.Error("diff.html is not self-contained")
	}
	if !strings.Contains(string(md), `\| pipe`) {
		t.Error("diff.md: pipe in a message not escaped")
	}

	var sum bytes.Buffer
	WriteDiffSummary(&sum, d, 2)
	out := sum.String()
	for _, want := range []string{"a.breaks: passed -> failed (REGRESSION)", "±25%", "... and 5 more", "Backend embedded -> kind",
		"C05-05 (ch05 §3): does not hold -> holds", "ledger claims with a verdict: 3 of 40 -> 3 of 40", "baseline only:  a.vanishes"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
