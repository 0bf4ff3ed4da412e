package scenarios

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/reports"
)

// nodesLab is a fake lab with a given number of Vault nodes.
type nodesLab struct {
	fakeLab
	nodes int
}

func (n *nodesLab) VaultNodes() []lab.VaultNode { return make([]lab.VaultNode, n.nodes) }
func (n *nodesLab) Backend() string             { return "fake" }

func newTestRunner(nodes int, all ...Scenario) *Runner {
	e := &Env{Lab: &nodesLab{fakeLab: fakeLab{kube: fake.NewSimpleClientset()}, nodes: nodes}, Out: io.Discard, Timeouts: DefaultTimeouts()}
	return &Runner{Env: e, Scenarios: all}
}

// check returns a check that appends its id to log and fails with err.
func check(name string, log *[]string, err error) Check {
	return Check{Name: name, Title: name, Run: func(ctx context.Context, e *Env, r *Result) error {
		*log = append(*log, name)
		return err
	}}
}

func anyFailed(rn *Runner) bool {
	for _, c := range rn.Results {
		if c.Status == reports.Failed {
			return true
		}
	}
	return false
}

func statuses(rn *Runner) map[string]reports.Status {
	m := map[string]reports.Status{}
	for _, c := range rn.Results {
		m[c.ID] = c.Status
	}
	return m
}

func TestNeedsRunFirstInOrderAndOnce(t *testing.T) {
	var log []string
	a := Scenario{Name: "a", Checks: []Check{check("a1", &log, nil)}}
	b := Scenario{Name: "b", Needs: []string{"a"}, Checks: []Check{check("b1", &log, nil)}}
	c := Scenario{Name: "c", Needs: []string{"b", "a"}, Checks: []Check{check("c1", &log, nil)}}
	rn := newTestRunner(1, a, b, c)
	rn.RunScenario(context.Background(), c)
	rn.RunScenario(context.Background(), b) // already ran as a need: runs again only when asked directly
	if got := strings.Join(log, ","); got != "a1,b1,c1,b1" {
		t.Fatalf("order: %s", got)
	}
	if anyFailed(rn) {
		t.Fatalf("nothing failed: %+v", rn.Results)
	}
}

func TestAFailedNeedLeavesTheScenarioUnknownNotPassed(t *testing.T) {
	var log []string
	a := Scenario{Name: "a", Checks: []Check{check("a1", &log, errors.New("boom"))}}
	b := Scenario{Name: "b", Needs: []string{"a"}, Checks: []Check{check("b1", &log, nil)}}
	rn := newTestRunner(1, a, b)
	rn.RunScenario(context.Background(), b)
	st := statuses(rn)
	if st["a.a1"] != reports.Failed || st["b.b1"] != reports.Unknown {
		t.Fatalf("statuses %v", st)
	}
	if strings.Join(log, ",") != "a1" {
		t.Fatalf("b1 ran after its need failed: %v", log)
	}
}

func TestUnmetRequirementSkipsEveryCheckWithOneReasonAndRunsNothing(t *testing.T) {
	var log []string
	need := Scenario{Name: "need", Checks: []Check{check("n1", &log, nil)}}
	ha := Scenario{Name: "ha", Needs: []string{"need"}, Requires: []Requirement{VaultHA}, Checks: []Check{check("h1", &log, nil), check("h2", &log, nil)}}
	rn := newTestRunner(1, need, ha)
	rn.RunScenario(context.Background(), ha)
	if len(log) != 0 {
		t.Fatalf("ran %v although Vault HA is missing", log)
	}
	for _, c := range rn.Results {
		if c.Status != reports.Skipped || !strings.Contains(c.Message, "needs Vault HA") {
			t.Fatalf("%s: %s %q", c.ID, c.Status, c.Message)
		}
	}
	if len(rn.Results) != 2 || anyFailed(rn) {
		t.Fatalf("results %+v", rn.Results)
	}

	// with three nodes the same scenario runs
	rn = newTestRunner(3, need, ha)
	rn.RunScenario(context.Background(), ha)
	if strings.Join(log, ",") != "n1,h1,h2" {
		t.Fatalf("with HA: %v", log)
	}
}

func TestCleanupsRunAfterAFailureNewestFirstAndTheirErrorsFailTeardown(t *testing.T) {
	var log []string
	s := Scenario{Name: "s", Checks: []Check{
		{Name: "create", Run: func(ctx context.Context, e *Env, r *Result) error {
			e.Defer("remove first", func(context.Context) error { log = append(log, "remove first"); return nil })
			e.Defer("remove second", func(context.Context) error { log = append(log, "remove second"); return errors.New("still there") })
			return nil
		}},
		{Name: "breaks", Run: func(ctx context.Context, e *Env, r *Result) error {
			e.Defer("remove third", func(ctx context.Context) error {
				if ctx.Err() != nil {
					return errors.New("cleanup got a cancelled context")
				}
				log = append(log, "remove third")
				return nil
			})
			return errors.New("planted")
		}},
		check("never", &log, nil),
	}}
	rn := newTestRunner(1, s)
	ctx, cancel := context.WithCancel(context.Background())
	rn.Begin(ctx, s)
	for i := range s.Checks {
		rn.Step(ctx, s, i)
	}
	cancel() // an interrupted run still cleans up
	td := rn.Teardown(ctx, s)
	if got := strings.Join(log, ","); got != "remove third,remove second,remove first" {
		t.Fatalf("cleanup order: %s", got)
	}
	st := statuses(rn)
	if st["s.breaks"] != reports.Failed || st["s.never"] != reports.Unknown || st["s.teardown"] != reports.Failed {
		t.Fatalf("statuses %v", st)
	}
	if td == nil || !strings.Contains(td.Message, "remove second: still there") {
		t.Fatalf("teardown message: %+v", td)
	}
	if rn.Teardown(ctx, s) != nil {
		t.Fatal("cleanups ran twice")
	}
}

func TestACleanupIsBoundedByItsTimeout(t *testing.T) {
	s := Scenario{Name: "s", Checks: []Check{{Name: "c", Run: func(ctx context.Context, e *Env, r *Result) error {
		e.Defer("hang", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		return nil
	}}}}
	rn := newTestRunner(1, s)
	rn.Env.Timeouts.Cleanup = 50 * time.Millisecond
	start := time.Now()
	rn.RunScenario(context.Background(), s)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("teardown took %s", d)
	}
	if st := statuses(rn); st["s.teardown"] != reports.Failed {
		t.Fatalf("statuses %v", st)
	}
}

// A started scenario whose checks never ran still appears in full: unknown, never missing.
func TestCompleteReportsChecksThatNeverRanAsUnknown(t *testing.T) {
	rev := revert()
	rn := newTestRunner(1, rev)
	rn.init()
	rn.done["revert"] = true
	rn.record(verdict(rev, rev.Checks[0].Name, rev.Checks[0].Title, reports.Passed, ""))
	rn.Complete()
	if len(rn.Results) != len(rev.Checks) {
		t.Fatalf("%d results for %d checks", len(rn.Results), len(rev.Checks))
	}
	if rn.Results[0].Status != reports.Passed {
		t.Fatalf("the check that ran: %+v", rn.Results[0])
	}
	for _, c := range rn.Results[1:] {
		if c.Status != reports.Unknown {
			t.Fatalf("checks that never ran should be unknown: %+v", c)
		}
	}
}

func TestTimeoutsScale(t *testing.T) {
	d := DefaultTimeouts()
	if s := d.Scale(2); s.Sync != 2*d.Sync || s.Cleanup != 2*d.Cleanup {
		t.Fatalf("scaled %+v", s)
	}
	if d.Scale(0) != d {
		t.Fatal("scale 0 changed the timeouts")
	}
}

// Every scenario's checks have unique names and none is named like the teardown record.
func TestScenarioIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range All() {
		for _, c := range s.Checks {
			id := s.Name + "." + c.Name
			if seen[id] || c.Name == TeardownCheck {
				t.Fatalf("check id %s is taken", id)
			}
			seen[id] = true
		}
	}
}
