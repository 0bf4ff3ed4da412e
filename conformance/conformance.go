// Package conformance runs the chapter scenarios on a lab and writes the conformance report.
// The CLI (`secretslab conformance`) and the e2e tests (`make conformance`) both use it, so a
// report means the same whichever wrote it.
package conformance

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/reports"
	"github.com/secretslab/secretslab/scenarios"
	"github.com/secretslab/secretslab/versions"
)

// UpgradeToEnv names the version set the upgrade scenario moves the lab to; TO_VAULT_VERSION
// and the like override its entries (as VAULT_VERSION does for the running set); TO_ESO_BIN,
// TO_VAULT_BIN (embedded), TO_ESO_CRDS, TO_VAULT_CHART and TO_ESO_CHART (kind: local charts)
// give its binaries, CRDs and charts.
const UpgradeToEnv = "UPGRADE_TO"

// Upgrade returns the upgrade target set (as backend sees it) with the binaries the
// environment gives for it, or nil when set is empty.
func Upgrade(set, backend string) (*lab.Upgrade, error) {
	if set == "" {
		return nil, nil
	}
	v, err := versions.Target(set, backend, "TO_")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", UpgradeToEnv, err)
	}
	return &lab.Upgrade{Versions: v, ESOBin: os.Getenv("TO_ESO_BIN"), VaultBin: os.Getenv("TO_VAULT_BIN"), ESOCRDs: os.Getenv("TO_ESO_CRDS"),
		VaultChart: os.Getenv("TO_VAULT_CHART"), ESOChart: os.Getenv("TO_ESO_CHART")}, nil
}

// Select returns the scenarios a label filter picks: "" for all, or
// "scenario=NAME[,scenario=NAME...]" (e2e-framework's --labels syntax; the CLI also takes
// "scenario=NAME,NAME"), in the order of scenarios.All().
func Select(labels string) ([]scenarios.Scenario, error) {
	all := scenarios.All()
	if strings.TrimSpace(labels) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		switch {
		case ok && k == "scenario":
			want[v] = true
		case !ok && len(want) > 0: // "scenario=a,b": b continues the list
			want[k] = true
		default:
			return nil, fmt.Errorf("labels %q: want scenario=NAME[,NAME...]", labels)
		}
	}
	var out []scenarios.Scenario
	for _, s := range all {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	for name := range want {
		_, err := scenarios.ByName(name)
		return nil, fmt.Errorf("labels %q: %w", labels, err)
	}
	return out, nil
}

// Run runs each scenario of list (and what it needs) on rn; it stops starting new scenarios
// once ctx is done (Report then lists what never ran as unknown).
func Run(ctx context.Context, rn *scenarios.Runner, list []scenarios.Scenario) {
	for _, s := range list {
		if ctx.Err() != nil {
			fmt.Fprintf(rn.Env.Out, "interrupted: scenario %s and the ones after it do not run\n", s.Name)
			break
		}
		rn.RunScenario(ctx, s)
	}
}

// Report assembles the report of what rn ran on l since started.
func Report(ctx context.Context, l lab.Lab, rn *scenarios.Runner, started time.Time, warn io.Writer) *reports.Report {
	rn.Complete()
	v, err := l.Versions(ctx)
	if err != nil && warn != nil {
		fmt.Fprintf(warn, "report: some versions could not be read: %s\n", l.Secrets().String(err.Error()))
	}
	r := &reports.Report{
		SchemaVersion: reports.SchemaVersion,
		RunID:         started.UTC().Format("20060102T150405Z"),
		Backend:       l.Backend(),
		StartedAt:     started,
		FinishedAt:    time.Now(),
		Versions: reports.Versions{Set: v.Set, Kubernetes: v.Kubernetes, Vault: v.Vault, VaultChart: v.VaultChart,
			ESO: v.ESO, ESOChart: v.ESOChart, Postgres: v.Postgres},
		Checks: rn.Results,
	}
	r.Summarize()
	return r
}

// Write writes the four report files to dir and prints one summary line on out.
func Write(dir string, r *reports.Report, out io.Writer) error {
	if err := reports.Write(dir, r); err != nil {
		return fmt.Errorf("write the report to %s: %w", dir, err)
	}
	fmt.Fprintf(out, "report: %d checks (%d passed, %d failed, %d skipped, %d unknown) written to %s\n",
		r.Summary.Total, r.Summary.Passed, r.Summary.Failed, r.Summary.Skipped, r.Summary.Unknown, dir)
	return nil
}
