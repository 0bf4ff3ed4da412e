package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	start := time.Date(2025, 3, 4, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	return &Report{
		RunID:      "run-20250304-0900",
		Backend:    "embedded",
		StartedAt:  start,
		FinishedAt: start.Add(2*time.Minute + 13500*time.Millisecond),
		Versions: Versions{
			Kubernetes: "v1.31.4", Vault: "1.17.2", VaultChart: "0.28.1",
			ESO: "v0.10.4", ESOChart: "0.10.4", Postgres: "16.4",
		},
		Checks: []Check{
			{ID: "sync.initial", Scenario: "sync", Title: "first sync creates the Secret", Status: Passed,
				DurationSeconds: 1.25, Figures: map[string]float64{"sync-latency-ms": 812.4, "attempts": 1}},
			{ID: "sync.refresh", Scenario: "sync", Title: "refresh picks up a new version", Status: Failed,
				DurationSeconds: 30.5, Figures: map[string]float64{"refresh-seconds": 30.5},
				Message: "secret not updated after 30s | want version 2, got 1\n<script>alert(1)</script>"},
			{ID: "swap.byte-identical", Scenario: "swap", Title: "bytes survive the trip", Status: Passed,
				DurationSeconds: 0.2, Message: "42 keys compared"},
			{ID: "swap.binary", Scenario: "swap", Status: Skipped, Message: "binary values disabled on this backend"},
			{ID: "swap.timeout", Scenario: "swap", Status: Unknown},
			{ID: "rotate.db-password", Scenario: "rotate", Title: "database password rotates", Status: "exploded",
				DurationSeconds: 2, Message: "scenario panicked"},
			{ID: "rotate.lease", Scenario: "rotate", Status: Passed, DurationSeconds: 4.75,
				Figures: map[string]float64{"lease-ttl-seconds": 3600}},
		},
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	r := sampleReport()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{JSONFile, JUnitFile, MarkdownFile, HTMLFile} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Fatalf("%s not written (err %v)", name, err)
		}
	}
	got, err := Read(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if got.SchemaVersion != SchemaVersion {
		t.Errorf("schemaVersion %d, want %d", got.SchemaVersion, SchemaVersion)
	}
	if !got.StartedAt.Equal(r.StartedAt) || !got.FinishedAt.Equal(r.FinishedAt) {
		t.Errorf("times changed: %v..%v, want %v..%v", got.StartedAt, got.FinishedAt, r.StartedAt, r.FinishedAt)
	}
	got.StartedAt, got.FinishedAt = r.StartedAt, r.FinishedAt
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", got, r)
	}
	want := Summary{Total: 7, Passed: 3, Failed: 1, Skipped: 1, Unknown: 2}
	if got.Summary != want {
		t.Errorf("summary %+v, want %+v", got.Summary, want)
	}
	if got.Checks[5].Status != Unknown {
		t.Errorf("invalid status stored as %q, want unknown", got.Checks[5].Status)
	}
	if got.Verdict() != Failed {
		t.Errorf("verdict %q, want failed", got.Verdict())
	}
}

func TestReadRejectsUnknownSchema(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, body string }{
		{"future", `{"schemaVersion": 2, "runId": "x"}`},
		{"missing", `{"runId": "x"}`},
	} {
		path := filepath.Join(dir, tc.name+".json")
		if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Read(path)
		if err == nil || !strings.Contains(err.Error(), "schemaVersion") {
			t.Errorf("%s: err %v, want a schemaVersion error", tc.name, err)
		}
	}
	path := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Error("broken JSON read without error")
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		statuses []Status
		want     Status
	}{
		{nil, Unknown},
		{[]Status{Passed, Skipped}, Passed},
		{[]Status{Passed, "bogus"}, Unknown},
		{[]Status{Passed, Unknown, Failed}, Failed},
	} {
		r := &Report{}
		for _, s := range tc.statuses {
			r.Checks = append(r.Checks, Check{ID: "a.b", Status: s})
		}
		r.Summarize()
		if got := r.Verdict(); got != tc.want {
			t.Errorf("%v: verdict %q, want %q", tc.statuses, got, tc.want)
		}
	}
}

// junit mirrors the shape CI reporters read, for parsing junit.xml back.
type junit struct {
	XMLName  xml.Name `xml:"testsuites"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Time     string   `xml:"time,attr"`
	Suites   []struct {
		Name       string `xml:"name,attr"`
		Tests      int    `xml:"tests,attr"`
		Failures   int    `xml:"failures,attr"`
		Errors     int    `xml:"errors,attr"`
		Skipped    int    `xml:"skipped,attr"`
		Time       string `xml:"time,attr"`
		Timestamp  string `xml:"timestamp,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			ClassName string    `xml:"classname,attr"`
			Name      string    `xml:"name,attr"`
			Time      string    `xml:"time,attr"`
			Failure   *junitMsg `xml:"failure"`
			Error     *junitMsg `xml:"error"`
			Skipped   *junitMsg `xml:"skipped"`
			SystemOut string    `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitMsg struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func TestJUnit(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, sampleReport()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, JUnitFile))
	if err != nil {
		t.Fatal(err)
	}
	var j junit
	if err := xml.Unmarshal(data, &j); err != nil {
		t.Fatalf("junit.xml does not parse: %v", err)
	}
	if j.Name != "secretslab" || j.Tests != 7 || j.Failures != 1 || j.Errors != 2 || j.Skipped != 1 {
		t.Errorf("root: name %q tests %d failures %d errors %d skipped %d, want secretslab 7 1 2 1",
			j.Name, j.Tests, j.Failures, j.Errors, j.Skipped)
	}
	if j.Time != "133.500" {
		t.Errorf("root time %q, want the run's wall time 133.500", j.Time)
	}
	type counts struct {
		tests, failures, errors, skipped int
		time                             string
	}
	want := map[string]counts{
		"sync":   {2, 1, 0, 0, "31.750"},
		"swap":   {3, 0, 1, 1, "0.200"},
		"rotate": {2, 0, 1, 0, "6.750"},
	}
	var order []string
	for _, s := range j.Suites {
		order = append(order, s.Name)
		got := counts{s.Tests, s.Failures, s.Errors, s.Skipped, s.Time}
		if got != want[s.Name] {
			t.Errorf("suite %s: %+v, want %+v", s.Name, got, want[s.Name])
		}
		if len(s.Cases) != s.Tests {
			t.Errorf("suite %s: %d testcases, tests=%d", s.Name, len(s.Cases), s.Tests)
		}
		if s.Timestamp != "2025-03-04T09:00:00" {
			t.Errorf("suite %s: timestamp %q, want 2025-03-04T09:00:00 (UTC)", s.Name, s.Timestamp)
		}
		props := map[string]string{}
		for _, p := range s.Properties {
			props[p.Name] = p.Value
		}
		if props["backend"] != "embedded" || props["version.vault"] != "1.17.2" || props["version.kubernetes"] != "v1.31.4" {
			t.Errorf("suite %s: properties %v lack backend/versions", s.Name, props)
		}
	}
	if strings.Join(order, ",") != "sync,swap,rotate" {
		t.Errorf("suites in order %v, want first-appearance order sync,swap,rotate", order)
	}

	cases := map[string]int{} // id -> suite index*100 + case index
	for si, s := range j.Suites {
		for ci, c := range s.Cases {
			cases[c.Name] = si*100 + ci
			if c.ClassName != "secretslab."+s.Name {
				t.Errorf("%s: classname %q", c.Name, c.ClassName)
			}
			if c.Time == "" {
				t.Errorf("%s: no time attribute", c.Name)
			}
			n := 0
			for _, p := range []*junitMsg{c.Failure, c.Error, c.Skipped} {
				if p != nil {
					n++
				}
			}
			if n > 1 {
				t.Errorf("%s: more than one of failure/error/skipped", c.Name)
			}
		}
	}
	get := func(id string) (sc, tc int) { v := cases[id]; return v / 100, v % 100 }

	si, ci := get("sync.refresh")
	c := j.Suites[si].Cases[ci]
	if c.Failure == nil || !strings.Contains(c.Failure.Text, "<script>") || !strings.HasPrefix(c.Failure.Message, "secret not updated") {
		t.Errorf("sync.refresh: failure %+v", c.Failure)
	}
	if c.Time != "30.500" {
		t.Errorf("sync.refresh: time %q, want 30.500", c.Time)
	}
	if !strings.Contains(c.SystemOut, "refresh-seconds=30.5\n") {
		t.Errorf("sync.refresh: system-out %q lacks the figure", c.SystemOut)
	}

	si, ci = get("sync.initial")
	c = j.Suites[si].Cases[ci]
	if c.Failure != nil || c.Error != nil || c.Skipped != nil {
		t.Error("sync.initial: passed check has a failure/error/skipped element")
	}
	if c.SystemOut != "attempts=1\nsync-latency-ms=812.4\n" {
		t.Errorf("sync.initial: system-out %q", c.SystemOut)
	}

	si, ci = get("swap.binary")
	if c := j.Suites[si].Cases[ci]; c.Skipped == nil || c.Skipped.Message != "binary values disabled on this backend" {
		t.Errorf("swap.binary: skipped %+v", c.Skipped)
	}
	for _, id := range []string{"swap.timeout", "rotate.db-password"} {
		si, ci = get(id)
		if c := j.Suites[si].Cases[ci]; c.Error == nil || c.Error.Message != "no result" {
			t.Errorf("%s: error %+v, want <error message=\"no result\">", id, c.Error)
		}
	}
}

func TestJUnitHostileText(t *testing.T) {
	msg := "\x1b[31mred\x1b[0m ]]> <b>&amp; \x00 \xff end"
	r := &Report{RunID: "r", Checks: []Check{
		{ID: "a.fail", Status: Failed, Message: msg, Figures: map[string]float64{"x]]>y": 1}},
		{ID: "a.none", Status: Unknown, Message: msg},
		{ID: "a.skip", Status: Skipped, Message: msg},
	}}
	dir := t.TempDir()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, JUnitFile))
	if err != nil {
		t.Fatal(err)
	}
	var j junit
	if err := xml.Unmarshal(data, &j); err != nil {
		t.Fatalf("junit.xml with control characters and ]]> does not parse: %v", err)
	}
	cases := j.Suites[0].Cases
	if j.Suites[0].Name != "a" || len(cases) != 3 {
		t.Fatalf("suite %q with %d cases, want a with 3", j.Suites[0].Name, len(cases))
	}
	if got := cases[0].Failure.Text; !strings.Contains(got, "]]> <b>&amp; ") || !strings.HasSuffix(got, " end") {
		t.Errorf("failure text mangled: %q", got)
	}
	if !strings.Contains(cases[0].SystemOut, "x]]>y=1") {
		t.Errorf("system-out mangled: %q", cases[0].SystemOut)
	}
	if cases[1].Error == nil || cases[2].Skipped == nil {
		t.Error("unknown/skipped elements missing")
	}
}

func TestMarkdown(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, sampleReport()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	md := string(data)
	for _, want := range []string{
		"run-20250304-0900", "embedded", "2025-03-04 09:00:00 UTC", "2m14s", "| Vault | 1.17.2 |",
		"**FAILED**: 7 checks, 3 passed, 1 failed, 1 skipped, 2 unknown",
		"## Failures", "### `sync.refresh`: failed", "### `rotate.db-password`: unknown",
		`secret not updated after 30s \| want version 2, got 1 &lt;script&gt;`,
		"sync-latency-ms = 812.4 ms", "lease-ttl-seconds = 3600 s",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	failures := strings.Index(md, "## Failures")
	verdicts := strings.Index(md, "## Verdicts")
	firstFail := strings.Index(md, "sync.refresh")
	firstPass := strings.Index(md, "| `sync.initial` | passed")
	if !(failures < firstFail && firstFail < verdicts && verdicts < firstPass) {
		t.Errorf("report.md does not list failures before passes (failures@%d refresh@%d verdicts@%d pass@%d)",
			failures, firstFail, verdicts, firstPass)
	}
	// Every table row has exactly six unescaped pipes (five cells).
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		if n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); n != 6 {
			t.Errorf("table row with %d cell separators, want 6: %.40s…", n, line)
		}
	}
}

func TestHTML(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, sampleReport()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	if strings.Contains(page, "<script") {
		t.Error("report.html contains an unescaped <script")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("report.html lacks the escaped <script> message")
	}
	for _, want := range []string{
		`<tr id="check-sync.initial" class="row-passed">`,
		`<tr id="check-sync.refresh" class="row-failed">`,
		`<tr id="check-swap.binary" class="row-skipped">`,
		`<tr id="check-swap.timeout" class="row-unknown">`,
		`<tr id="check-rotate.db-password" class="row-unknown">`,
		`<span class="st st-failed">failed</span>`,
		`<span class="mono">sync-latency-ms</span> = 812.4 ms`,
		`<span class="mono">refresh-seconds</span> = 30.5 s`,
		`3 passed</span>`, `2 unknown</span>`, `<h2 id="failures">`, "run-20250304-0900",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if f, v := strings.Index(page, `<h2 id="failures">`), strings.Index(page, `<h2 id="verdicts">`); f < 0 || f > v {
		t.Error("report.html: Failures section is not before the verdicts")
	}
	for _, external := range []string{"http://", "https://", "<link", "@import", "url("} {
		if strings.Contains(page, external) {
			t.Errorf("report.html is not self-contained: contains %q", external)
		}
	}
	if rows := strings.Count(page, "<tr id=\"check-"); rows != 7 {
		t.Errorf("report.html has %d verdict rows, want 7", rows)
	}
}

func TestRenderReproducesFiles(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, sampleReport()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rendered")
	if err := Render(filepath.Join(dir, JSONFile), out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{JUnitFile, MarkdownFile, HTMLFile} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Render: %s differs from the one Write made", name)
		}
	}
	if _, err := os.Stat(filepath.Join(out, JSONFile)); !os.IsNotExist(err) {
		t.Errorf("Render wrote report.json into the out dir (stat err %v)", err)
	}

	// outDir defaults to the json's dir, and overwrites in place.
	before, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, HTMLFile)); err != nil {
		t.Fatal(err)
	}
	if err := Render(filepath.Join(dir, JSONFile), ""); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("Render with no out dir: report.html differs")
	}
}

func TestRenderTreatsInvalidStatusAsUnknown(t *testing.T) {
	// A report.json edited or written by something else, with a status outside the four.
	dir := t.TempDir()
	r := map[string]any{
		"schemaVersion": SchemaVersion, "runId": "r", "backend": "kind",
		"checks": []map[string]any{
			{"id": "a.one", "scenario": "a", "status": "passed"},
			{"id": "a.two", "scenario": "a", "status": "PASSED"},
		},
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, JSONFile)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Render(path, ""); err != nil {
		t.Fatal(err)
	}
	x, err := os.ReadFile(filepath.Join(dir, JUnitFile))
	if err != nil {
		t.Fatal(err)
	}
	var j junit
	if err := xml.Unmarshal(x, &j); err != nil {
		t.Fatal(err)
	}
	if j.Tests != 2 || j.Errors != 1 || j.Suites[0].Errors != 1 || j.Suites[0].Cases[1].Error == nil {
		t.Errorf("invalid status not reported as an error: tests %d errors %d", j.Tests, j.Errors)
	}
}

func TestWriteDropsNonFiniteFigures(t *testing.T) {
	r := sampleReport()
	r.Checks[0].Figures["broken-ms"] = math.Inf(1)
	if err := Write(t.TempDir(), r); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Checks[0].Figures["broken-ms"]; ok {
		t.Error("infinite figure kept")
	}
	if !strings.Contains(r.Checks[0].Message, "figure broken-ms was +Inf") {
		t.Errorf("drop not noted in the message: %q", r.Checks[0].Message)
	}
}

func TestCourseClaimsAreTheLedgerWithTheRunsVerdicts(t *testing.T) {
	dir := t.TempDir()
	r := &Report{RunID: "claims", Backend: "embedded", Checks: []Check{
		{ID: "swap.condition-name", Scenario: "swap", Status: Passed, Claims: []Claim{{ID: "C05-05", Holds: false, Detail: "conditions [Ready=True/SecretSynced]"}}},
		{ID: "swap.served-api-version", Scenario: "swap", Status: Passed, Claims: []Claim{{ID: "C05-03", Holds: true, Versions: "ESO v0.16.2, Vault 1.17.2"}}},
		{ID: "swap.owner-reference", Scenario: "swap", Status: Failed, Message: "no owner", Claims: []Claim{{ID: "C05-11", Holds: false}}},
		{ID: "revert.secret-collected", Scenario: "revert", Status: Passed, Claims: []Claim{{ID: "C05-09", Holds: true}}},
		{ID: "upgrade.gc-after", Scenario: "upgrade", Status: Passed, Claims: []Claim{{ID: "C05-09", Holds: false, Detail: "gone after 90s"}}},
		{ID: "swap.byte-identical", Scenario: "swap", Status: Unknown, Claims: []Claim{{ID: "C05-06", Holds: true}}}, // no result: not an observation
		{ID: "x.unlisted", Scenario: "x", Status: Passed, Claims: []Claim{{ID: "C05-99", Text: "not in the ledger", Holds: true}}},
	}}
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	back, err := Read(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	l := back.Ledger
	if l == nil || l.Total != 40 || l.WithVerdict != 4 || l.Hold != 1 || l.DoNotHold != 3 || l.Coverage() != "4 of 40" {
		t.Fatalf("ledger in report.json: %+v", l)
	}
	verdicts := map[string]Verdict{}
	var ids []string
	for _, c := range l.Claims {
		verdicts[c.ID] = c.Verdict
		ids = append(ids, c.ID)
	}
	if !slices.IsSorted(ids[:l.Total]) || ids[len(ids)-1] != "C05-99" || !l.Claims[len(ids)-1].NotInLedger {
		t.Errorf("claims not ordered by id, the unlisted one last: %v", ids)
	}
	for id, want := range map[string]Verdict{"C05-03": Holds, "C05-05": DoesNotHold, "C05-06": NoVerdict, "C05-09": DoesNotHold, "C05-11": DoesNotHold, "C15-01": NoVerdict} {
		if verdicts[id] != want {
			t.Errorf("%s: %q, want %q", id, verdicts[id], want)
		}
	}

	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFile))
	for _, want := range []string{
		"## Course claims", "**4 of 40 ledger claims have a verdict** on this run: 1 hold, 3 do not hold.",
		"| C05-03 | SecretStore / ExternalSecret are `external-secrets.io/v1` | holds | `swap.served-api-version` holds | ESO v0.16.2, Vault 1.17.2 |",
		"| C05-05 | the ExternalSecret shows `SecretSynced=True` | **does not hold** | `swap.condition-name` does not hold: conditions [Ready=True/SecretSynced] |",
		"| C05-06 | synced Secret has the same name and keys, so `DB_DSN` is unchanged (byte-identical) | — |  |  |",
		"`revert.secret-collected` holds<br>`upgrade.gc-after` does not hold: gone after 90s",
		"`swap.owner-reference` does not hold (check failed)",
		"| C05-99 | not in the ledger (not in the ledger) | holds |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if i, j := strings.Index(string(md), "| C05-03 |"), strings.Index(string(md), "| C05-05 |"); i < 0 || j < i {
		t.Error("report.md: the claims table is not ordered by id")
	}
	html, _ := os.ReadFile(filepath.Join(dir, HTMLFile))
	for _, want := range []string{"4 of 40 ledger claims have a verdict", `id="claim-C05-05"`, "does not hold", "SecretSynced=True", "ESO v0.16.2, Vault 1.17.2"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	junit, _ := os.ReadFile(filepath.Join(dir, JUnitFile))
	for _, want := range []string{`<property name="claims.coverage" value="4 of 40 ledger claims have a verdict">`, `<property name="claim.C05-05" value="does not hold">`} {
		if !strings.Contains(string(junit), want) {
			t.Errorf("junit.xml lacks %s", want)
		}
	}
	// rendered again from report.json, the table is the same
	out := t.TempDir()
	if err := Render(filepath.Join(dir, JSONFile), out); err != nil {
		t.Fatal(err)
	}
	if md2, _ := os.ReadFile(filepath.Join(out, MarkdownFile)); !bytes.Equal(md, md2) {
		t.Error("report.md differs when rendered from report.json")
	}
}
