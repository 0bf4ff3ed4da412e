package scenarios

import (
	"context"
	"fmt"
	"maps"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// rotation: a KV change reaches the Secret when a sync is forced.
func rotation() Scenario {
	const probe = "rotation-probe"
	return Scenario{Name: "rotation", Title: "rotate the KV value; a forced sync carries it to the Secret", Needs: []string{"vault-config"}, Checks: []Check{
		{"probe-synced", "a probe ExternalSecret syncs the current KV value", func(ctx context.Context, e *Env, r *Result) error {
			return e.applyProbe(ctx, probe, "delete the probe ExternalSecret "+probe, func(ctx context.Context) error { return e.deleteProbe(ctx, probe) })
		}},
		{"secret-follows", "after a KV change and a forced sync the Secret holds the new value", func(ctx context.Context, e *Env, r *Result) error {
			latency, err := e.rotateProbe(ctx, probe)
			if err != nil {
				return err
			}
			r.Figure("sync-latency-ms", float64(latency.Milliseconds()))
			// force-sync refreshed it "at once" when the value came well before the refresh
			// interval would have brought it
			es, err := e.rotationProbe(ctx, probe)
			if err != nil {
				return err
			}
			ri, _, _ := unstructured.NestedString(es.Object, "spec", "refreshInterval")
			interval, err := time.ParseDuration(ri)
			if err != nil {
				return fmt.Errorf("the probe's refreshInterval %q: %w", ri, err)
			}
			r.Claim("C15-16", latency < interval, fmt.Sprintf("the rotated value reached the Secret %.1fs after the force-sync annotation (refreshInterval %s)", latency.Seconds(), ri))
			return nil
		}},
		{"probe-removed", "the probe ExternalSecret and its Secret are removed", func(ctx context.Context, e *Env, r *Result) error {
			return e.deleteProbe(ctx, probe)
		}},
	}}
}

// forceSyncUntil annotates the probe with force-sync and waits until its Secret's
// POSTGRES_PASSWORD equals want; it returns the time that took.
func (e *Env) forceSyncUntil(ctx context.Context, name string, want []byte) (time.Duration, error) {
	es, err := e.rotationProbe(ctx, name)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := e.requestSync(ctx, es); err != nil {
		return 0, err
	}
	var took time.Duration
	err = waitFor(ctx, "Secret "+name+" to carry the rotated value", e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
		s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if string(s.Data["POSTGRES_PASSWORD"]) == string(want) {
			took = time.Since(start)
			return true, nil
		}
		return false, nil
	})
	return took, err
}

// applyProbe applies the SecretStore and the probe ExternalSecret name, registers cleanup
// right after, and waits until the probe is Ready.
func (e *Env) applyProbe(ctx context.Context, name, what string, cleanup func(ctx context.Context) error) error {
	if _, err := e.apply(ctx, sec+"10-secretstore-vault.yaml"); err != nil {
		return err
	}
	es, err := e.rotationProbe(ctx, name)
	if err != nil {
		return err
	}
	if err := e.Kube.Apply(ctx, es); err != nil {
		return err
	}
	e.Defer(what, cleanup)
	_, err = e.Kube.WaitCondition(ctx, es, "Ready", e.Timeouts.Sync)
	return err
}

// rotateProbe changes the KV value the probe syncs, forces a sync until the Secret holds it,
// then puts the old value back and syncs that too; it returns the first sync's latency.
func (e *Env) rotateProbe(ctx context.Context, probe string) (time.Duration, error) {
	mount, path, _, err := kvTarget()
	if err != nil {
		return 0, err
	}
	kv := e.Lab.Vault().KVv2(mount)
	old, err := kv.Get(ctx, path)
	if err != nil {
		return 0, err
	}
	rotated := maps.Clone(old.Data)
	newValue := randomSecret("rotated")
	e.Lab.Secrets().Add(newValue)
	rotated["POSTGRES_PASSWORD"] = newValue
	e.Defer("put the demo's value back at "+mount+"/"+path, func(ctx context.Context) error {
		_, err := kv.Put(ctx, path, old.Data)
		return err
	})
	if _, err := kv.Put(ctx, path, rotated); err != nil {
		return 0, err
	}
	latency, err := e.forceSyncUntil(ctx, probe, []byte(newValue))
	if err != nil {
		return 0, err
	}
	if _, err := kv.Put(ctx, path, old.Data); err != nil {
		return 0, err
	}
	old1, _ := old.Data["POSTGRES_PASSWORD"].(string)
	if _, err := e.forceSyncUntil(ctx, probe, []byte(old1)); err != nil {
		return 0, fmt.Errorf("restoring the value: %w", err)
	}
	return latency, nil
}
