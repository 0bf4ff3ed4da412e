package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/lab"
)

// The break-glass fixtures and names (fixtures/bookstore/break-glass).
const (
	bgDir        = fixtures.BreakGlassDir + "/"
	bgRBAC       = bgDir + "05-copier-rbac.yaml"
	bgCronJob    = bgDir + "10-copier-cronjob.yaml"
	bgCatalog    = bgDir + "20-catalog-break-glass.yaml"
	bgSecret     = "db-credentials-break-glass"
	bgSA         = "break-glass-copier"
	bgVaultRole  = "bookstore-break-glass"
	bgPolicy     = "bookstore-break-glass"
	bgSource     = "db-credentials-synced" // the scenario's own ExternalSecret (and Secret)
	bgCopiedAt   = "break-glass.secretslab.io/copied-at"
	bgSourceVers = "break-glass.secretslab.io/source-version"
)

// vaultStaysDown: the lab's Vault stays down once every node is stopped. A Raft node comes
// back sealed (down until unsealed); on embedded a stopped dev server stays stopped; on kind
// or a cluster the StatefulSet restarts the dev pod at once, unsealed, so the outage would be
// seconds long and not under the scenario's control.
var vaultStaysDown = Requirement{
	Name: "a Vault that stays down when stopped (HA, or the embedded dev server)",
	Met:  func(e *Env) bool { return len(e.Lab.VaultNodes()) >= 3 || e.Lab.Backend() == lab.BackendEmbedded },
	Why:  "run with HA=1: on kind the dev pod is restarted unsealed as soon as it is killed",
}

// breakGlass: chapter 15.05's defence against a multi-hour Vault outage, "a break-glass Secret
// in each tenant ns containing the current credentials, refreshed every 24h by a CronJob that
// reads from Vault. If Vault becomes unavailable, existing Pods keep running, new Pods start
// (they read the break-glass Secret)" (claim C15-17).
//
// The copy is the chapter's CronJob, not a second ExternalSecret. An ExternalSecret's target
// does survive an outage (ESO keeps the last synced Secret and only reports the error), but it
// is the same machinery whose failure the break-glass copy is for: it is owned by its
// ExternalSecret (deleted with it), needs ESO running, and a new ExternalSecret cannot produce
// its Secret at all while Vault is down. The CronJob's copy is a plain Secret nothing owns,
// written by a separate identity (ServiceAccount break-glass-copier, Vault role and policy
// bookstore-break-glass: read secret/data/bookstore/db, nothing else; RBAC: get and update of
// that one Secret, no create), by `bookstore break-glass`, the bookstore image's copier.
// On kind the CronJob is applied and the scenario starts a Job from it as `kubectl create job
// --from=cronjob/...` does (the 24h schedule is not waited for); on embedded the CronJob is
// stored but there is no CronJob controller or kubelet, so the same Job runs as a host process
// with the environment the pod would get (Lab.Deploy: its token, the API address, VAULT_ADDR).
//
// Vault HA (3 Raft nodes, Shamir) comes back sealed with its data and is unsealed. A dev
// server comes back unsealed and empty (claim C05-17, observed): the scenario then writes again
// what vault-config wrote (Kubernetes auth, policy, role, the KV value) and the copier's policy
// and role, as an operator would have to. The scenario syncs its own
// ExternalSecret db-credentials-synced (the db-credentials fixture renamed, template and all):
// swap's db-credentials may have been reverted by the time it runs, and the running catalog is
// whatever baseline/swap/revert left, which serves on its env copy either way.
func breakGlass() Scenario {
	var (
		synced      map[string][]byte // the ESO-synced Secret before the outage
		copiedAt    time.Time         // the first copy
		nodes       []lab.VaultNode
		outageStart time.Time
		outageEnd   time.Time
		copyRV      string // the copy's resourceVersion when Vault went down
		jobs        int
	)
	// runCopier starts a Job from the CronJob (backoffLimit as given; nil: the template's) and
	// waits until it completes, or returns the Job's failure.
	runCopier := func(ctx context.Context, e *Env, backoff *int64) error {
		jobs++
		name := fmt.Sprintf("%s-manual-%d", bgSecret, jobs)
		manifest, err := e.jobFromCronJob(ctx, name, backoff)
		if err != nil {
			return err
		}
		e.Defer("delete Job "+name, func(ctx context.Context) error {
			bg := metav1.DeletePropagationBackground
			err := e.Lab.Kube().BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
		_, err = e.Lab.Deploy(ctx, manifest)
		return err
	}
	return Scenario{Name: "break-glass", Title: "a CronJob's break-glass copy of the credentials keeps the catalog starting through a full Vault outage",
		Needs: []string{"vault-config"}, Requires: []Requirement{vaultStaysDown, Disruptive}, Checks: []Check{
			{"source-synced", "an ExternalSecret syncs the credentials from Vault (the db-credentials fixture, as " + bgSource + ")", func(ctx context.Context, e *Env, r *Result) error {
				if _, err := e.apply(ctx, sec+"10-secretstore-vault.yaml"); err != nil {
					return err
				}
				es, err := e.bgSourceES(ctx)
				if err != nil {
					return err
				}
				if err := e.Kube.Apply(ctx, es); err != nil {
					return err
				}
				e.Defer("delete the ExternalSecret "+bgSource+" and its Secret", func(ctx context.Context) error {
					if err := e.Kube.Delete(ctx, es); err != nil {
						return err
					}
					return e.Kube.WaitGone(ctx, secretObj(bgSource), e.Timeouts.Gone)
				})
				if _, err := e.Kube.WaitCondition(ctx, es, "Ready", e.Timeouts.Sync); err != nil {
					return err
				}
				err = waitFor(ctx, "Secret "+ns+"/"+bgSource+" to exist", e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
					d, err := e.secretData(ctx, bgSource)
					if apierrors.IsNotFound(err) {
						return false, nil
					}
					synced = d
					return err == nil && len(d) > 0, err
				})
				if err != nil {
					return err
				}
				r.Note("keys %v", keyNames(synced))
				return nil
			}},
			{"copier-ready", "the copier's least-privilege identity: Vault policy and role, ServiceAccount, Role on one Secret, the CronJob", func(ctx context.Context, e *Env, r *Result) error {
				if err := e.bgWriteVault(ctx); err != nil {
					return err
				}
				e.Defer("delete Vault policy "+bgPolicy+" and role "+bgVaultRole, func(ctx context.Context) error {
					if _, err := e.Lab.Vault().Logical().DeleteWithContext(ctx, "auth/kubernetes/role/"+bgVaultRole); err != nil {
						return err
					}
					_, err := e.Lab.Vault().Logical().DeleteWithContext(ctx, "sys/policies/acl/"+bgPolicy)
					return err
				})
				objs, err := e.objects(bgRBAC)
				if err != nil {
					return err
				}
				if err := e.Kube.Apply(ctx, objs...); err != nil {
					return err
				}
				e.Defer("delete the copier's ServiceAccount, Role, RoleBinding and Secret "+bgSecret, func(ctx context.Context) error {
					return e.Kube.Delete(ctx, objs...)
				})
				cj, err := e.bgCronJob()
				if err != nil {
					return err
				}
				if err := e.Kube.Apply(ctx, cj); err != nil {
					return err
				}
				e.Defer("delete CronJob "+cj.GetName(), func(ctx context.Context) error { return e.Kube.Delete(ctx, cj) })
				// least privilege, observed: the copier's token reads the one path, nothing else
				c, auth, err := e.loginAs(ctx, ns, bgSA, bgVaultRole, nil)
				if err != nil {
					return err
				}
				mount, path, _, err := kvTarget()
				if err != nil {
					return err
				}
				if _, err := c.KVv2(mount).Get(ctx, path); err != nil {
					return fmt.Errorf("the copier's token cannot read %s/data/%s: %w", mount, path, err)
				}
				dbMount, _, _, dbRole, _, err := dbSetup("")
				if err != nil {
					return err
				}
				denied, err := deniedBeyondKV(ctx, c, "the copier's token", mount, path, map[string]func() error{
					"read " + dbMount + "/creds/" + dbRole: func() error {
						_, err := c.Logical().ReadWithContext(ctx, dbMount+"/creds/"+dbRole)
						return err
					},
				})
				if err != nil {
					return err
				}
				_ = c.Auth().Token().RevokeSelfWithContext(ctx, "")
				r.Note("Vault policies %v; the copier's token reads %s/data/%s and is denied %d other requests", auth.Policies, mount, path, denied)
				return nil
			}},
			{"copy-made", "a Job from the CronJob copies the credentials: the synced Secret's keys, each with the same fingerprint", func(ctx context.Context, e *Env, r *Result) error {
				start := time.Now()
				if err := runCopier(ctx, e, nil); err != nil {
					return err
				}
				r.Figure("copy-seconds", since(start))
				s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, bgSecret, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if d := DiffData(synced, s.Data); d != "" {
					return fmt.Errorf("the break-glass copy differs from the synced Secret %s: %s", bgSource, d)
				}
				if copiedAt, err = time.Parse(time.RFC3339Nano, s.Annotations[bgCopiedAt]); err != nil {
					return fmt.Errorf("annotation %s: %w", bgCopiedAt, err)
				}
				r.Note("%s: %s (KV version %s), the same as %s", bgSecret, fingerprints(s.Data), s.Annotations[bgSourceVers], bgSource)
				return nil
			}},
			{"vault-down", "every Vault node is stopped: each one unreachable or sealed", func(ctx context.Context, e *Env, r *Result) error {
				nodes = e.Lab.VaultNodes()
				e.Defer("bring Vault back (HA: restart, unseal, 3 healthy voters; dev: restart and write vault-config's data again)", func(ctx context.Context) error {
					_, err := e.bgRestoreVault(ctx, nodes)
					return err
				})
				s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, bgSecret, metav1.GetOptions{})
				if err != nil {
					return err
				}
				copyRV = s.ResourceVersion
				outageStart = time.Now()
				for _, n := range nodes {
					if err := n.Kill(ctx); err != nil {
						return err
					}
				}
				// a killed pod's container can answer for a moment after its deletion
				var state string
				err = waitFor(ctx, "every Vault node to be unreachable or sealed after the kill", e.Timeouts.Failover, func(ctx context.Context) (bool, error) {
					var down bool
					down, state = e.vaultAllDown(ctx, nodes)
					return down, nil
				})
				r.Note("%s", state)
				if err != nil {
					return fmt.Errorf("after killing every node: %s: %w", state, err)
				}
				return nil
			}},
			{"existing-serve", "the running catalog keeps serving /books while Vault is down", func(ctx context.Context, e *Env, r *Result) error {
				if e.State.Catalog == nil {
					return errNoCatalog
				}
				n, err := booksFrom(ctx, e.State.Catalog.URL(), e.Timeouts.Serve)
				if err != nil {
					return err
				}
				r.Figure("books", float64(n))
				if down, state := e.vaultAllDown(ctx, nodes); !down {
					return fmt.Errorf("Vault came back while the catalog was asked: %s", state)
				}
				return nil
			}},
			{"copier-fails-safe", "the copier, run while Vault is down, fails and leaves the copy as it was", func(ctx context.Context, e *Env, r *Result) error {
				zero := int64(0) // one attempt: the point is the failure, not the retries
				err := runCopier(ctx, e, &zero)
				if err == nil {
					return fmt.Errorf("the copier succeeded while every Vault node was down")
				}
				r.Note("the copier failed: %s", e.Lab.Secrets().String(cut(err.Error(), 200)))
				s, gerr := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, bgSecret, metav1.GetOptions{})
				if gerr != nil {
					return gerr
				}
				if s.ResourceVersion != copyRV {
					return fmt.Errorf("the copy changed (resourceVersion %s, was %s)", s.ResourceVersion, copyRV)
				}
				return nil
			}},
			{"eso-reports-error", "a forced sync of the ExternalSecret fails: Ready=False with the Vault error; its Secret is kept unchanged", func(ctx context.Context, e *Env, r *Result) error {
				es, err := e.bgSourceES(ctx)
				if err != nil {
					return err
				}
				start := time.Now()
				if err := e.requestSync(ctx, es); err != nil {
					return err
				}
				var ready conditionSeen
				err = waitFor(ctx, "ExternalSecret "+bgSource+" to report Ready=False after a forced sync", e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
					cur, err := e.Kube.Get(ctx, es)
					if err != nil {
						return false, err
					}
					c, ok := conditionOf(cur, "Ready")
					ready = conditionSeen{c, ok}
					return ok && c.Status == "False", nil
				})
				if err != nil {
					return fmt.Errorf("%w (last Ready: %s)", err, ready)
				}
				r.Figure("error-seconds", since(start))
				r.Note("condition Ready=%s reason %s: %s", ready.Status, ready.Reason, e.Lab.Secrets().String(cut(ready.Message, 240)))
				// the condition's message is ESO's summary; its Warning event says what Vault answered
				if ev, err := e.Lab.Kube().CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + bgSource + ",type=Warning"}); err == nil && len(ev.Items) > 0 {
					last := ev.Items[0]
					for _, it := range ev.Items {
						if it.LastTimestamp.After(last.LastTimestamp.Time) {
							last = it
						}
					}
					r.Note("%d Warning events; the latest, reason %s: %s", len(ev.Items), last.Reason, e.Lab.Secrets().String(cut(last.Message, 240)))
				}
				got, err := e.secretData(ctx, bgSource)
				if err != nil {
					return fmt.Errorf("the synced Secret %s after the failed sync: %w", bgSource, err)
				}
				if d := DiffData(synced, got); d != "" {
					return fmt.Errorf("the synced Secret changed during the outage: %s", d)
				}
				if down, state := e.vaultAllDown(ctx, nodes); !down {
					return fmt.Errorf("Vault came back during the check: %s", state)
				}
				return nil
			}},
			{"new-pod-serves", "a new catalog (Deployment catalog-break-glass, DB_DSN from the break-glass copy) starts and serves /books while Vault is down", func(ctx context.Context, e *Env, r *Result) error {
				manifest, err := fixtures.Manifest(bgCatalog)
				if err != nil {
					return err
				}
				objs, err := e.objects(bgCatalog)
				if err != nil {
					return err
				}
				var w lab.Workload
				e.Defer("stop catalog-break-glass and delete its Deployment and Service", func(ctx context.Context) error {
					if w != nil {
						if err := w.Stop(ctx); err != nil {
							return err
						}
					}
					return e.Kube.Delete(ctx, objs...)
				})
				start := time.Now()
				w, err = e.Lab.Deploy(ctx, manifest)
				if err != nil {
					r.Claim("C15-17", false, "a catalog Deployment on the break-glass Secret did not become ready while every Vault node was down")
					return err
				}
				n, err := booksFrom(ctx, w.URL(), e.Timeouts.Serve)
				age := time.Since(copiedAt)
				down, state := e.vaultAllDown(ctx, nodes)
				if err != nil {
					r.Claim("C15-17", false, "a catalog on the break-glass Secret started while Vault was down but did not serve /books")
					return err
				}
				if !down {
					return fmt.Errorf("Vault came back before the new catalog served: %s", state)
				}
				r.Figure("start-seconds", since(start))
				r.Figure("books", float64(n))
				r.Figure("break-glass-age-seconds", age.Seconds())
				r.Claim("C15-17", true, fmt.Sprintf("with every Vault node down (%s), a new catalog Deployment reading DB_DSN from the break-glass copy (%.0fs old) started and served /books (%d books)", state, age.Seconds(), n))
				return nil
			}},
			{"vault-back", "Vault returns: HA, every node restarted and unsealed, 3 healthy voters; dev, the server restarted and, as it comes back empty, vault-config's data written again", func(ctx context.Context, e *Env, r *Result) error {
				start := time.Now()
				lost, err := e.bgRestoreVault(ctx, nodes)
				if err != nil {
					return err
				}
				if lost != "" {
					r.Claim("C05-17", strings.HasPrefix(lost, "lost"), "after a restart the dev server "+lost)
					r.Note("dev server after its restart: %s; vault-config's auth, policy, role and KV value written again", lost)
				}
				outageEnd = time.Now()
				r.Figure("restore-seconds", since(start))
				r.Figure("outage-seconds", outageEnd.Sub(outageStart).Seconds())
				return nil
			}},
			{"eso-resyncs", "a forced sync succeeds again: Ready=True, the Secret as before", func(ctx context.Context, e *Env, r *Result) error {
				es, err := e.bgSourceES(ctx)
				if err != nil {
					return err
				}
				start := time.Now()
				if err := e.requestSync(ctx, es); err != nil {
					return err
				}
				// ESO may be backing off after the errors; the annotation change wakes it
				c, err := e.Kube.WaitCondition(ctx, es, "Ready", e.Timeouts.Sync+e.Timeouts.Failover)
				if err != nil {
					return err
				}
				r.Figure("resync-seconds", since(start))
				r.Note("Ready=True reason %s", c.Reason)
				got, err := e.secretData(ctx, bgSource)
				if err != nil {
					return err
				}
				if d := DiffData(synced, got); d != "" {
					return fmt.Errorf("the synced Secret after the outage: %s", d)
				}
				return nil
			}},
			{"copy-refreshed", "the copier runs again: the copy's copied-at moves past the outage, same keys and fingerprints", func(ctx context.Context, e *Env, r *Result) error {
				if err := runCopier(ctx, e, nil); err != nil {
					return err
				}
				s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, bgSecret, metav1.GetOptions{})
				if err != nil {
					return err
				}
				at, err := time.Parse(time.RFC3339Nano, s.Annotations[bgCopiedAt])
				if err != nil {
					return fmt.Errorf("annotation %s: %w", bgCopiedAt, err)
				}
				if !at.After(outageEnd) || !at.After(copiedAt) {
					return fmt.Errorf("copied-at %s is not after the outage's end %s", at.Format(time.RFC3339), outageEnd.Format(time.RFC3339))
				}
				if d := DiffData(synced, s.Data); d != "" {
					return fmt.Errorf("the refreshed copy differs from the synced Secret: %s", d)
				}
				r.Figure("copy-moved-seconds", at.Sub(copiedAt).Seconds())
				r.Note("copied-at moved by %.0fs; %s", at.Sub(copiedAt).Seconds(), fingerprints(s.Data))
				return nil
			}},
		}}
}

type conditionSeen struct {
	kube.Condition
	ok bool
}

func (c conditionSeen) String() string {
	if !c.ok {
		return "none"
	}
	return c.Status + "/" + c.Reason
}

// bgSourceES is the db-credentials ExternalSecret fixture under the name bgSource.
func (e *Env) bgSourceES(ctx context.Context) (*unstructured.Unstructured, error) {
	es, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
	if err != nil {
		return nil, err
	}
	es = es.DeepCopy()
	es.SetName(bgSource)
	es.SetAnnotations(nil)
	if err := unstructured.SetNestedField(es.Object, bgSource, "spec", "target", "name"); err != nil {
		return nil, err
	}
	return es, nil
}

// bgCronJob is the copier's CronJob fixture with VAULT_ADDR set to where this lab reaches
// Vault (the address its ESO uses; a pod's on kind, the host's on embedded).
func (e *Env) bgCronJob() (*unstructured.Unstructured, error) {
	objs, err := e.objects(bgCronJob)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 || objs[0].GetKind() != "CronJob" {
		return nil, fmt.Errorf("%s: want one CronJob", bgCronJob)
	}
	cj := objs[0]
	cs, _, _ := unstructured.NestedSlice(cj.Object, "spec", "jobTemplate", "spec", "template", "spec", "containers")
	set := false
	for _, c := range cs {
		env, _ := c.(map[string]any)["env"].([]any)
		for _, v := range env {
			m, _ := v.(map[string]any)
			if m["name"] == "VAULT_ADDR" {
				m["value"] = e.Lab.VaultAddrForESO()
				set = true
			}
		}
	}
	if !set {
		return nil, fmt.Errorf("%s: no VAULT_ADDR in the container's env", bgCronJob)
	}
	if err := unstructured.SetNestedSlice(cj.Object, cs, "spec", "jobTemplate", "spec", "template", "spec", "containers"); err != nil {
		return nil, err
	}
	return cj, nil
}

// jobFromCronJob is what `kubectl create job NAME --from=cronjob/...` makes: the CronJob's
// jobTemplate as a Job, owned by the CronJob, annotated as started by hand.
func (e *Env) jobFromCronJob(ctx context.Context, name string, backoffLimit *int64) ([]byte, error) {
	want, err := e.bgCronJob()
	if err != nil {
		return nil, err
	}
	cj, err := e.Kube.Get(ctx, want)
	if err != nil {
		return nil, err
	}
	spec, _, _ := unstructured.NestedMap(cj.Object, "spec", "jobTemplate", "spec")
	if spec == nil {
		return nil, fmt.Errorf("CronJob %s has no jobTemplate", cj.GetName())
	}
	if backoffLimit != nil {
		spec["backoffLimit"] = *backoffLimit
	}
	job := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "batch/v1", "kind": "Job", "spec": spec}}
	job.SetName(name)
	job.SetNamespace(ns)
	job.SetAnnotations(map[string]string{"cronjob.kubernetes.io/instantiate": "manual"})
	t := true
	job.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.GetName(), UID: cj.GetUID(), Controller: &t, BlockOwnerDeletion: &t}})
	return json.Marshal(job.Object)
}

// vaultAllDown asks every node for its seal status (each within a few seconds): down when
// none answers unsealed. It says what each node answered.
func (e *Env) vaultAllDown(ctx context.Context, nodes []lab.VaultNode) (bool, string) {
	down := true
	var parts []string
	for _, n := range nodes {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := n.Client().Sys().SealStatusWithContext(c)
		cancel()
		switch {
		case err != nil:
			parts = append(parts, n.Name()+" unreachable")
		case st.Sealed:
			parts = append(parts, n.Name()+" sealed")
		default:
			parts = append(parts, n.Name()+" UNSEALED")
			down = false
		}
	}
	return down, strings.Join(parts, ", ")
}

// fingerprints lists each key with its length and keyed fingerprint, never the value.
func fingerprints(data map[string][]byte) string {
	var out []string
	for _, k := range keyNames(data) {
		out = append(out, fmt.Sprintf("%s(%d bytes, %s)", k, len(data[k]), redact.Fingerprint(data[k])))
	}
	return strings.Join(out, ", ")
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// bgWriteVault writes the copier's policy (fixture) and Kubernetes auth role. The chapter's
// roles have no audience (bookstore-eso neither): Vault accepts the pod's default-audience
// token.
func (e *Env) bgWriteVault(ctx context.Context) error {
	hcl, err := fixtures.Policy(bgPolicy)
	if err != nil {
		return err
	}
	v := e.Lab.Vault()
	if _, err := v.Logical().WriteWithContext(ctx, "sys/policies/acl/"+bgPolicy, map[string]any{"policy": hcl}); err != nil {
		return err
	}
	_, err = v.Logical().WriteWithContext(ctx, "auth/kubernetes/role/"+bgVaultRole, map[string]any{
		"bound_service_account_names": []string{bgSA}, "bound_service_account_namespaces": []string{ns},
		"policies": []string{bgPolicy}, "token_ttl": "5m", "token_max_ttl": "10m",
	})
	return err
}

// bgRestoreVault brings Vault back after every node was stopped (restoreVault) and writes
// the copier's policy and role again.
func (e *Env) bgRestoreVault(ctx context.Context, nodes []lab.VaultNode) (string, error) {
	lost, err := e.restoreVault(ctx, nodes)
	if err != nil {
		return lost, err
	}
	return lost, e.bgWriteVault(ctx)
}
