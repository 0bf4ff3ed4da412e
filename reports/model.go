// Package reports holds the conformance result model and writes it as JSON, JUnit XML,
// Markdown and a self-contained HTML page.
package reports

import (
	"time"
)

// SchemaVersion of report.json.
const SchemaVersion = 1

// Status of a check. A check that produced no result is Unknown, never Passed.
type Status string

const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
	Unknown Status = "unknown"
)

// Report is one conformance run.
type Report struct {
	SchemaVersion int       `json:"schemaVersion"`
	RunID         string    `json:"runId"`
	Backend       string    `json:"backend"`
	StartedAt     time.Time `json:"startedAt"`
	FinishedAt    time.Time `json:"finishedAt"`
	Versions      Versions  `json:"versions"`
	Checks        []Check   `json:"checks"`
	Summary       Summary   `json:"summary"`
	// Ledger is the claims ledger with this run's verdict on each claim; Write fills it.
	Ledger *Ledger `json:"ledger,omitempty"`
}

// Versions are what was running, read from the components.
type Versions struct {
	Set        string `json:"set,omitempty"` // the version set asked for (versions.yaml)
	Kubernetes string `json:"kubernetes"`
	Vault      string `json:"vault"`
	VaultChart string `json:"vaultChart"`
	ESO        string `json:"eso"`
	ESOChart   string `json:"esoChart"`
	Postgres   string `json:"postgres"`
}

// Check is one verdict, with a stable id SCENARIO.CHECK.
type Check struct {
	ID              string             `json:"id"`
	Scenario        string             `json:"scenario"`
	Title           string             `json:"title"`
	Status          Status             `json:"status"`
	DurationSeconds float64            `json:"durationSeconds"`
	Figures         map[string]float64 `json:"figures,omitempty"`
	Message         string             `json:"message,omitempty"`
	// Claims are the ledger claims (claims/ledger.md) the check observed, each with what it
	// found on the running versions. A claim that does not hold is a finding, not a failure:
	// the check's status says whether the check itself could run.
	Claims []Claim `json:"claims,omitempty"`
	// Series and Marks are measurements over time, drawn in report.html (pictures.go).
	Series []Series `json:"series,omitempty"`
	Marks  []Mark   `json:"marks,omitempty"`
}

// Claim is a check's verdict on one claim of the ledger.
type Claim struct {
	ID     string `json:"id"`               // the ledger id, e.g. "C05-05"
	Source string `json:"source,omitempty"` // the ledger's chapter and section, e.g. "ch05 §3"
	Text   string `json:"text"`             // the ledger's claim
	Holds  bool   `json:"holds"`
	// Detail is what this check observed, in its own words (never a secret value).
	Detail string `json:"detail,omitempty"`
	// Versions are the ESO and Vault versions running when the claim was observed, e.g.
	// "ESO v0.16.2, Vault 1.17.2" (an upgrade run observes claims on two sets).
	Versions string `json:"versions,omitempty"`
}

// Summary counts checks by status.
type Summary struct {
	Total   int `json:"total"`
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	Unknown int `json:"unknown"`
}

// Summarize recomputes r.Summary from r.Checks; a status outside the four counts as unknown.
func (r *Report) Summarize() {
	s := Summary{Total: len(r.Checks)}
	for i := range r.Checks {
		switch r.Checks[i].Status {
		case Passed:
			s.Passed++
		case Failed:
			s.Failed++
		case Skipped:
			s.Skipped++
		default:
			r.Checks[i].Status = Unknown
			s.Unknown++
		}
	}
	r.Summary = s
}
