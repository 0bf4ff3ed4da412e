// Package scenarios turns the chapters' hands-on steps into checks that run unattended on
// any lab backend. A scenario is a named sequence of checks with stable ids SCENARIO.CHECK;
// a check that never ran is reported unknown, never passed.
package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/reports"
)

// Check is one step of a scenario with a verdict.
type Check struct {
	Name  string // the part after "SCENARIO."
	Title string
	Run   func(ctx context.Context, e *Env, r *Result) error
}

// Scenario is a named sequence of checks.
type Scenario struct {
	Name   string
	Title  string
	Needs  []string // scenarios that must have run first (run automatically when missing)
	Checks []Check
}

// Result collects what a check observed besides pass/fail.
type Result struct {
	figures map[string]float64
	notes   []string
	claim   *reports.Claim
	skipped string
}

// Figure records a measured number.
func (r *Result) Figure(name string, v float64) {
	if r.figures == nil {
		r.figures = map[string]float64{}
	}
	r.figures[name] = v
}

// Note adds to the check's message. Never pass a secret value.
func (r *Result) Note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// Claim records what the check found about a course claim.
func (r *Result) Claim(source, text string, holds bool) {
	r.claim = &reports.Claim{Source: source, Text: text, Holds: holds}
}

// Skip marks the check skipped, saying why.
func (r *Result) Skip(why string) { r.skipped = why }

// Env is what scenarios share: the lab, clients, and the state earlier scenarios leave.
type Env struct {
	Lab  lab.Lab
	Kube *kube.Client
	Out  io.Writer // progress lines (no secret values are ever written)

	done      map[string]bool
	failed    map[string]bool
	demo      map[string][]byte // the demo Secret's data as the cluster stored it
	catalog   lab.Workload
	esVersion string // the external-secrets.io version fixtures are applied in
}

// NewEnv prepares an Env for l.
func NewEnv(l lab.Lab, out io.Writer) (*Env, error) {
	k, err := kube.New(l.RESTConfig())
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = io.Discard
	}
	return &Env{Lab: l, Kube: k, Out: out, done: map[string]bool{}, failed: map[string]bool{}}, nil
}

// CatalogURL is where the harness reaches the catalog ("" before baseline deployed it).
func (e *Env) CatalogURL() string {
	if e.catalog == nil {
		return ""
	}
	return e.catalog.URL()
}

func (e *Env) say(format string, args ...any) {
	fmt.Fprintf(e.Out, format+"\n", args...)
}

// All lists the scenarios in the order the chapters take them.
func All() []Scenario {
	return []Scenario{baseline(), vaultConfig(), swap(), revert(), dynamic(), rotation(), failover(), leaseStorm()}
}

// ByName finds a scenario.
func ByName(name string) (Scenario, error) {
	var names []string
	for _, s := range All() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return Scenario{}, fmt.Errorf("unknown scenario %q (have %v)", name, names)
}

// Runner runs checks and collects their verdicts.
type Runner struct {
	Env     *Env
	Results []reports.Check
	// OnCheck is called after each check (e.g. to feed a test framework).
	OnCheck func(reports.Check)

	stop map[string]string // scenario -> why its remaining checks do not run
}

// Ensure runs the scenarios named (and what they need) that have not run yet.
func (rn *Runner) Ensure(ctx context.Context, names ...string) error {
	for _, name := range names {
		if rn.Env.done[name] {
			if rn.Env.failed[name] {
				return fmt.Errorf("scenario %s, needed here, failed earlier", name)
			}
			continue
		}
		s, err := ByName(name)
		if err != nil {
			return err
		}
		if err := rn.Ensure(ctx, s.Needs...); err != nil {
			return err
		}
		rn.RunScenario(ctx, s)
		if rn.Env.failed[name] {
			return fmt.Errorf("scenario %s, needed here, failed", name)
		}
	}
	return nil
}

// RunScenario runs all of s's checks in order.
func (rn *Runner) RunScenario(ctx context.Context, s Scenario) {
	rn.Begin(ctx, s)
	for i := range s.Checks {
		rn.Step(ctx, s, i)
	}
}

// Begin marks s as started and runs what it needs. A test framework calls Begin once, then
// Step for each check in order.
func (rn *Runner) Begin(ctx context.Context, s Scenario) {
	rn.Env.done[s.Name] = true
	if rn.stop == nil {
		rn.stop = map[string]string{}
	}
	if err := rn.Ensure(ctx, s.Needs...); err != nil {
		rn.stop[s.Name] = "not run: " + err.Error()
		rn.Env.failed[s.Name] = true
		return
	}
	rn.Env.say("scenario %s: %s", s.Name, s.Title)
}

// Step runs check i of s, or reports it unknown when an earlier check of s failed.
func (rn *Runner) Step(ctx context.Context, s Scenario, i int) reports.Check {
	c := s.Checks[i]
	var rc reports.Check
	if why := rn.stop[s.Name]; why != "" {
		rc = notRun(s, c, why)
	} else {
		rc = runCheck(ctx, rn.Env, s, c)
		if rc.Status == reports.Failed {
			rn.stop[s.Name] = "not run: " + rc.ID + " failed"
			rn.Env.failed[s.Name] = true
		}
	}
	rn.record(rc)
	return rc
}

// SkipRemaining records the checks of s after index i as skipped for why (a test framework
// that stops a feature at its first skipped step calls this first).
func (rn *Runner) SkipRemaining(s Scenario, i int, why string) {
	for _, c := range s.Checks[i+1:] {
		rn.record(reports.Check{ID: s.Name + "." + c.Name, Scenario: s.Name, Title: c.Title, Status: reports.Skipped, Message: why})
	}
}

// Complete adds every check of a started scenario that has no result as unknown, so that
// nothing that should have run is missing from a report.
func (rn *Runner) Complete() {
	have := map[string]bool{}
	for _, c := range rn.Results {
		have[c.ID] = true
	}
	for _, s := range All() {
		if !rn.Env.done[s.Name] {
			continue
		}
		for _, c := range s.Checks {
			if id := s.Name + "." + c.Name; !have[id] {
				rn.Results = append(rn.Results, notRun(s, c, "no result: the check never ran"))
			}
		}
	}
}

func (rn *Runner) record(c reports.Check) {
	rn.Env.say("  %-8s %s (%.1fs) %s", c.Status, c.ID, c.DurationSeconds, c.Message)
	rn.Results = append(rn.Results, c)
	if rn.OnCheck != nil {
		rn.OnCheck(c)
	}
}

func notRun(s Scenario, c Check, why string) reports.Check {
	return reports.Check{ID: s.Name + "." + c.Name, Scenario: s.Name, Title: c.Title, Status: reports.Unknown, Message: why}
}

func runCheck(ctx context.Context, e *Env, s Scenario, c Check) (rc reports.Check) {
	rc = reports.Check{ID: s.Name + "." + c.Name, Scenario: s.Name, Title: c.Title, Status: reports.Unknown}
	var r Result
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			rc.Status, rc.Message = reports.Failed, fmt.Sprintf("panic: %v", p)
		}
		rc.DurationSeconds = time.Since(start).Seconds()
		rc.Figures, rc.Claim = r.figures, r.claim
		rc.Message = e.Lab.Secrets().String(rc.Message)
	}()
	err := c.Run(ctx, e, &r)
	msg := joinNotes(r.notes)
	switch {
	case err != nil:
		rc.Status = reports.Failed
		rc.Message = err.Error()
		if msg != "" {
			rc.Message += "; " + msg
		}
	case r.skipped != "":
		rc.Status, rc.Message = reports.Skipped, r.skipped
	default:
		rc.Status, rc.Message = reports.Passed, msg
	}
	return rc
}

func joinNotes(notes []string) string {
	out := ""
	for i, n := range notes {
		if i > 0 {
			out += "; "
		}
		out += n
	}
	return out
}

var errNoCatalog = errors.New("the catalog is not running (baseline did not complete)")
