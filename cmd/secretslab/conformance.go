package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/secretslab/secretslab/conformance"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/lab/backend"
	"github.com/secretslab/secretslab/scenarios"
)

// closeTimeout bounds closing the lab after a run, interrupted or not (the cluster backend
// removes what the run created and takes a second inventory).
const closeTimeout = 10 * time.Minute

// conformanceCmd: "secretslab conformance": bring a lab up, run the scenarios, write the
// report, bring the lab down. It exits non-zero when a check failed, and on SIGINT/SIGTERM
// stops the scenarios, runs their cleanups and closes the lab before it returns.
func conformanceCmd(ctx context.Context, args []string) error {
	var labels, out, artifacts, upgradeTo string
	allowDisruptive := os.Getenv(scenarios.AllowDisruptiveEnv) == "1"
	scale, err := scenarios.TimeoutScaleFromEnv()
	if err != nil {
		return err
	}
	failovers, leases, err := scenarios.SizesFromEnv()
	if err != nil {
		return err
	}
	f, err := parseFlags("conformance", "secretslab-conformance", args, func(fs *flag.FlagSet) {
		fs.StringVar(&labels, "labels", os.Getenv("LABELS"), `scenarios to run: "scenario=NAME[,NAME...]" (default: all) (env LABELS)`)
		fs.StringVar(&out, "out", envOr("REPORT_DIR", filepath.Join("reports", "out")), "directory for report.json, junit.xml, report.md, report.html (env REPORT_DIR)")
		fs.StringVar(&artifacts, "artifacts", os.Getenv("ARTIFACTS_DIR"), "component logs (default: OUT/artifacts) (env ARTIFACTS_DIR)")
		fs.Float64Var(&scale, "timeout-scale", scale, "multiply every scenario timeout, for slow machines (env TIMEOUT_SCALE)")
		fs.BoolVar(&allowDisruptive, "allow-disruptive", allowDisruptive, "cluster: also run the scenarios that kill the run's Vault pods (failover, lease-storm) (env ALLOW_DISRUPTIVE=1)")
		fs.IntVar(&failovers, "failovers", failovers, "HA: how many times the failover scenario kills the active Vault node (env FAILOVERS)")
		fs.IntVar(&leases, "leases", leases, "HA: how many dynamic leases the lease-storm scenario mints (env LEASES)")
		fs.StringVar(&upgradeTo, "upgrade-to", os.Getenv(conformance.UpgradeToEnv), "version set the upgrade scenario moves the lab to in place (env UPGRADE_TO; TO_ESO_BIN, TO_ESO_CRDS, TO_VAULT_BIN give its binaries)")
	})
	if err != nil {
		return err
	}
	if scale <= 0 {
		return fmt.Errorf("--timeout-scale %v: want a number above 0", scale)
	}
	if failovers < 1 || leases < 1 {
		return fmt.Errorf("--failovers %d, --leases %d: want numbers above 0", failovers, leases)
	}
	list, err := conformance.Select(labels)
	if err != nil {
		return err
	}
	if f.bookstoreBin == "" {
		return fmt.Errorf("conformance needs --bookstore-binary (make bookstore builds bin/bookstore)")
	}
	if err := f.absPaths(); err != nil {
		return err
	}
	if artifacts == "" {
		artifacts = filepath.Join(out, "artifacts")
	}
	name, err := f.resolve(ctx)
	if err != nil {
		return err
	}
	upgrade, err := conformance.Upgrade(upgradeTo, name)
	if err != nil {
		return err
	}
	if err := f.ensureBuilt(ctx, name); err != nil {
		return err
	}
	started := time.Now()
	fmt.Printf("conformance: bringing up a %s lab (Vault %s, version set %s)\n", name, f.vaultMode(), f.versions.Name)
	l, err := backend.Up(ctx, f.labOptions(name, artifacts))
	if err != nil {
		return fmt.Errorf("bring the lab up: %w", err)
	}
	fmt.Printf("conformance: lab up in %s (Kubernetes API %s, Vault %s); running %d scenarios and what they need\n",
		time.Since(started).Round(time.Second), l.RESTConfig().Host, l.VaultNodes()[0].Address(), len(list))
	runErr := runConformance(ctx, l, list, runSettings{scale: scale, upgrade: upgrade, allowDisruptive: allowDisruptive, failovers: failovers, leases: leases}, out, started)
	fmt.Println("conformance: closing the lab")
	cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	closeErr := l.Close(cctx)
	if closeErr != nil {
		closeErr = fmt.Errorf("close the lab: %s", l.Secrets().String(closeErr.Error()))
	}
	if ctx.Err() != nil {
		runErr = errors.Join(errors.New("interrupted"), runErr)
	}
	return errors.Join(runErr, closeErr)
}

// runSettings are the conformance flags that reach the scenarios' Env.
type runSettings struct {
	scale             float64
	upgrade           *lab.Upgrade
	allowDisruptive   bool
	failovers, leases int
}

func runConformance(ctx context.Context, l lab.Lab, list []scenarios.Scenario, s runSettings, out string, started time.Time) error {
	env, err := scenarios.NewEnv(l, os.Stdout)
	if err != nil {
		return err
	}
	env.Timeouts = env.Timeouts.Scale(s.scale)
	env.UpgradeTo = s.upgrade
	env.AllowDisruptive = s.allowDisruptive
	env.Failovers, env.Leases = s.failovers, s.leases
	rn := &scenarios.Runner{Env: env}
	conformance.Run(ctx, rn, list)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	r := conformance.Report(rctx, l, rn, started, os.Stderr)
	if err := conformance.Write(out, r, os.Stdout); err != nil {
		return err
	}
	if r.Summary.Failed > 0 {
		return fmt.Errorf("%d of %d checks failed (see %s)", r.Summary.Failed, r.Summary.Total, filepath.Join(out, "report.md"))
	}
	return nil
}
