package scenarios

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/lab"
)

const (
	failoverProbe  = "failover-probe"  // force-synced through each failover
	failoverSteady = "failover-steady" // synced before, never touched: must stay as it is
	// failoverResync is how often the ESO probe re-annotates the probe with force-sync while
	// the change has not arrived (each annotation is a fresh reconcile, whatever ESO's
	// backoff after the errors it met).
	failoverResync = 2 * time.Second
	// failoverWriteAttempt bounds one KV write of the first-write probe.
	failoverWriteAttempt = 3 * time.Second
)

// killRound is what one kill of the active node measured (seconds since the kill).
type killRound struct {
	Killed     string
	NewActive  float64 // another node reports active
	FirstWrite float64 // a KV write through the lab's client succeeds
	ESOWindow  float64 // a change force-synced from the kill on reaches the Secret
	ESOErrors  int     // ESO's Warning events on the probe during the round (their counts)
	Resyncs    int     // force-sync annotations the probe needed
	Rejoin     float64 // seconds from the sync to the killed node being a healthy voter again
}

// failover: chapter 15.05, Vault HA. Kill the active node K times (Env.Failovers): each time a
// new one is active (the chapter: "<30s"), a KV write succeeds, ESO syncs a changed value
// through the new active node (the window in which it cannot, against the chapter's "~30s of
// HTTP errors"), the killed node comes back and rejoins; Secrets ESO synced before are not
// touched across all of it.
func failover() Scenario {
	var rounds []killRound
	var before map[string]string // Secret name -> resourceVersion, before the first kill
	return Scenario{Name: "failover", Title: "Vault HA (Raft, 3 nodes): kill the active node K times; a new one takes over; ESO recovers; synced Secrets untouched",
		Needs: []string{"vault-config"}, Requires: []Requirement{VaultHA, Disruptive}, Checks: []Check{
			{"three-voters", "the Raft configuration lists 3 voters", func(ctx context.Context, e *Env, r *Result) error {
				rc, err := vaultops.WaitVoters(ctx, e.Lab.Vault(), 3, e.Timeouts.Voters)
				if err != nil {
					return err
				}
				r.Note("voters %v", rc.Voters())
				// what `vault status` shows on each node (the chapter's §0)
				nodes := e.Lab.VaultNodes()
				unsealed, ha, active := 0, 0, 0
				for _, n := range nodes {
					st, err := n.Client().Sys().SealStatusWithContext(ctx)
					if err != nil {
						return fmt.Errorf("%s: %w", n.Name(), err)
					}
					l, err := n.Client().Sys().LeaderWithContext(ctx)
					if err != nil {
						return fmt.Errorf("%s: %w", n.Name(), err)
					}
					if !st.Sealed {
						unsealed++
					}
					if l.HAEnabled {
						ha++
					}
					if l.IsSelf {
						active++
					}
				}
				r.Claim("C15-01", unsealed == len(nodes) && ha == len(nodes) && active == 1 && len(rc.Voters()) == 3,
					fmt.Sprintf("%d of %d nodes unsealed, %d with HA enabled, %d active; %d Raft voters", unsealed, len(nodes), ha, active, len(rc.Voters())))
				return nil
			}},
			{"raft-timing", "which Raft performance_multiplier the nodes run with", func(ctx context.Context, e *Env, r *Result) error {
				rt, ok := e.Lab.(lab.RaftTiming)
				if !ok {
					r.Skip("the " + e.Lab.Backend() + " backend cannot say which performance_multiplier its Vault runs with")
					return nil
				}
				m, how, err := rt.RaftPerformanceMultiplier(ctx)
				if err != nil {
					return err
				}
				r.Figure("raft-performance-multiplier", float64(m))
				r.Note("performance_multiplier %d: %s", m, how)
				return nil
			}},
			{"eso-synced", "two probe ExternalSecrets are synced; the Secrets ESO synced are recorded (resourceVersion)", func(ctx context.Context, e *Env, r *Result) error {
				for _, name := range []string{failoverSteady, failoverProbe} {
					name := name
					if err := e.applyProbe(ctx, name, "delete the probe ExternalSecret "+name, func(ctx context.Context) error { return e.deleteProbe(ctx, name) }); err != nil {
						return err
					}
				}
				var err error
				if before, err = e.esoSecretVersions(ctx, failoverProbe); err != nil {
					return err
				}
				if _, ok := before[failoverSteady]; !ok {
					return fmt.Errorf("Secret %s, synced by ESO, is not among ESO's Secrets %v", failoverSteady, sortedKeys(before))
				}
				r.Figure("synced-secrets", float64(len(before)))
				r.Note("Secrets synced by ESO, watched across the failovers: %s", strings.Join(sortedKeys(before), ", "))
				return nil
			}},
			{"kills", "K times: kill the active node; another becomes active, a KV write succeeds, ESO syncs a change through the new active node; the killed node rejoins", func(ctx context.Context, e *Env, r *Result) error {
				mount, path, _, err := kvTarget()
				if err != nil {
					return err
				}
				old, err := e.Lab.Vault().KVv2(mount).Get(ctx, path)
				if err != nil {
					return err
				}
				e.Defer("put the demo's value back at "+mount+"/"+path, func(ctx context.Context) error {
					_, err := e.Lab.Vault().KVv2(mount).Put(ctx, path, old.Data)
					return err
				})
				writePath := "secretslab-failover-write"
				e.Defer("delete "+mount+"/"+writePath, func(ctx context.Context) error {
					return e.Lab.Vault().KVv2(mount).DeleteMetadata(ctx, writePath)
				})
				probe, err := e.rotationProbe(ctx, failoverProbe)
				if err != nil {
					return err
				}
				if km, ok := e.Lab.VaultNodes()[0].(lab.KillMethod); ok {
					r.Note("kill: %s", km.KillMethod())
				}
				for k := 1; k <= e.Failovers; k++ {
					// the change ESO is to carry through the failover: in Vault before the kill
					value := randomSecret("failover")
					e.Lab.Secrets().Add(value)
					data := maps.Clone(old.Data)
					data["POSTGRES_PASSWORD"] = value
					if _, err := e.Lab.Vault().KVv2(mount).Put(ctx, path, data); err != nil {
						return fmt.Errorf("kill %d: put the changed value: %w", k, err)
					}
					round, err := e.killActive(ctx, k, probe, []byte(value), mount, writePath)
					if round.Killed != "" {
						rounds = append(rounds, round)
						p := fmt.Sprintf("kill%d-", k)
						r.Figure(p+"new-active-seconds", round.NewActive)
						r.Figure(p+"first-write-seconds", round.FirstWrite)
						r.Figure(p+"eso-error-window-seconds", round.ESOWindow)
						r.Figure(p+"eso-errors", float64(round.ESOErrors))
						r.Figure(p+"rejoin-seconds", round.Rejoin)
						r.Note("kill %d (%s): new active %.1fs, first write %.1fs, ESO synced the change %.1fs after the kill (%d ESO errors, %d force-syncs), rejoined %.1fs later",
							k, round.Killed, round.NewActive, round.FirstWrite, round.ESOWindow, round.ESOErrors, round.Resyncs, round.Rejoin)
						if round.FirstWrite > 0 && round.FirstWrite+failoverWriteAttempt.Seconds() < round.NewActive {
							r.Note("kill %d: a write succeeded %.1fs before another node reported active: the killed node was still leading (see the kill method)", k, round.NewActive-round.FirstWrite)
						}
					}
					if err != nil {
						return fmt.Errorf("kill %d: %w", k, err)
					}
				}
				var na, fw, win, errs []float64
				total := 0
				var lines []string
				for _, x := range rounds {
					na, fw, win, errs = append(na, x.NewActive), append(fw, x.FirstWrite), append(win, x.ESOWindow), append(errs, float64(x.ESOErrors))
					total += x.ESOErrors
					lines = append(lines, fmt.Sprintf("%.1fs (%s)", x.NewActive, x.Killed))
				}
				r.figureSpread("new-active-seconds", na)
				r.figureSpread("first-write-seconds", fw)
				r.figureSpread("eso-error-window-seconds", win)
				sp, _ := spreadOf(win)
				r.Figure("eso-error-window-seconds", sp.Median)
				r.Figure("eso-errors", float64(total))
				r.Figure("failovers", float64(len(rounds)))
				nsp, _ := spreadOf(na)
				r.Figure("failover-seconds", nsp.Max) // the figure of earlier reports: the slowest now
				r.Claim("C15-09", nsp.Max < 30, fmt.Sprintf("a new active node after %s; the slowest of %d kills %.1fs", strings.Join(lines, ", "), len(rounds), nsp.Max))
				return nil
			}},
			{"secrets-unchanged", "the Secrets ESO synced before the first kill have the same resourceVersion after the last", func(ctx context.Context, e *Env, r *Result) error {
				if before == nil || len(rounds) == 0 {
					return fmt.Errorf("no failover ran")
				}
				after, err := e.esoSecretVersions(ctx, failoverProbe)
				if err != nil {
					return err
				}
				var changed []string
				for name, rv := range before {
					if after[name] != rv {
						changed = append(changed, fmt.Sprintf("%s (resourceVersion %s -> %q)", name, rv, after[name]))
					}
				}
				sort.Strings(changed)
				win := make([]float64, 0, len(rounds))
				errs := 0
				for _, x := range rounds {
					win = append(win, x.ESOWindow)
					errs += x.ESOErrors
				}
				sp, _ := spreadOf(win)
				// "~30s": read as 15-45 s of errors; the Secrets must be untouched
				approx := sp.Median >= 15 && sp.Median <= 45
				r.Claim("C15-10", approx && errs > 0 && len(changed) == 0, fmt.Sprintf(
					"over %d kills a force-synced change could not sync for %.1f-%.1fs (median %.1fs; the chapter: ~30s), ESO recorded %d sync errors; %d of %d Secrets ESO had synced changed",
					len(rounds), sp.Min, sp.Max, sp.Median, errs, len(changed), len(before)))
				r.Figure("secrets-changed", float64(len(changed)))
				if len(changed) > 0 {
					return fmt.Errorf("Secrets ESO synced before the failovers changed: %s", strings.Join(changed, ", "))
				}
				return nil
			}},
			{"probe-removed", "the probe ExternalSecrets and their Secrets are removed", func(ctx context.Context, e *Env, r *Result) error {
				for _, name := range []string{failoverProbe, failoverSteady} {
					if err := e.deleteProbe(ctx, name); err != nil {
						return err
					}
				}
				return nil
			}},
		}}
}

// killActive kills the active node and measures, from the kill: another node active, a KV
// write to mount/writePath succeeding, and ESO syncing probe's Secret to want (re-annotating
// with force-sync every failoverResync until it does). Then it restores the killed node. The
// round is returned with what was measured even when a step failed.
func (e *Env) killActive(ctx context.Context, k int, probe *unstructured.Unstructured, want []byte, mount, writePath string) (killRound, error) {
	var round killRound
	nodes := e.Lab.VaultNodes()
	i, err := vaultops.WaitOneActive(ctx, clientsOf(nodes), e.Timeouts.Failover)
	if err != nil {
		return round, err
	}
	killed := nodes[i]
	var others []*vault.Client
	for _, n := range nodes {
		if n != killed {
			others = append(others, n.Client())
		}
	}
	warnBefore, err := e.warningCount(ctx, probe)
	if err != nil {
		return round, err
	}
	start := time.Now()
	if err := killed.Kill(ctx); err != nil {
		return round, err
	}
	round.Killed = killed.Name()
	e.Defer("bring "+killed.Name()+" back: restart, unseal, 3 healthy voters", func(ctx context.Context) error {
		return e.restoreVaultNodes(ctx, killed)
	})
	var wg sync.WaitGroup
	var activeErr, writeErr, esoErr error
	wg.Add(3)
	go func() {
		defer wg.Done()
		if _, activeErr = vaultops.WaitOneActive(ctx, others, e.Timeouts.Failover); activeErr == nil {
			round.NewActive = since(start)
		}
	}()
	go func() {
		defer wg.Done()
		writeErr = waitFor(ctx, "a KV write to "+mount+"/"+writePath+" to succeed after "+killed.Name()+" was killed", e.Timeouts.Failover, func(ctx context.Context) (bool, error) {
			wctx, cancel := context.WithTimeout(ctx, failoverWriteAttempt)
			defer cancel()
			_, err := e.Lab.Vault().KVv2(mount).Put(wctx, writePath, map[string]any{"kill": k})
			return err == nil, nil // an error is the outage being measured
		})
		if writeErr == nil {
			round.FirstWrite = since(start)
		}
	}()
	go func() {
		defer wg.Done()
		var last time.Time
		esoErr = waitFor(ctx, "ESO to sync the changed value into Secret "+failoverProbe+" through the new active node", e.Timeouts.Failover+e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
			if time.Since(last) >= failoverResync {
				if err := e.requestSync(ctx, probe); err != nil {
					return false, err
				}
				last = time.Now()
				round.Resyncs++
			}
			s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, failoverProbe, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, fmt.Errorf("Secret %s is gone", failoverProbe)
			}
			if err != nil {
				return false, err
			}
			return string(s.Data["POSTGRES_PASSWORD"]) == string(want), nil
		})
		if esoErr == nil {
			round.ESOWindow = since(start)
		}
	}()
	wg.Wait()
	if n, err := e.warningCount(ctx, probe); err == nil {
		round.ESOErrors = n - warnBefore
	} else if esoErr == nil {
		esoErr = err
	}
	if err := errors.Join(activeErr, writeErr, esoErr); err != nil {
		return round, err
	}
	synced := time.Now()
	if err := e.restoreVaultNodes(ctx, killed); err != nil {
		return round, fmt.Errorf("bring %s back: %w", killed.Name(), err)
	}
	round.Rejoin = since(synced)
	return round, nil
}

// warningCount sums the counts of the Warning events about obj (ESO's sync errors).
func (e *Env) warningCount(ctx context.Context, obj *unstructured.Unstructured) (int, error) {
	list, err := e.Lab.Kube().CoreV1().Events(obj.GetNamespace()).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + obj.GetName() + ",involvedObject.kind=" + obj.GetKind() + ",type=" + corev1.EventTypeWarning,
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ev := range list.Items {
		c := int(ev.Count)
		if ev.Series != nil && int(ev.Series.Count) > c {
			c = int(ev.Series.Count)
		}
		if c < 1 {
			c = 1
		}
		n += c
	}
	return n, nil
}

// esoSecretVersions maps the name of each Secret in the bookstore namespace that an
// ExternalSecret owns to its resourceVersion, leaving out those named in except.
func (e *Env) esoSecretVersions(ctx context.Context, except ...string) (map[string]string, error) {
	list, err := e.Lab.Kube().CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range list.Items {
		if slices.Contains(except, s.Name) {
			continue
		}
		for _, o := range s.OwnerReferences {
			if o.Kind == "ExternalSecret" {
				out[s.Name] = s.ResourceVersion
			}
		}
	}
	return out, nil
}

// deleteProbe removes a probe ExternalSecret and waits until its Secret is gone.
func (e *Env) deleteProbe(ctx context.Context, name string) error {
	probe, err := e.rotationProbe(ctx, name)
	if err != nil {
		return err
	}
	if err := e.Kube.Delete(ctx, probe); err != nil {
		return err
	}
	return e.Kube.WaitGone(ctx, secretObj(name), e.Timeouts.Gone)
}

func clientsOf(nodes []lab.VaultNode) []*vault.Client {
	var out []*vault.Client
	for _, n := range nodes {
		out = append(out, n.Client())
	}
	return out
}
