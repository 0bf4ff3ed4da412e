package reports

import (
	"maps"
	"slices"
	"strconv"

	"github.com/secretslab/secretslab/claims"
)

// Verdict is a run's verdict on one ledger claim.
type Verdict string

const (
	Holds       Verdict = "holds"
	DoesNotHold Verdict = "does not hold"
	NoVerdict   Verdict = "no verdict"
)

// Ledger is the claims ledger with a run's verdicts: every claim of the ledger, ordered by id,
// then any claim a check recorded that the ledger does not list.
type Ledger struct {
	// Total is the number of claims in the ledger; WithVerdict how many of them a check of
	// this run observed (Hold + DoNotHold).
	Total       int           `json:"total"`
	WithVerdict int           `json:"withVerdict"`
	Hold        int           `json:"hold"`
	DoNotHold   int           `json:"doNotHold"`
	Claims      []LedgerClaim `json:"claims"`
}

// LedgerClaim is one claim with the run's verdict: DoesNotHold when any check that observed
// it found it false, Holds when every one found it true, NoVerdict when none observed it.
type LedgerClaim struct {
	ID           string        `json:"id"`
	Source       string        `json:"source"`
	Text         string        `json:"text"`
	Verdict      Verdict       `json:"verdict"`
	Observations []Observation `json:"observations,omitempty"`
	// NotInLedger marks a claim a check recorded that this secretslab's ledger does not list.
	NotInLedger bool `json:"notInLedger,omitempty"`
}

// Observation is one check's verdict on a claim.
type Observation struct {
	Check    string `json:"check"`
	Status   Status `json:"status"` // the check's own status
	Holds    bool   `json:"holds"`
	Detail   string `json:"detail,omitempty"`
	Versions string `json:"versions,omitempty"`
}

// Coverage is "N of M", the claims with a verdict out of the ledger's.
func (l *Ledger) Coverage() string {
	return strconv.Itoa(l.WithVerdict) + " of " + strconv.Itoa(l.Total)
}

// TallyClaims builds the ledger with the verdicts the checks recorded. Only a check that ran
// (passed or failed) counts: a claim it recorded is something it observed.
func TallyClaims(checks []Check) *Ledger {
	l := &Ledger{}
	index := map[string]int{}
	for _, c := range claims.All() {
		index[c.ID] = len(l.Claims)
		l.Claims = append(l.Claims, LedgerClaim{ID: c.ID, Source: c.Source(), Text: c.Text, Verdict: NoVerdict})
	}
	l.Total = len(l.Claims)
	extra := map[string]*LedgerClaim{}
	for _, c := range checks {
		if st := statusOf(c); st != Passed && st != Failed {
			continue
		}
		for _, cl := range c.Claims {
			var lc *LedgerClaim
			if i, ok := index[cl.ID]; ok {
				lc = &l.Claims[i]
			} else if lc = extra[cl.ID]; lc == nil {
				lc = &LedgerClaim{ID: cl.ID, Source: cl.Source, Text: cl.Text, Verdict: NoVerdict, NotInLedger: true}
				extra[cl.ID] = lc
			}
			lc.Observations = append(lc.Observations, Observation{Check: c.ID, Status: statusOf(c), Holds: cl.Holds, Detail: cl.Detail, Versions: cl.Versions})
			switch {
			case !cl.Holds:
				lc.Verdict = DoesNotHold
			case lc.Verdict == NoVerdict:
				lc.Verdict = Holds
			}
		}
	}
	for _, c := range l.Claims {
		switch c.Verdict {
		case Holds:
			l.Hold++
		case DoesNotHold:
			l.DoNotHold++
		}
	}
	l.WithVerdict = l.Hold + l.DoNotHold
	ids := slices.Sorted(maps.Keys(extra))
	for _, id := range ids {
		l.Claims = append(l.Claims, *extra[id])
	}
	return l
}

// ledgerOf is r's ledger: the one it carries (report.json written by Write), or tallied now.
func ledgerOf(r *Report) *Ledger {
	if r.Ledger != nil {
		return r.Ledger
	}
	return TallyClaims(r.Checks)
}
