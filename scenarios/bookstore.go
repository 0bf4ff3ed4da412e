package scenarios

import (
	"context"
	"fmt"
	"github.com/secretslab/secretslab/fixtures"
	"slices"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	raw = "bookstore/raw-manifests/"
	sec = "bookstore/secrets/"
)

// baseline: chapter 05 step 0, the running bookstore on the demo Secret.
func baseline() Scenario {
	return Scenario{Name: "baseline", Title: "the bookstore runs on the demo Secret", Checks: []Check{
		{"demo-secret", "the demo Secret and the bookstore's objects are applied; the cluster stores the fixture's bytes", func(ctx context.Context, e *Env, r *Result) error {
			if _, err := e.apply(ctx, raw+"00-namespace.yaml", raw+"05-serviceaccounts-rbac.yaml", raw+"15-catalog-config.yaml", raw+"16-db-credentials.yaml", raw+"40-services.yaml"); err != nil {
				return err
			}
			stored, err := e.secretData(ctx, "db-credentials")
			if err != nil {
				return err
			}
			want, err := fixtures.DemoSecret()
			if err != nil {
				return err
			}
			if d := DiffData(want, stored); d != "" {
				return fmt.Errorf("the stored demo Secret differs from the fixture: %s", d)
			}
			e.demo = stored
			r.Note("keys %v", keyNames(stored))
			return nil
		}},
		{"postgres-ready", "Postgres runs with the demo Secret as its environment", func(ctx context.Context, e *Env, r *Result) error {
			return e.deploy(ctx, raw+"20-postgres-statefulset.yaml", r)
		}},
		{"migrate", "the db-migrate Job completes", func(ctx context.Context, e *Env, r *Result) error {
			return e.deploy(ctx, raw+"21-db-migrate-job.yaml", r)
		}},
		{"catalog-serves", "catalog and orders run; the catalog serves /books", func(ctx context.Context, e *Env, r *Result) error {
			if err := e.deploy(ctx, raw+"10-catalog-deploy.yaml", r); err != nil {
				return err
			}
			if err := e.deploy(ctx, raw+"14-orders-deploy.yaml", r); err != nil {
				return err
			}
			n, err := e.books(ctx)
			r.Figure("books", float64(n))
			return err
		}},
	}}
}

func (e *Env) deploy(ctx context.Context, path string, r *Result) error {
	m, err := fixtures.Manifest(path)
	if err != nil {
		return err
	}
	start := time.Now()
	w, err := e.Lab.Deploy(ctx, m)
	if err != nil {
		return err
	}
	if w.Name() == "catalog" {
		e.catalog = w
	}
	r.Figure(w.Name()+"-ready-seconds", since(start))
	return nil
}

// vaultConfig: chapter 05 step 1, Kubernetes auth, the least-privilege policy, the role, the KV value.
func vaultConfig() Scenario {
	return Scenario{Name: "vault-config", Title: "Vault: Kubernetes auth, least-privilege policy, role, KV v2 value", Needs: []string{"baseline"}, Checks: []Check{
		{"kubernetes-auth", "auth/kubernetes is enabled and configured for this cluster", func(ctx context.Context, e *Env, r *Result) error {
			v := e.Lab.Vault()
			auths, err := v.Sys().ListAuthWithContext(ctx)
			if err != nil {
				return err
			}
			if _, ok := auths["kubernetes/"]; !ok {
				if err := v.Sys().EnableAuthWithOptionsWithContext(ctx, "kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
					return err
				}
			}
			cfg, err := e.Lab.VaultKubernetesAuthConfig(ctx)
			if err != nil {
				return err
			}
			_, err = v.Logical().WriteWithContext(ctx, "auth/kubernetes/config", cfg)
			return err
		}},
		{"policy", "the bookstore-ro policy is written exactly as the fixture says", func(ctx context.Context, e *Env, r *Result) error {
			name, hcl, err := readPolicy()
			if err != nil {
				return err
			}
			v := e.Lab.Vault()
			if err := v.Sys().PutPolicyWithContext(ctx, name, hcl); err != nil {
				return err
			}
			got, err := v.Sys().GetPolicyWithContext(ctx, name)
			if err != nil {
				return err
			}
			if strings.TrimSpace(got) != strings.TrimSpace(hcl) {
				return fmt.Errorf("policy %s reads back differently", name)
			}
			return nil
		}},
		{"role", "the Kubernetes auth role is bound to bookstore:bookstore-eso", func(ctx context.Context, e *Env, r *Result) error {
			name, data, err := authRole()
			if err != nil {
				return err
			}
			_, err = e.Lab.Vault().Logical().WriteWithContext(ctx, "auth/kubernetes/role/"+name, data)
			return err
		}},
		{"kv", "the KV v2 value holds the demo Secret's keys", func(ctx context.Context, e *Env, r *Result) error {
			mount, path, keys, err := kvTarget()
			if err != nil {
				return err
			}
			data := map[string]any{}
			for _, k := range keys {
				v, ok := e.demo[k]
				if !ok {
					return fmt.Errorf("the demo Secret has no key %s", k)
				}
				data[k] = string(v)
			}
			_, err = e.Lab.Vault().KVv2(mount).Put(ctx, path, data)
			r.Note("%s/%s keys %v", mount, path, keys)
			return err
		}},
		{"login", "a bookstore-eso ServiceAccount token logs in and gets the policy", func(ctx context.Context, e *Env, r *Result) error {
			if _, err := e.apply(ctx, sec+"05-eso-serviceaccount.yaml"); err != nil {
				return err
			}
			role, _, err := authRole()
			if err != nil {
				return err
			}
			policy, _, err := readPolicy()
			if err != nil {
				return err
			}
			_, auth, err := e.loginAsESO(ctx, role)
			if err != nil {
				return err
			}
			if !slices.Contains(auth.Policies, policy) {
				return fmt.Errorf("login got policies %v, want %s", auth.Policies, policy)
			}
			r.Figure("token-ttl-seconds", float64(auth.LeaseDuration))
			return nil
		}},
		{"denied-outside-policy", "the role's token is denied outside its policy", func(ctx context.Context, e *Env, r *Result) error {
			role, _, err := authRole()
			if err != nil {
				return err
			}
			c, _, err := e.loginAsESO(ctx, role)
			if err != nil {
				return err
			}
			mount, path, _, err := kvTarget()
			if err != nil {
				return err
			}
			attempts := map[string]func() error{
				"write " + mount + "/data/" + path: func() error {
					_, err := c.KVv2(mount).Put(ctx, path, map[string]any{"x": "y"})
					return err
				},
				"read " + mount + "/data/other": func() error { _, err := c.KVv2(mount).Get(ctx, "other"); return err },
				"list sys/policies/acl": func() error {
					_, err := c.Logical().ListWithContext(ctx, "sys/policies/acl")
					return err
				},
			}
			for what, try := range attempts {
				err := try()
				if err == nil || !strings.Contains(err.Error(), "permission denied") {
					return fmt.Errorf("%s with the role's token: want permission denied, got %v", what, err)
				}
			}
			r.Note("%d out-of-policy requests denied", len(attempts))
			return nil
		}},
	}}
}

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
			e.esVersion = strings.TrimPrefix(store.GetAPIVersion(), esGroup+"/")
			r.Note("served %v; fixtures applied as %s", served, e.esVersion)
			r.Claim("ch05 skeletons", "SecretStore and ExternalSecret are served as external-secrets.io/v1", slices.Contains(served, "v1"))
			return nil
		}},
		{"secretstore-ready", "SecretStore vault-backend becomes Ready", func(ctx context.Context, e *Env, r *Result) error {
			objs, err := e.apply(ctx, sec+"10-secretstore-vault.yaml")
			if err != nil {
				return err
			}
			start := time.Now()
			if _, err := e.Kube.WaitCondition(ctx, objs[0], "Ready", syncWait); err != nil {
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
			return e.Kube.WaitGone(ctx, s, time.Minute)
		}},
		{"externalsecret-ready", "ExternalSecret db-credentials becomes Ready with reason SecretSynced", func(ctx context.Context, e *Env, r *Result) error {
			objs, err := e.apply(ctx, sec+"20-externalsecret-db-credentials.yaml")
			if err != nil {
				return err
			}
			start := time.Now()
			c, err := e.Kube.WaitCondition(ctx, objs[0], "Ready", syncWait)
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
			r.Claim("ch05 §3", "the ExternalSecret shows condition SecretSynced=True", ok && c.Status == "True")
			return nil
		}},
		{"owner-reference", "db-credentials exists again, owned by the ExternalSecret", func(ctx context.Context, e *Env, r *Result) error {
			s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, "db-credentials", metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, o := range s.OwnerReferences {
				if o.Kind == "ExternalSecret" && o.Name == "db-credentials" && o.Controller != nil && *o.Controller {
					var labels []string
					for k := range s.Labels {
						labels = append(labels, k)
					}
					r.Note("ESO labels %v", labels)
					return nil
				}
			}
			return fmt.Errorf("db-credentials has no controller ownerReference to ExternalSecret db-credentials: %v", s.OwnerReferences)
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
			r.Claim("ch05 test your understanding 4", "the synced Secret is labelled reconcile.external-secrets.io/managed-by: external-secrets", s.Labels["reconcile.external-secrets.io/managed-by"] == "external-secrets")
			return nil
		}},
		{"byte-identical", "the synced Secret has the demo Secret's keys and bytes", func(ctx context.Context, e *Env, r *Result) error {
			return e.compareWithDemo(ctx, r)
		}},
		{"app-serves", "after a restart the catalog still serves /books", func(ctx context.Context, e *Env, r *Result) error {
			return e.restartCatalog(ctx, r)
		}},
	}}
}

func (e *Env) compareWithDemo(ctx context.Context, r *Result) error {
	got, err := e.secretData(ctx, "db-credentials")
	if err != nil {
		return err
	}
	if d := DiffData(e.demo, got); d != "" {
		return fmt.Errorf("db-credentials differs from the demo Secret: %s", d)
	}
	r.Note("%d keys byte-identical", len(got))
	return nil
}

func (e *Env) restartCatalog(ctx context.Context, r *Result) error {
	if e.catalog == nil {
		return errNoCatalog
	}
	start := time.Now()
	if err := e.catalog.Restart(ctx); err != nil {
		return err
	}
	n, err := e.books(ctx)
	r.Figure("books", float64(n))
	r.Figure("restart-seconds", since(start))
	return err
}

// revert: chapter 05 step 5, back to the demo Secret.
func revert() Scenario {
	return Scenario{Name: "revert", Title: "revert to the demo Secret", Needs: []string{"swap"}, Checks: []Check{
		{"secret-collected", "deleting the ExternalSecret garbage-collects db-credentials", func(ctx context.Context, e *Env, r *Result) error {
			es, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
			if err != nil {
				return err
			}
			if err := e.Kube.Delete(ctx, es); err != nil {
				return err
			}
			start := time.Now()
			if err := e.Kube.WaitGone(ctx, secretObj("db-credentials"), time.Minute); err != nil {
				return err
			}
			r.Figure("gc-seconds", since(start))
			return nil
		}},
		{"demo-reapplied", "the demo Secret is applied again", func(ctx context.Context, e *Env, r *Result) error {
			_, err := e.apply(ctx, raw+"16-db-credentials.yaml")
			return err
		}},
		{"byte-identical", "db-credentials is byte-identical to the original demo Secret", func(ctx context.Context, e *Env, r *Result) error {
			return e.compareWithDemo(ctx, r)
		}},
		{"app-serves", "after a restart the catalog serves /books", func(ctx context.Context, e *Env, r *Result) error {
			return e.restartCatalog(ctx, r)
		}},
	}}
}

// rotation: a KV change reaches the Secret when a sync is forced.
func rotation() Scenario {
	const probe = "rotation-probe"
	return Scenario{Name: "rotation", Title: "rotate the KV value; a forced sync carries it to the Secret", Needs: []string{"vault-config"}, Checks: []Check{
		{"probe-synced", "a probe ExternalSecret syncs the current KV value", func(ctx context.Context, e *Env, r *Result) error {
			if _, err := e.apply(ctx, sec+"10-secretstore-vault.yaml"); err != nil {
				return err
			}
			es, err := e.rotationProbe(ctx, probe)
			if err != nil {
				return err
			}
			if err := e.Kube.Apply(ctx, es); err != nil {
				return err
			}
			_, err = e.Kube.WaitCondition(ctx, es, "Ready", syncWait)
			return err
		}},
		{"secret-follows", "after a KV change and a forced sync the Secret holds the new value", func(ctx context.Context, e *Env, r *Result) error {
			mount, path, _, err := kvTarget()
			if err != nil {
				return err
			}
			kv := e.Lab.Vault().KVv2(mount)
			old, err := kv.Get(ctx, path)
			if err != nil {
				return err
			}
			rotated := map[string]any{}
			for k, v := range old.Data {
				rotated[k] = v
			}
			newValue := randomSecret("rotated")
			e.Lab.Secrets().Add(newValue)
			rotated["POSTGRES_PASSWORD"] = newValue
			defer func() { // the KV value goes back to the demo's, whatever happened
				_, _ = kv.Put(context.Background(), path, old.Data)
			}()
			if _, err := kv.Put(ctx, path, rotated); err != nil {
				return err
			}
			latency, err := e.forceSyncUntil(ctx, probe, []byte(newValue))
			if err != nil {
				return err
			}
			r.Figure("sync-latency-ms", float64(latency.Milliseconds()))
			if _, err := kv.Put(ctx, path, old.Data); err != nil {
				return err
			}
			old1, _ := old.Data["POSTGRES_PASSWORD"].(string)
			if _, err := e.forceSyncUntil(ctx, probe, []byte(old1)); err != nil {
				return fmt.Errorf("restoring the value: %w", err)
			}
			return nil
		}},
		{"probe-removed", "the probe ExternalSecret and its Secret are removed", func(ctx context.Context, e *Env, r *Result) error {
			es, err := e.rotationProbe(ctx, probe)
			if err != nil {
				return err
			}
			if err := e.Kube.Delete(ctx, es); err != nil {
				return err
			}
			return e.Kube.WaitGone(ctx, secretObj(probe), time.Minute)
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
	es.SetAnnotations(map[string]string{"force-sync": fmt.Sprint(start.UnixNano())})
	if err := e.Kube.Apply(ctx, es); err != nil {
		return 0, err
	}
	var took time.Duration
	err = waitFor(ctx, "Secret "+name+" to carry the rotated value", syncWait, func(ctx context.Context) (bool, error) {
		s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if errors.IsNotFound(err) {
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
