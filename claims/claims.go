// Package claims is the claims ledger: the testable claims of the course chapters the suite is
// built from (chapter 05 and chapter 15.05), each with a stable id such as C05-04. The ledger is
// ledger.md in this directory, embedded in the binary; a check that observes a claim records
// its id and what it found (scenarios.Result.Claim), and the report lists the ledger with the
// verdicts of a run.
package claims

import (
	_ "embed"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

//go:embed ledger.md
var ledgerSource string

// Claim is one row of the ledger.
type Claim struct {
	ID      string `json:"id"`      // e.g. C05-04
	Chapter string `json:"chapter"` // e.g. ch05, ch15.05
	Section string `json:"section"` // e.g. §3
	Text    string `json:"text"`    // the claim, a short quote or paraphrase
}

// Source is the chapter and section, e.g. "ch05 §3".
func (c Claim) Source() string { return strings.TrimSpace(c.Chapter + " " + c.Section) }

// idPattern is a ledger id: C, the chapter's two digits, a dash, two digits.
var idPattern = regexp.MustCompile(`^C\d{2}-\d{2}$`)

// chapters maps an id's prefix to the chapter it belongs to.
var chapters = map[string]string{"C05": "ch05", "C15": "ch15.05"}

var (
	once   sync.Once
	ledger []Claim
	byID   map[string]Claim
	perr   error
)

func load() {
	ledger, perr = Parse(ledgerSource)
	byID = map[string]Claim{}
	for _, c := range ledger {
		byID[c.ID] = c
	}
}

// All returns the ledger's claims ordered by id. It panics if the embedded ledger does not
// parse (a unit test keeps it parsing).
func All() []Claim {
	once.Do(load)
	if perr != nil {
		panic(perr)
	}
	return append([]Claim(nil), ledger...)
}

// Lookup returns the claim with id.
func Lookup(id string) (Claim, bool) {
	once.Do(load)
	if perr != nil {
		panic(perr)
	}
	c, ok := byID[id]
	return c, ok
}

// Parse reads a ledger: every Markdown table row whose first cell is an id (C05-01) is a
// claim, with the section and the claim text in the next two cells (`\|` is a literal pipe).
// Other lines are prose. Ids must be well formed, of a known chapter and unique; the claims
// are returned ordered by id.
func Parse(src string) ([]Claim, error) {
	var out []Claim
	seen := map[string]bool{}
	for n, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "| C") {
			continue
		}
		cells := splitRow(line)
		if len(cells) < 3 {
			return nil, fmt.Errorf("ledger line %d: want | id | section | claim |, got %d cells", n+1, len(cells))
		}
		id := cells[0]
		if !idPattern.MatchString(id) {
			return nil, fmt.Errorf("ledger line %d: %q is not an id like C05-01", n+1, id)
		}
		chapter, ok := chapters[id[:3]]
		if !ok {
			return nil, fmt.Errorf("ledger line %d: %s is of no known chapter", n+1, id)
		}
		if seen[id] {
			return nil, fmt.Errorf("ledger line %d: %s is listed twice", n+1, id)
		}
		if cells[2] == "" {
			return nil, fmt.Errorf("ledger line %d: %s has no claim text", n+1, id)
		}
		seen[id] = true
		out = append(out, Claim{ID: id, Chapter: chapter, Section: cells[1], Text: cells[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the ledger lists no claim")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// splitRow splits a Markdown table row into its trimmed cells; `\|` is a pipe inside a cell.
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}
