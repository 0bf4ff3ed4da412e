package scenarios

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/lab"
)

// upgrade: the lab moved in place to the upgrade target's versions (UPGRADE_TO), with a
// probe reading the catalog and a synced Secret throughout; afterwards every ExternalSecret
// is Ready, every synced Secret is byte-identical with the same UID, Vault's policies and
// roles are intact, stored CRD versions are accounted for, and a KV change still syncs.
func upgrade() Scenario {
	const probe = "upgrade-probe"
	var before upgradeSnapshot
	var stopProbe func() probeCounts
	return Scenario{Name: "upgrade", Title: "upgrade ESO and Vault in place while the workload runs", Needs: []string{"vault-config"},
		Requires: []Requirement{UpgradeTarget}, Checks: []Check{
			{"snapshot", "before: a probe ExternalSecret syncs; every ExternalSecret, synced Secret, Vault policy and role is recorded", func(ctx context.Context, e *Env, r *Result) error {
				err := e.applyProbe(ctx, probe, "delete the probe ExternalSecret "+probe+" and its Secret", func(ctx context.Context) error {
					es, err := e.rotationProbe(ctx, probe) // in the version served now, after the upgrade
					if err != nil {
						return err
					}
					if err := e.Kube.Delete(ctx, es, secretObj(probe)); err != nil {
						return err
					}
					return e.Kube.WaitGone(ctx, secretObj(probe), e.Timeouts.Gone)
				})
				if err != nil {
					return err
				}
				if before, err = e.snapshot(ctx); err != nil {
					return err
				}
				r.Note("%d ExternalSecret(s), %d synced Secret(s), %d Vault policies, %d Kubernetes auth roles", len(before.ready), len(before.secrets), len(before.policies), len(before.roles))
				r.Figure("externalsecrets", float64(len(before.ready)))
				return nil
			}},
			{"in-place", "ESO, then Vault, move to the target versions in place (the steps an operator takes)", func(ctx context.Context, e *Env, r *Result) error {
				up := e.Lab.(lab.Upgrader)
				stopProbe = e.startUpgradeProbe(ctx, probe)
				start := time.Now()
				steps, err := up.Upgrade(ctx, *e.UpgradeTo)
				for _, s := range steps {
					if s.Skipped != "" {
						r.Note("%s: skipped (%s)", s.What, s.Skipped)
					} else {
						r.Note("%s in %.1fs", s.What, s.Took.Seconds())
					}
				}
				if err != nil {
					return err
				}
				r.Figure("upgrade-seconds", time.Since(start).Seconds())
				// the served API versions may have changed: fixtures follow the new preferred one
				served, err := e.Kube.ServedVersions(esGroup)
				if err != nil || len(served) == 0 {
					return fmt.Errorf("after the upgrade external-secrets.io serves %v: %v", served, err)
				}
				if e.State.ESVersion != "" && !slices.Contains(served, e.State.ESVersion) {
					r.Note("%s/%s is no longer served; fixtures now use %s", esGroup, e.State.ESVersion, served[0])
					e.State.ESVersion = served[0]
				}
				return nil
			}},
			{"probe-window", "the catalog and the synced Secret stay readable during the upgrade (error window measured)", func(ctx context.Context, e *Env, r *Result) error {
				if stopProbe == nil {
					return fmt.Errorf("the probe did not run")
				}
				c := stopProbe()
				r.Figure("catalog-errors", float64(c.catalogErrors))
				r.Figure("catalog-error-window-seconds", c.catalogWindow.Seconds())
				r.Figure("secret-read-errors", float64(c.secretErrors))
				r.Note("%d probes over %.1fs: catalog %d error(s) (window %.1fs), synced Secret reads %d error(s)",
					c.probes, c.span.Seconds(), c.catalogErrors, c.catalogWindow.Seconds(), c.secretErrors)
				if c.secretErrors > 0 {
					return fmt.Errorf("the synced Secret %s could not be read %d time(s) during the upgrade (last: %s)", probe, c.secretErrors, c.lastErr)
				}
				return nil
			}},
			{"running-versions", "the running versions are the target's", func(ctx context.Context, e *Env, r *Result) error {
				v, err := e.Lab.Versions(ctx)
				if err != nil {
					return err
				}
				want := e.UpgradeTo.Versions
				r.Note("running ESO %s, Vault %s", v.ESO, v.Vault)
				if want.ESO != "" && baseVersion(v.ESO) != baseVersion(want.ESO) {
					return fmt.Errorf("ESO %s runs, the target is %s", v.ESO, want.ESO)
				}
				if len(e.Lab.VaultNodes()) >= 3 && want.Vault != "" && baseVersion(v.Vault) != baseVersion(want.Vault) {
					return fmt.Errorf("Vault %s runs, the target is %s", v.Vault, want.Vault)
				}
				return nil
			}},
			{"crd-storage", "ESO's CRDs: objects stored in a version the target no longer serves are migrated", func(ctx context.Context, e *Env, r *Result) error {
				return e.accountForStorage(ctx, r)
			}},
			{"externalsecrets-ready", "every ExternalSecret is Ready again", func(ctx context.Context, e *Env, r *Result) error {
				for _, key := range slices.Sorted(maps.Keys(before.ready)) {
					es, err := e.externalSecret(ctx, key)
					if err != nil {
						return err
					}
					if _, err := e.Kube.WaitCondition(ctx, es, "Ready", e.Timeouts.Sync); err != nil {
						return fmt.Errorf("ExternalSecret %s: %w", key, err)
					}
				}
				return nil
			}},
			{"secrets-identical", "every synced Secret is byte-identical and keeps its UID", func(ctx context.Context, e *Env, r *Result) error {
				after, err := e.snapshot(ctx)
				if err != nil {
					return err
				}
				var changed []string
				rewritten := 0
				for key, b := range before.secrets {
					a, ok := after.secrets[key]
					switch {
					case !ok:
						changed = append(changed, key+" is gone")
					case a.uid != b.uid:
						changed = append(changed, key+" was re-created (new UID)")
					case a.dataHash != b.dataHash:
						changed = append(changed, key+" holds other bytes")
					case a.resourceVersion != b.resourceVersion:
						rewritten++
					}
				}
				r.Note("%d synced Secret(s) compared; %d rewritten with the same bytes", len(before.secrets), rewritten)
				if len(changed) > 0 {
					sort.Strings(changed)
					return fmt.Errorf("%s", strings.Join(changed, "; "))
				}
				return nil
			}},
			{"vault-intact", "Vault's policies and Kubernetes auth roles are intact", func(ctx context.Context, e *Env, r *Result) error {
				after, err := e.snapshot(ctx)
				if err != nil {
					return err
				}
				if !slices.Equal(after.policies, before.policies) || !slices.Equal(after.roles, before.roles) {
					return fmt.Errorf("policies %v -> %v, roles %v -> %v", before.policies, after.policies, before.roles, after.roles)
				}
				return nil
			}},
			{"syncs-after", "after the upgrade a KV change and a forced sync still reach the Secret", func(ctx context.Context, e *Env, r *Result) error {
				latency, err := e.rotateProbe(ctx, probe)
				if err != nil {
					return err
				}
				r.Figure("sync-latency-ms", float64(latency.Milliseconds()))
				return nil
			}},
			{"gc-after", "after the upgrade, deleting an ExternalSecret still removes its Secret (owner reference)", func(ctx context.Context, e *Env, r *Result) error {
				s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, probe, metav1.GetOptions{})
				if err != nil {
					return err
				}
				var owners []string
				for _, o := range s.OwnerReferences {
					owners = append(owners, o.APIVersion+" "+o.Kind+" "+o.Name)
				}
				es, err := e.rotationProbe(ctx, probe)
				if err != nil {
					return err
				}
				start := time.Now()
				if err := e.Kube.Delete(ctx, es); err != nil {
					return err
				}
				// a long bound: how late the garbage collector is after an upgrade is the finding
				err = e.Kube.WaitGone(ctx, secretObj(probe), 5*e.Timeouts.Gone)
				took := time.Since(start)
				gone := "still there"
				if err == nil {
					gone = fmt.Sprintf("gone %.1fs", took.Seconds())
				}
				r.Claim("C05-09", err == nil && took <= e.Timeouts.Gone, fmt.Sprintf("after the in-place upgrade the Secret was %s after its ExternalSecret was deleted (bound %s)", gone, e.Timeouts.Gone))
				if err != nil {
					return fmt.Errorf("the Secret, owned by %v, outlived its ExternalSecret: %w", owners, err)
				}
				r.Figure("gc-seconds", took.Seconds())
				r.Note("owner %v; the Secret was gone %.1fs after its ExternalSecret was deleted", owners, took.Seconds())
				return nil
			}},
		}}
}

// UpgradeTarget is what the upgrade scenario requires: a target and a lab that upgrades.
var UpgradeTarget = Requirement{
	Name: "an upgrade target",
	Met: func(e *Env) bool {
		_, ok := e.Lab.(lab.Upgrader)
		return ok && e.UpgradeTo != nil
	},
	Why: "set UPGRADE_TO=SET (a version set of versions.yaml; secretslab conformance --upgrade-to SET)",
}

// upgradeSnapshot is what must survive an upgrade. Secret data is kept as a hash only.
type upgradeSnapshot struct {
	ready    map[string]bool // namespace/name of each ExternalSecret -> Ready
	secrets  map[string]secretState
	policies []string
	roles    []string
}

type secretState struct {
	uid, resourceVersion string
	dataHash             [32]byte
}

func externalSecretsResource(version string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: esGroup, Version: version, Resource: "externalsecrets"}
}

// snapshot records every ExternalSecret (and the Secret it targets), Vault's policies and
// its Kubernetes auth roles.
func (e *Env) snapshot(ctx context.Context) (upgradeSnapshot, error) {
	s := upgradeSnapshot{ready: map[string]bool{}, secrets: map[string]secretState{}}
	v, err := e.servedVersion(esGroup, e.State.ESVersion)
	if err != nil {
		return s, err
	}
	list, err := e.Kube.Dyn.Resource(externalSecretsResource(v)).List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("list ExternalSecrets: %w", err)
	}
	for i := range list.Items {
		es := &list.Items[i]
		key := es.GetNamespace() + "/" + es.GetName()
		ready := false
		for _, c := range kube.Conditions(es) {
			ready = ready || (c.Type == "Ready" && c.Status == "True")
		}
		s.ready[key] = ready
		target := es.GetName()
		if n, _, _ := unstructured.NestedString(es.Object, "spec", "target", "name"); n != "" {
			target = n
		}
		sec, err := e.Lab.Kube().CoreV1().Secrets(es.GetNamespace()).Get(ctx, target, metav1.GetOptions{})
		if err != nil {
			continue // not synced (yet): nothing to compare
		}
		h := sha256.New()
		for _, k := range slices.Sorted(maps.Keys(sec.Data)) {
			fmt.Fprintf(h, "%s\x00%d\x00", k, len(sec.Data[k]))
			h.Write(sec.Data[k])
		}
		st := secretState{uid: string(sec.UID), resourceVersion: sec.ResourceVersion}
		copy(st.dataHash[:], h.Sum(nil))
		s.secrets[es.GetNamespace()+"/"+target] = st
	}
	vc := e.Lab.Vault()
	if s.policies, err = vc.Sys().ListPoliciesWithContext(ctx); err != nil {
		return s, fmt.Errorf("list Vault policies: %w", err)
	}
	sort.Strings(s.policies)
	roles, err := vc.Logical().ListWithContext(ctx, "auth/kubernetes/role")
	if err != nil {
		return s, fmt.Errorf("list Vault's Kubernetes auth roles: %w", err)
	}
	if roles != nil {
		keys, _ := roles.Data["keys"].([]any)
		for _, k := range keys {
			s.roles = append(s.roles, fmt.Sprint(k))
		}
	}
	sort.Strings(s.roles)
	return s, nil
}

// externalSecret reads namespace/name in the served version.
func (e *Env) externalSecret(ctx context.Context, key string) (*unstructured.Unstructured, error) {
	nsName := strings.SplitN(key, "/", 2)
	v, err := e.servedVersion(esGroup, e.State.ESVersion)
	if err != nil {
		return nil, err
	}
	return e.Kube.Dyn.Resource(externalSecretsResource(v)).Namespace(nsName[0]).Get(ctx, nsName[1], metav1.GetOptions{})
}

// accountForStorage reads the storage state of each ESO CRD: versions etcd may still hold
// objects in that the target no longer serves are migrated; stale ones still served are
// reported, not migrated.
func (e *Env) accountForStorage(ctx context.Context, r *Result) error {
	crds := []string{"externalsecrets", "secretstores", "clustersecretstores"}
	stale := 0
	for _, plural := range crds {
		name := plural + "." + esGroup
		st, err := e.Kube.CRDStorage(ctx, name)
		if err != nil {
			return err
		}
		switch {
		case len(st.Unserved()) > 0:
			n, err := e.Kube.MigrateStorage(ctx, name)
			if err != nil {
				return fmt.Errorf("migrate %s from %v to %s: %w", name, st.Unserved(), st.Storage, err)
			}
			r.Note("%s: stored versions %v, %v no longer served: %d object(s) rewritten in %s and storedVersions set to [%s]", plural, st.Stored, st.Unserved(), n, st.Storage, st.Storage)
		case len(st.Stale()) > 0:
			stale++
			r.Note("%s: stored versions %v (storage %s): objects may still be stored in %v, which the target still serves; not migrated (migrate before an ESO that stops serving it)", plural, st.Stored, st.Storage, st.Stale())
		default:
			r.Note("%s: stored versions %v", plural, st.Stored)
		}
	}
	r.Figure("crds-with-stale-stored-versions", float64(stale))
	return nil
}

// probeCounts is what the upgrade probe saw.
type probeCounts struct {
	probes, catalogErrors, secretErrors int
	catalogWindow, span                 time.Duration
	lastErr                             string
}

// startUpgradeProbe reads the catalog's /books and the probe's Secret twice a second until
// the returned func is called, which returns the counts. The catalog's error window runs
// from its first failed read to the first good read after its last failed one.
func (e *Env) startUpgradeProbe(ctx context.Context, probe string) func() probeCounts {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var c probeCounts
	var firstBad, lastBad time.Time
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			_, berr := e.books(rctx)
			_, serr := e.secretData(rctx, probe)
			rcancel()
			if ctx.Err() != nil {
				return
			}
			mu.Lock()
			c.probes++
			if berr != nil && e.State.Catalog != nil {
				c.catalogErrors++
				if firstBad.IsZero() {
					firstBad = time.Now()
				}
				lastBad = time.Now()
			}
			if serr != nil {
				c.secretErrors++
				c.lastErr = e.redactErr("", serr).Error()
			}
			mu.Unlock()
		}
	}()
	return func() probeCounts {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		c.span = time.Since(start)
		if !firstBad.IsZero() {
			c.catalogWindow = lastBad.Sub(firstBad) + 500*time.Millisecond
		}
		return c
	}
}

// baseVersion drops a leading v and any build or flavour suffix: image tags such as
// 1.17.2-ent or 1.17.2-ubi run a server that reports 1.17.2 (or 1.17.2+ent).
func baseVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+ "); i >= 0 {
		v = v[:i]
	}
	return v
}
