package scenarios

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// swap: chapter 05 step 3, the demo Secret replaced by a Vault-synced one.
func swap() Scenario {
	return Scenario{Name: "swap", Title: "swap the demo Secret for an ExternalSecret synced from Vault", Needs: []string{"vault-config"}, Checks: []Check{
		{"served-api-version", "external-secrets.io serves a version the fixtures can use", func(ctx context.Context, e *Env, r *Result) error {
			served, err := e.Kube.ServedVersions(esGroup)
			if err != nil {
				return err
			}
			if len(served) == 0 {
				return fmt.Errorf("external-secrets.io is not served (ESO CRDs missing)")
			}
			store, err := e.find(ctx, sec+"10-secretstore-vault.yaml", "SecretStore", "")
			if err != nil {
				return err
			}
			e.State.ESVersion = strings.TrimPrefix(store.GetAPIVersion(), esGroup+"/")
			r.Note("served %v; fixtures applied as %s", served, e.State.ESVersion)
			r.Claim("C05-03", slices.Contains(served, "v1"), fmt.Sprintf("external-secrets.io serves %v", served))
			return nil
		}},
		{"secretstore-ready", "SecretStore vault-backend becomes Ready", func(ctx context.Context, e *Env, r *Result) error {
			objs, err := e.apply(ctx, sec+"10-secretstore-vault.yaml")
			if err != nil {
				return err
			}
			start := time.Now()
			if _, err := e.Kube.WaitCondition(ctx, objs[0], "Ready", e.Timeouts.Sync); err != nil {
				return err
			}
			r.Figure("ready-seconds", since(start))
			return nil
		}},
		{"demo-deleted", "the demo Secret is deleted", func(ctx context.Context, e *Env, r *Result) error {
			s := secretObj("db-credentials")
			if err := e.Kube.Delete(ctx, s); err != nil {
				return err
			}
			return e.Kube.WaitGone(ctx, s, e.Timeouts.Gone)
		}},
		{"externalsecret-ready", "ExternalSecret db-credentials becomes Ready with reason SecretSynced", func(ctx context.Context, e *Env, r *Result) error {
			objs, err := e.apply(ctx, sec+"20-externalsecret-db-credentials.yaml")
			if err != nil {
				return err
			}
			start := time.Now()
			c, err := e.Kube.WaitCondition(ctx, objs[0], "Ready", e.Timeouts.Sync)
			if err != nil {
				return err
			}
			r.Figure("sync-seconds", since(start))
			if c.Reason != "SecretSynced" {
				return fmt.Errorf("Ready with reason %q, want SecretSynced", c.Reason)
			}
			return nil
		}},
		{"condition-name", "what the chapter says to look for: condition SecretSynced=True", func(ctx context.Context, e *Env, r *Result) error {
			es, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
			if err != nil {
				return err
			}
			cur, err := e.Kube.Get(ctx, es)
			if err != nil {
				return err
			}
			c, ok := conditionOf(cur, "SecretSynced")
			var types []string
			for _, c := range conditionsOf(cur) {
				types = append(types, c.Type+"="+c.Status+"/"+c.Reason)
			}
			r.Note("conditions: %v", types)
			r.Claim("C05-05", ok && c.Status == "True", fmt.Sprintf("conditions %v", types))
			return nil
		}},
		{"owner-reference", "db-credentials exists again, owned by the ExternalSecret", func(ctx context.Context, e *Env, r *Result) error {
			// an ExternalSecret an earlier lab left on a reused cluster is Ready before it has
			// re-created the Secret: wait for the Secret itself
			var s *corev1.Secret
			err := waitFor(ctx, "Secret "+ns+"/db-credentials to exist again", e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
				var err error
				s, err = e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, "db-credentials", metav1.GetOptions{})
				return err == nil, err
			})
			if err != nil {
				return err
			}
			owned := false
			var refs []string
			for _, o := range s.OwnerReferences {
				refs = append(refs, o.Kind+"/"+o.Name)
				owned = owned || (o.Kind == "ExternalSecret" && o.Name == "db-credentials" && o.Controller != nil && *o.Controller)
			}
			r.Claim("C05-11", owned, fmt.Sprintf("ownerReferences %v", refs))
			if !owned {
				return fmt.Errorf("db-credentials has no controller ownerReference to ExternalSecret db-credentials: %v", s.OwnerReferences)
			}
			var labels []string
			for k := range s.Labels {
				labels = append(labels, k)
			}
			r.Note("ESO labels %v", labels)
			return nil
		}},
		{"managed-by-label", "what the chapter says: label reconcile.external-secrets.io/managed-by=external-secrets", func(ctx context.Context, e *Env, r *Result) error {
			s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, "db-credentials", metav1.GetOptions{})
			if err != nil {
				return err
			}
			var keys []string
			for k := range s.Labels {
				keys = append(keys, k)
			}
			for k := range s.Annotations {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			r.Note("labels and annotations: %v", keys)
			r.Claim("C05-10", s.Labels["reconcile.external-secrets.io/managed-by"] == "external-secrets", fmt.Sprintf("labels and annotations %v", keys))
			return nil
		}},
		{"byte-identical", "the synced Secret has the demo Secret's keys and bytes", func(ctx context.Context, e *Env, r *Result) error {
			return e.compareWithDemo(ctx, r, "C05-06")
		}},
		{"app-serves", "after a restart the catalog still serves /books", func(ctx context.Context, e *Env, r *Result) error {
			return e.restartCatalog(ctx, r, "C05-07")
		}},
	}}
}

// compareWithDemo compares db-credentials with the demo Secret, key by key and byte by byte,
// and records the verdict on ledger claim claimID.
func (e *Env) compareWithDemo(ctx context.Context, r *Result, claimID string) error {
	got, err := e.secretData(ctx, "db-credentials")
	if err != nil {
		return err
	}
	d := DiffData(e.State.Demo, got)
	if d != "" {
		r.Claim(claimID, false, "db-credentials differs from the demo Secret: "+d)
		return fmt.Errorf("db-credentials differs from the demo Secret: %s", d)
	}
	r.Claim(claimID, true, fmt.Sprintf("db-credentials has the demo Secret's %d keys, byte for byte", len(got)))
	r.Note("%d keys byte-identical", len(got))
	return nil
}

// restartCatalog restarts the catalog (its Deployment as the fixture has it) and reads
// /books; what it found is the verdict on ledger claim claimID, if one is given.
func (e *Env) restartCatalog(ctx context.Context, r *Result, claimID string) error {
	if e.State.Catalog == nil {
		return errNoCatalog
	}
	start := time.Now()
	if err := e.State.Catalog.Restart(ctx); err != nil {
		return err
	}
	n, err := e.books(ctx)
	r.Figure("books", float64(n))
	r.Figure("restart-seconds", since(start))
	if claimID != "" {
		if err != nil {
			r.Claim(claimID, false, "the catalog, restarted unchanged on the synced Secret, did not serve /books")
		} else {
			r.Claim(claimID, true, fmt.Sprintf("the catalog, restarted unchanged on the synced Secret, served /books (%d books)", n))
		}
	}
	return err
}
