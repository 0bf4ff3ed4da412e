package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/reports"
	"github.com/secretslab/secretslab/scenarios"
)

type runnerKey struct{}

var (
	reportDir string
	runner    *scenarios.Runner
	startedAt time.Time
)

// TestConformance turns each scenario into a feature labelled scenario=NAME (filter with
// -args --labels scenario=swap); every check is one step; the verdicts feed the report.
func TestConformance(t *testing.T) {
	for _, s := range scenarios.All() {
		s := s
		f := features.New(s.Name).WithLabel("scenario", s.Name).
			Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				runner.Begin(ctx, s)
				return ctx
			})
		for i, c := range s.Checks {
			i := i
			f = f.Assess(s.Name+"."+c.Name+": "+c.Title, func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
				rc := runner.Step(ctx, s, i)
				switch rc.Status {
				case reports.Failed:
					t.Fatalf("%s: %s", rc.ID, rc.Message)
				case reports.Unknown:
					t.Fatalf("%s produced no result: %s", rc.ID, rc.Message)
				case reports.Skipped:
					runner.SkipRemaining(s, i, rc.Message) // the framework skips the feature's remaining steps
					t.Skip(rc.Message)
				}
				if rc.Claim != nil {
					t.Logf("course claim (%s) %q holds: %t", rc.Claim.Source, rc.Claim.Text, rc.Claim.Holds)
				}
				return ctx
			})
		}
		f = f.Teardown(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			if rc := runner.Teardown(ctx, s); rc != nil && rc.Status == reports.Failed {
				t.Errorf("%s: %s", rc.ID, rc.Message)
			}
			return ctx
		})
		// one subtest per feature: e2e-framework skips the rest of a Test call at the first
		// feature whose labels do not match
		feature := f.Feature()
		t.Run(s.Name, func(t *testing.T) { testenv.Test(t, feature) })
	}
}

// prepareRunner is a Setup step: the scenario runner on the lab.
func prepareRunner(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	env, err := scenarios.NewEnv(labFrom(ctx), os.Stdout)
	if err != nil {
		return ctx, err
	}
	runner = &scenarios.Runner{Env: env}
	startedAt = time.Now()
	return ctx, nil
}

// writeReport is a Finish step: the conformance report of what ran, before the lab goes.
func writeReport(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	if runner == nil || len(runner.Results) == 0 {
		return ctx, nil
	}
	runner.Complete()
	l := labFrom(ctx)
	v, err := l.Versions(ctx)
	if err != nil {
		fmt.Printf("report: some versions could not be read: %v\n", err)
	}
	dir := os.Getenv("REPORT_DIR")
	if dir == "" {
		dir = "../reports/out"
	}
	reportDir = dir
	r := &reports.Report{
		SchemaVersion: reports.SchemaVersion,
		RunID:         startedAt.UTC().Format("20060102T150405Z"),
		Backend:       l.Backend(),
		StartedAt:     startedAt,
		FinishedAt:    time.Now(),
		Versions:      reportVersions(v),
		Checks:        runner.Results,
	}
	if err := reports.Write(dir, r); err != nil {
		return ctx, err
	}
	fmt.Printf("report: %d checks (%d passed, %d failed, %d skipped, %d unknown) written to %s\n",
		r.Summary.Total, r.Summary.Passed, r.Summary.Failed, r.Summary.Skipped, r.Summary.Unknown, dir)
	return ctx, nil
}

func reportVersions(v lab.Versions) reports.Versions {
	return reports.Versions{Kubernetes: v.Kubernetes, Vault: v.Vault, VaultChart: v.VaultChart, ESO: v.ESO, ESOChart: v.ESOChart, Postgres: v.Postgres}
}
