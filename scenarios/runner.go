package scenarios

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/secretslab/secretslab/claims"
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
	Name  string
	Title string
	// Needs are scenarios that must have run first (run automatically when missing).
	Needs []string
	// Requires are what the lab must offer; when one is missing every check is reported
	// skipped with that requirement's reason, and nothing of the scenario runs.
	Requires []Requirement
	Checks   []Check
}

// Result collects what a check observed besides pass/fail.
type Result struct {
	figures  map[string]float64
	series   []reports.Series
	marks    []reports.Mark
	notes    []string
	claims   []reports.Claim
	claimErr error
	skipped  string
}

// Figure records a measured number.
func (r *Result) Figure(name string, v float64) {
	if r.figures == nil {
		r.figures = map[string]float64{}
	}
	r.figures[name] = v
}

// Series records a quantity measured over time (points: seconds since the series began,
// value), drawn in report.html; Mark names a moment on the same time axis.
func (r *Result) Series(name string, points [][2]float64) {
	r.series = append(r.series, reports.Series{Name: name, Points: points})
}

// Mark names a moment (seconds on the time axis of the check's series), e.g. a restart.
func (r *Result) Mark(name string, at float64) {
	r.marks = append(r.marks, reports.Mark{Name: name, At: at})
}

// Note adds to the check's message. Never pass a secret value.
func (r *Result) Note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// Claim records the check's verdict on claim id of the ledger (claims/ledger.md, e.g.
// "C05-05"): holds is what the check observed, detail how, in the check's own words (or "";
// never a secret value). The ledger supplies the claim's text; an id it does not list fails
// the check. A claim that does not hold is a finding, not a failure: whether the check fails
// is the check's own business.
func (r *Result) Claim(id string, holds bool, detail string) {
	c, ok := claims.Lookup(id)
	if !ok {
		r.claimErr = errors.Join(r.claimErr, fmt.Errorf("claim %q is not in the ledger (claims/ledger.md)", id))
		return
	}
	r.claims = append(r.claims, reports.Claim{ID: c.ID, Source: c.Source(), Text: c.Text, Holds: holds, Detail: detail})
}

// Skip marks the check skipped, saying why.
func (r *Result) Skip(why string) { r.skipped = why }

// TeardownCheck is the check name under which a scenario's deferred cleanups are reported
// (SCENARIO.teardown); it appears only for scenarios that registered a cleanup.
const TeardownCheck = "teardown"

// InterruptedCleanupTimeout bounds each cleanup when the run was interrupted.
const InterruptedCleanupTimeout = 10 * time.Second

// Runner runs scenarios on one Env and collects their verdicts.
type Runner struct {
	Env     *Env
	Results []reports.Check
	// OnCheck is called after each recorded check (e.g. to feed a test framework).
	OnCheck func(reports.Check)
	// Scenarios are those Needs are looked up in (default: All()).
	Scenarios []Scenario

	done     map[string]bool
	failed   map[string]bool
	stop     map[string]string    // scenario -> why its remaining checks do not run (unknown)
	skip     map[string]string    // scenario -> the requirement it lacks (its checks are skipped)
	cleanups map[string][]cleanup // scenario -> cleanups in the order they were registered
	current  string               // the scenario whose check runs now
}

type cleanup struct {
	what    string
	timeout time.Duration
	fn      func(context.Context) error
}

func (rn *Runner) init() {
	if rn.done == nil {
		rn.done, rn.failed, rn.cleanups = map[string]bool{}, map[string]bool{}, map[string][]cleanup{}
		rn.stop, rn.skip = map[string]string{}, map[string]string{}
	}
	rn.Env.runner = rn
}

// Ensure runs the scenarios named (and what they need) that have not run yet; it fails when
// one of them failed or was skipped.
func (rn *Runner) Ensure(ctx context.Context, names ...string) error {
	rn.init()
	for _, name := range names {
		if !rn.done[name] {
			s, err := rn.byName(name)
			if err != nil {
				return err
			}
			rn.RunScenario(ctx, s)
		}
		if rn.failed[name] {
			return fmt.Errorf("scenario %s, needed here, did not pass: %s", name, rn.stop[name])
		}
	}
	return nil
}

// RunScenario runs all of s's checks in order, then its cleanups.
func (rn *Runner) RunScenario(ctx context.Context, s Scenario) {
	rn.Begin(ctx, s)
	for i := range s.Checks {
		rn.Step(ctx, s, i)
	}
	rn.Teardown(ctx, s)
}

// Begin marks s as started, checks its requirements and runs what it needs. A test framework
// calls Begin once, Step for each check in order, then Teardown.
func (rn *Runner) Begin(ctx context.Context, s Scenario) {
	rn.init()
	rn.done[s.Name] = true
	for _, req := range s.Requires {
		if ok, why := req.met(rn.Env); !ok {
			rn.skip[s.Name] = why
			rn.stop[s.Name] = "skipped: " + why
			rn.failed[s.Name] = true // a scenario that needs it cannot rely on it
			rn.Env.say("scenario %s: skipped: %s", s.Name, why)
			return
		}
	}
	if err := rn.Ensure(ctx, s.Needs...); err != nil {
		rn.stop[s.Name] = "not run: " + err.Error()
		rn.failed[s.Name] = true
		return
	}
	rn.Env.say("scenario %s: %s", s.Name, s.Title)
}

// Step runs check i of s. When s's requirements are missing it is skipped; when an earlier
// check of s failed it is reported unknown.
func (rn *Runner) Step(ctx context.Context, s Scenario, i int) reports.Check {
	rn.init()
	c := s.Checks[i]
	var rc reports.Check
	switch {
	case rn.skip[s.Name] != "":
		rc = verdict(s, c.Name, c.Title, reports.Skipped, rn.skip[s.Name])
	case rn.stop[s.Name] != "":
		rc = verdict(s, c.Name, c.Title, reports.Unknown, rn.stop[s.Name])
	default:
		rn.current = s.Name
		rc = runCheck(ctx, rn.Env, s, c)
		rn.current = ""
		if rc.Status == reports.Failed {
			rn.stop[s.Name] = "not run: " + rc.ID + " failed"
			rn.failed[s.Name] = true
		}
	}
	rn.record(rc)
	return rc
}

// Teardown runs the cleanups s registered, newest first, each with its own timeout, even when
// ctx is done (an interrupted run still cleans up). It records SCENARIO.teardown: failed with
// every cleanup's error, or passed naming what ran. Without cleanups it records nothing.
func (rn *Runner) Teardown(ctx context.Context, s Scenario) *reports.Check {
	rn.init()
	list := rn.cleanups[s.Name]
	delete(rn.cleanups, s.Name)
	if len(list) == 0 {
		return nil
	}
	start := time.Now()
	var ran, errs []string
	for i := len(list) - 1; i >= 0; i-- {
		c := list[i]
		timeout := c.timeout
		if ctx.Err() != nil && timeout > InterruptedCleanupTimeout {
			timeout = InterruptedCleanupTimeout // interrupted: the user waits
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		err := runCleanup(cctx, c)
		cancel()
		ran = append(ran, c.what)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", c.what, err))
		}
	}
	rc := verdict(s, TeardownCheck, "the scenario's cleanups ran, newest first", reports.Passed, "ran: "+strings.Join(ran, "; "))
	if len(errs) > 0 {
		rc.Status, rc.Message = reports.Failed, "cleanup failed: "+strings.Join(errs, "; ")
		rn.failed[s.Name] = true
	}
	rc.DurationSeconds = time.Since(start).Seconds()
	rc.Message = rn.Env.Lab.Secrets().String(rc.Message)
	rn.record(rc)
	return &rc
}

func runCleanup(ctx context.Context, c cleanup) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.fn(ctx)
}

// Complete adds every check of a started scenario that has no result as unknown, so that
// nothing that should have run is missing from a report.
func (rn *Runner) Complete() {
	rn.init()
	have := map[string]bool{}
	for _, c := range rn.Results {
		have[c.ID] = true
	}
	var started []string
	for name := range rn.done {
		started = append(started, name)
	}
	sort.Strings(started)
	for _, name := range started {
		s, err := rn.byName(name)
		if err != nil {
			continue // run directly with RunScenario, not one of rn.Scenarios
		}
		for _, c := range s.Checks {
			if id := s.Name + "." + c.Name; !have[id] {
				rn.Results = append(rn.Results, verdict(s, c.Name, c.Title, reports.Unknown, "no result: the check never ran"))
			}
		}
	}
}

func (rn *Runner) byName(name string) (Scenario, error) {
	if rn.Scenarios == nil {
		return ByName(name)
	}
	for _, s := range rn.Scenarios {
		if s.Name == name {
			return s, nil
		}
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q", name)
}

func (rn *Runner) record(c reports.Check) {
	rn.Env.say("  %-8s %s (%.1fs) %s", c.Status, c.ID, c.DurationSeconds, c.Message)
	rn.Results = append(rn.Results, c)
	if rn.OnCheck != nil {
		rn.OnCheck(c)
	}
}

func (rn *Runner) defer_(what string, timeout time.Duration, fn func(context.Context) error) {
	if rn.current == "" {
		panic("Env.Defer called outside a check")
	}
	rn.cleanups[rn.current] = append(rn.cleanups[rn.current], cleanup{what: what, timeout: timeout, fn: fn})
}

func verdict(s Scenario, check, title string, status reports.Status, msg string) reports.Check {
	return reports.Check{ID: s.Name + "." + check, Scenario: s.Name, Title: title, Status: status, Message: msg}
}

// claimVersions names the ESO and Vault versions running now, e.g. "ESO v0.16.2, Vault
// 1.17.2", for the claims a check recorded ("" when neither can be read).
func (e *Env) claimVersions(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	v, _ := e.Lab.Versions(ctx) // what could be read; the report's own versions say the rest
	var parts []string
	if v.ESO != "" {
		parts = append(parts, "ESO "+v.ESO)
	}
	if v.Vault != "" {
		parts = append(parts, "Vault "+v.Vault)
	}
	return strings.Join(parts, ", ")
}

func runCheck(ctx context.Context, e *Env, s Scenario, c Check) (rc reports.Check) {
	rc = verdict(s, c.Name, c.Title, reports.Unknown, "")
	var r Result
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			rc.Status, rc.Message = reports.Failed, fmt.Sprintf("panic: %v", p)
		}
		rc.DurationSeconds = time.Since(start).Seconds()
		rc.Figures = r.figures
		rc.Series, rc.Marks = r.series, r.marks
		rc.Message = e.Lab.Secrets().String(rc.Message)
	}()
	err := c.Run(ctx, e, &r)
	if len(r.claims) > 0 {
		versions := e.claimVersions(ctx)
		for i := range r.claims {
			r.claims[i].Detail = e.Lab.Secrets().String(r.claims[i].Detail)
			r.claims[i].Versions = versions
		}
		rc.Claims = r.claims
	}
	if r.claimErr != nil {
		err = errors.Join(err, r.claimErr)
	}
	msg := strings.Join(r.notes, "; ")
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
