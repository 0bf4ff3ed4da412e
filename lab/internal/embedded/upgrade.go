package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/secretslab/secretslab/internal/build"
	"github.com/secretslab/secretslab/internal/esoproc"
	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/internal/vaultproc"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/versions"
)

var _ lab.Upgrader = (*Lab)(nil)

// upgradeTimeout bounds each node's health after its restart on the new binary.
const upgradeTimeout = 2 * time.Minute

// Upgrade moves the running lab to to's versions in place, on the same Kubernetes, Vault
// storage and Postgres: ESO's CRDs applied server-side over the old ones and the controller
// restarted on the new binary; then, when Vault's version changes, each Raft node restarted
// on the new binary (standbys first, the active node last), unsealed, and healthy before the
// next. A dev-mode Vault holds its data in memory and is not rolled.
func (l *Lab) Upgrade(ctx context.Context, to lab.Upgrade) ([]lab.UpgradeStep, error) {
	var steps []lab.UpgradeStep
	step := func(what string, start time.Time) {
		steps = append(steps, lab.UpgradeStep{What: what, Took: time.Since(start)})
		l.say("upgrade: %s (%s)", what, time.Since(start).Round(100*time.Millisecond))
	}
	b := &build.Builder{CacheDir: l.opts.CacheDir, Progress: l.progress, IgnoreEnv: true}

	esoBin, crds, err := l.upgradeESOFiles(ctx, b, to)
	if err != nil {
		return steps, err
	}
	start := time.Now()
	if _, err := esoproc.InstallCRDsFrom(ctx, l.cp.RESTConfig(), crds); err != nil {
		return steps, fmt.Errorf("upgrade: ESO %s CRDs: %w", to.Versions.ESO, err)
	}
	step("ESO "+to.Versions.ESO+" CRDs applied server-side", start)
	start = time.Now()
	if err := l.eso.Stop(lab.StopGrace); err != nil {
		return steps, fmt.Errorf("upgrade: stop the ESO controller: %w", err)
	}
	l.eso = nil
	if l.eso, err = esoproc.Start(ctx, esoproc.Options{Binary: esoBin, Kubeconfig: l.cp.AdminKubeconfig(), LogDir: l.artifacts, Redact: l.secrets}); err != nil {
		return steps, fmt.Errorf("upgrade: start the ESO %s controller: %w", to.Versions.ESO, err)
	}
	step("ESO controller restarted on "+to.Versions.ESO, start)
	l.opts.Versions.ESO = to.Versions.ESO

	vs, err := l.vaultSteps(ctx, b, to)
	steps = append(steps, vs...)
	if err != nil {
		return steps, err
	}
	l.opts.Versions.Name += " -> " + to.Versions.Name
	return steps, nil
}

// upgradeESOFiles resolves the target ESO binary and CRDs: the ones given, else built from
// (and the CRDs of) the ESO module at the target version.
func (l *Lab) upgradeESOFiles(ctx context.Context, b *build.Builder, to lab.Upgrade) (bin, crds string, err error) {
	bin, crds = to.ESOBin, to.ESOCRDs
	if bin == "" {
		if bin, err = b.Ensure(ctx, "eso", to.Versions.ESO); err != nil {
			return "", "", fmt.Errorf("upgrade: ESO %s: %w", to.Versions.ESO, err)
		}
	}
	if crds == "" {
		dir, err := b.ModuleDir(ctx, esoproc.Module, to.Versions.ESO)
		if err != nil {
			return "", "", fmt.Errorf("upgrade: ESO %s CRDs: %w (give them as TO_ESO_CRDS)", to.Versions.ESO, err)
		}
		crds = dir + "/" + esoproc.CRDSubdir
	}
	return bin, crds, nil
}

// vaultSteps rolls Vault onto the target version, if it changes.
func (l *Lab) vaultSteps(ctx context.Context, b *build.Builder, to lab.Upgrade) ([]lab.UpgradeStep, error) {
	running, err := l.vault.Nodes()[0].Version(ctx)
	if err != nil {
		return nil, fmt.Errorf("upgrade: read Vault's version: %w", err)
	}
	want := versions.Trimmed(to.Versions.Vault)
	if running == want && to.VaultBin == "" {
		return []lab.UpgradeStep{{What: "Vault " + running, Skipped: "already at the target version: no roll"}}, nil
	}
	if l.opts.VaultMode != lab.VaultHA {
		return []lab.UpgradeStep{{What: "Vault " + running + " -> " + want,
			Skipped: "a dev-mode Vault keeps its data in memory: a restart would lose it, so it is not rolled (run with HA=1)"}}, nil
	}
	bin := to.VaultBin
	if bin == "" {
		if bin, err = b.Ensure(ctx, "vault", want); err != nil {
			return nil, fmt.Errorf("upgrade: Vault %s: %w", want, err)
		}
	}
	active, err := l.vault.Active(ctx)
	if err != nil {
		return nil, fmt.Errorf("upgrade: find the active Vault node: %w", err)
	}
	var order []*vaultproc.Node
	for _, n := range l.vault.Nodes() {
		if n != active {
			order = append(order, n)
		}
	}
	order = append(order, active) // standbys first, the active node last
	var steps []lab.UpgradeStep
	for _, n := range order {
		start := time.Now()
		role := "standby"
		if n == active {
			role = "active"
		}
		if err := n.Replace(ctx, bin, lab.StopGrace); err != nil {
			return steps, fmt.Errorf("upgrade: %w", err)
		}
		if err := n.Unseal(ctx); err != nil {
			return steps, fmt.Errorf("upgrade: %w", err)
		}
		if _, err := vaultops.WaitHealthyVoters(ctx, l.vault.Client(), len(l.vault.Nodes()), upgradeTimeout); err != nil {
			return steps, fmt.Errorf("upgrade: after restarting %s on Vault %s: %w", n.Name(), want, err)
		}
		what := fmt.Sprintf("Vault %s (%s) restarted on %s, unsealed, raft healthy", n.Name(), role, want)
		steps = append(steps, lab.UpgradeStep{What: what, Took: time.Since(start)})
		l.say("upgrade: %s (%s)", what, time.Since(start).Round(100*time.Millisecond))
	}
	l.opts.Versions.Vault = to.Versions.Vault
	return steps, nil
}
