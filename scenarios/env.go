package scenarios

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/lab"
)

// Env is what a scenario's checks work with: the lab, clients, timeouts, and the State that
// earlier scenarios hand on.
type Env struct {
	Lab      lab.Lab
	Kube     *kube.Client
	Out      io.Writer // progress lines (no secret values are ever written)
	Timeouts Timeouts
	State    State
	// UpgradeTo is the upgrade scenario's target (nil: that scenario is skipped).
	UpgradeTo *lab.Upgrade
	// AllowDisruptive lets scenarios that kill Vault nodes run on the cluster backend (on
	// kind and embedded the lab is the suite's own, and they always may).
	AllowDisruptive bool
	// Failovers is how many times the failover scenario kills the active node (default
	// DefaultFailovers; env FailoversEnv, CLI --failovers).
	Failovers int
	// Leases is how many dynamic leases the lease storm mints (default DefaultLeases; env
	// LeasesEnv, CLI --leases).
	Leases int

	runner *Runner
}

// State is what one scenario hands to the ones after it. Each field is set in exactly one
// place, named here; a scenario that reads a field Needs the scenario that sets it.
type State struct {
	// Demo is the demo Secret's data as the cluster stored it (set by baseline.State.Demo-secret).
	Demo map[string][]byte
	// Catalog is the running catalog workload (set by baseline.State.Catalog-serves).
	Catalog lab.Workload
	// ESVersion is the external-secrets.io version the fixtures are applied in (set by
	// swap.served-api-version, and by upgrade.in-place when the upgrade stops serving it;
	// until then the fixture's own version when served).
	ESVersion string
}

// Timeouts are the named waits of every scenario. Scale raises them all for a slow machine.
type Timeouts struct {
	Sync     time.Duration // an ExternalSecret or SecretStore to become Ready; a forced sync to land
	Gone     time.Duration // a deleted object (and what it owns) to disappear
	Serve    time.Duration // the catalog to answer /books
	Voters   time.Duration // the Raft configuration to list its voters
	Failover time.Duration // a new active Vault node after the active one was killed
	Rejoin   time.Duration // a restarted node to be a healthy voter again; a whole-cluster restart
	Revoke   time.Duration // revoked leases' Postgres roles to be dropped
	Cleanup  time.Duration // one deferred cleanup
	Login    time.Duration // one Postgres login and query
}

// DefaultTimeouts fit a 2-core machine.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Sync: 2 * time.Minute, Gone: time.Minute, Serve: time.Minute, Voters: 2 * time.Minute,
		Failover: 2 * time.Minute, Rejoin: 3 * time.Minute, Revoke: 2 * time.Minute, Cleanup: 3 * time.Minute,
		Login: 10 * time.Second,
	}
}

// Scale multiplies every timeout by f (f <= 0 leaves them as they are).
func (t Timeouts) Scale(f float64) Timeouts {
	if f <= 0 {
		return t
	}
	for _, d := range []*time.Duration{&t.Sync, &t.Gone, &t.Serve, &t.Voters, &t.Failover, &t.Rejoin, &t.Revoke, &t.Cleanup, &t.Login} {
		*d = time.Duration(float64(*d) * f)
	}
	return t
}

// TimeoutScaleEnv names the variable that scales every timeout (e.g. 2 on a slow machine).
const TimeoutScaleEnv = "TIMEOUT_SCALE"

// TimeoutScaleFromEnv reads TimeoutScaleEnv (1 when unset).
func TimeoutScaleFromEnv() (float64, error) {
	v := os.Getenv(TimeoutScaleEnv)
	if v == "" {
		return 1, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("%s=%q: want a number above 0", TimeoutScaleEnv, v)
	}
	return f, nil
}

// Sizes of the failover and lease-storm scenarios: CI-sized by default; `make bench` raises them.
const (
	DefaultFailovers = 3
	DefaultLeases    = 200
	FailoversEnv     = "FAILOVERS"
	LeasesEnv        = "LEASES"
)

// SizesFromEnv reads FailoversEnv and LeasesEnv (the defaults when unset).
func SizesFromEnv() (failovers, leases int, err error) {
	failovers, leases = DefaultFailovers, DefaultLeases
	for _, v := range []struct {
		name string
		to   *int
	}{{FailoversEnv, &failovers}, {LeasesEnv, &leases}} {
		s := os.Getenv(v.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, fmt.Errorf("%s=%q: want a whole number above 0", v.name, s)
		}
		*v.to = n
	}
	return failovers, leases, nil
}

// NewEnv prepares an Env for l with the default timeouts.
func NewEnv(l lab.Lab, out io.Writer) (*Env, error) {
	k, err := kube.New(l.RESTConfig())
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = io.Discard
	}
	return &Env{Lab: l, Kube: k, Out: out, Timeouts: DefaultTimeouts(), Failovers: DefaultFailovers, Leases: DefaultLeases}, nil
}

// CatalogURL is where the harness reaches the catalog ("" before baseline deployed it).
func (e *Env) CatalogURL() string {
	if e.State.Catalog == nil {
		return ""
	}
	return e.State.Catalog.URL()
}

// Defer registers a cleanup for the scenario whose check is running. Cleanups run after the
// scenario's last check whatever happened, newest first, each within e.Timeouts.Cleanup, and a
// failing one fails SCENARIO.teardown. Register a cleanup right after creating what it
// removes, and make it harmless when the scenario removed it already.
func (e *Env) Defer(what string, fn func(ctx context.Context) error) {
	if e.runner == nil {
		panic("Env.Defer needs a Runner")
	}
	e.runner.defer_(what, e.Timeouts.Cleanup, fn)
}

func (e *Env) say(format string, args ...any) {
	fmt.Fprintf(e.Out, format+"\n", args...)
}

// Requirement is something a scenario needs from the lab, with the reason given when it is
// missing.
type Requirement struct {
	Name string
	Met  func(e *Env) bool
	Why  string // what to do when it is missing
}

func (r Requirement) met(e *Env) (bool, string) {
	if r.Met(e) {
		return true, ""
	}
	return false, "needs " + r.Name + ": " + r.Why
}

// VaultHA is what the failover and lease-storm scenarios require.
var VaultHA = Requirement{
	Name: "Vault HA (3 Raft nodes)",
	Met:  func(e *Env) bool { return len(e.Lab.VaultNodes()) >= 3 },
	Why:  "run with HA=1 (lab up --ha, secretslab conformance --ha)",
}

// TransitSeal is what auto-unseal requires: an HA cluster sealed by a transit seal, with the
// KMS Vault the lab started.
var TransitSeal = Requirement{
	Name: "Vault HA auto-unsealed by a transit seal (a KMS Vault)",
	Met:  func(e *Env) bool { return lab.KMSOf(e.Lab) != nil },
	Why:  "run with VAULT_SEAL=transit HA=1 (lab up --ha --seal transit); embedded, or kind on a cluster the lab creates",
}

// AllowDisruptiveEnv names the variable that sets Env.AllowDisruptive (ALLOW_DISRUPTIVE=1).
const AllowDisruptiveEnv = "ALLOW_DISRUPTIVE"

// Disruptive is what scenarios that kill or restart Vault pods require: on someone else's
// cluster (the cluster backend) they run only when the user allows it.
var Disruptive = Requirement{
	Name: "leave to kill pods on this cluster",
	Met:  func(e *Env) bool { return e.Lab.Backend() != lab.BackendCluster || e.AllowDisruptive },
	Why:  "the cluster backend runs on a cluster the suite does not own; give --allow-disruptive (ALLOW_DISRUPTIVE=1) to kill and restart the run's Vault pods",
}
