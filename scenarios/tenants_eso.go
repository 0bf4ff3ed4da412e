package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/redact"
)

// The ESO half of chapter 15.05's tenants: stores and ExternalSecrets derived from the
// chapter-05 fixtures (10-secretstore-vault.yaml, 20-externalsecret-db-credentials.yaml), so
// that the served API version and this lab's Vault address come from one place (e.objects).

// tenantKey is the key the onboarded KV value is stored under (onboardTenant) and the key of
// the synced Secret.
const tenantKey = "password"

// onboardTenants writes the admin policy, makes a platform admin token and onboards each
// tenant with it: namespace, ESO ServiceAccount, policy, role and a random KV value. It
// returns the tenants' platform blocks and values by name.
func (e *Env) onboardTenants(ctx context.Context, names ...string) (map[string]fixtures.Platform, map[string]string, error) {
	p, err := e.writeAdminPolicy(ctx)
	if err != nil {
		return nil, nil, err
	}
	admin, _, err := e.platformAdmin(ctx)
	if err != nil {
		return nil, nil, err
	}
	onboarded, values := map[string]fixtures.Platform{}, map[string]string{}
	for _, name := range names {
		t, err := p.ForTenant(name)
		if err != nil {
			return nil, nil, err
		}
		if err := e.tenantNamespace(ctx, t); err != nil {
			return nil, nil, err
		}
		values[name] = randomSecret(name)
		if onboarded[name], err = e.onboardTenant(ctx, admin, name, values[name]); err != nil {
			return nil, nil, err
		}
	}
	return onboarded, values, nil
}

func tenantNS(t fixtures.Platform) string { return t.TenantRole.BoundServiceAccountNamespaces[0] }
func tenantSA(t fixtures.Platform) string { return t.TenantRole.BoundServiceAccountNames[0] }

// tenantStore is the chapter-05 SecretStore fixture turned into tenant t's store: kind
// SecretStore (in t's namespace) or ClusterSecretStore, Kubernetes auth with role, as t's ESO
// ServiceAccount, asking for audiences (none: the ServiceAccountRef has no audiences). A
// ClusterSecretStore names no namespace for the ServiceAccount: ESO then uses the
// ExternalSecret's, the "SA in the tenant ns" of the chapter.
func (e *Env) tenantStore(ctx context.Context, t fixtures.Platform, kind, name, role string, audiences []string) (*unstructured.Unstructured, error) {
	fx, err := e.find(ctx, sec+"10-secretstore-vault.yaml", "SecretStore", "")
	if err != nil {
		return nil, err
	}
	s := fx.DeepCopy()
	s.SetKind(kind)
	s.SetName(name)
	s.SetAnnotations(nil)
	s.SetNamespace("")
	if kind == "SecretStore" {
		s.SetNamespace(tenantNS(t))
	}
	k8s := []string{"spec", "provider", "vault", "auth", "kubernetes"}
	if _, ok, _ := unstructured.NestedMap(s.Object, k8s...); !ok {
		return nil, fmt.Errorf("the SecretStore fixture has no %s", strings.Join(k8s, "."))
	}
	_ = unstructured.SetNestedField(s.Object, role, append(k8s, "role")...)
	ref := map[string]any{"name": tenantSA(t)}
	if len(audiences) > 0 {
		var a []any
		for _, x := range audiences {
			a = append(a, x)
		}
		ref["audiences"] = a
	}
	_ = unstructured.SetNestedMap(s.Object, ref, append(k8s, "serviceAccountRef")...)
	return s, nil
}

// tenantExternalSecret is the chapter-05 ExternalSecret fixture turned into one that syncs
// key tenantKey of kvPath into Secret name in namespace, through the store kind/store.
func (e *Env) tenantExternalSecret(ctx context.Context, namespace, name, kind, store, kvPath string) (*unstructured.Unstructured, error) {
	fx, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
	if err != nil {
		return nil, err
	}
	es := fx.DeepCopy()
	es.SetNamespace(namespace)
	es.SetName(name)
	es.SetAnnotations(nil)
	unstructured.RemoveNestedField(es.Object, "spec", "target", "template")
	_ = unstructured.SetNestedField(es.Object, name, "spec", "target", "name")
	_ = unstructured.SetNestedMap(es.Object, map[string]any{"name": store, "kind": kind}, "spec", "secretStoreRef")
	_ = unstructured.SetNestedSlice(es.Object, []any{map[string]any{
		"secretKey": tenantKey,
		"remoteRef": map[string]any{"key": kvPath, "property": tenantKey},
	}}, "spec", "data")
	return es, nil
}

// applyOwned applies objs and registers their deletion (and the wait until they are gone)
// right after.
func (e *Env) applyOwned(ctx context.Context, objs ...*unstructured.Unstructured) error {
	for _, o := range objs {
		o := o
		if err := e.Kube.Apply(ctx, o); err != nil {
			return fmt.Errorf("apply %s %s: %w", o.GetKind(), kube.Name(o), err)
		}
		e.Defer("delete "+o.GetKind()+" "+kube.Name(o), func(ctx context.Context) error {
			if err := e.Kube.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			return e.Kube.WaitGone(ctx, o, e.Timeouts.Gone)
		})
	}
	return nil
}

// settled waits until obj's Ready condition is True, or False with a message (ESO has tried
// and said why), and returns it.
func (e *Env) settled(ctx context.Context, obj *unstructured.Unstructured) (kube.Condition, error) {
	var c kube.Condition
	err := waitFor(ctx, obj.GetKind()+" "+kube.Name(obj)+" to report Ready=True, or Ready=False with a reason", e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
		cur, err := e.Kube.Get(ctx, obj)
		if err != nil {
			return false, err
		}
		got, ok := conditionOf(cur, "Ready")
		if !ok {
			return false, nil
		}
		c = got
		return got.Status == "True" || (got.Status == "False" && got.Message != ""), nil
	})
	return c, err
}

// eventsOf lists the events about obj, oldest first, as "Reason: message" (redacted).
func (e *Env) eventsOf(ctx context.Context, obj *unstructured.Unstructured) ([]string, error) {
	list, err := e.Lab.Kube().CoreV1().Events(obj.GetNamespace()).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + obj.GetName() + ",involvedObject.kind=" + obj.GetKind(),
	})
	if err != nil {
		return nil, err
	}
	items := list.Items
	sort.SliceStable(items, func(i, j int) bool { return items[i].LastTimestamp.Before(&items[j].LastTimestamp) })
	var out []string
	for _, ev := range items {
		out = append(out, e.Lab.Secrets().String(ev.Reason+": "+ev.Message))
	}
	return out, nil
}

// secretsHolding names the Secrets of namespace that hold value in any key (as is or inside
// a longer value).
func (e *Env) secretsHolding(ctx context.Context, namespace string, value []byte) (holding []string, scanned int, err error) {
	list, err := e.Lab.Kube().CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, 0, err
	}
	for _, s := range list.Items {
		for k, v := range s.Data {
			if bytes.Contains(v, value) {
				holding = append(holding, s.Name+"/"+k)
			}
		}
		for k, v := range s.StringData {
			if strings.Contains(v, string(value)) {
				holding = append(holding, s.Name+"/"+k)
			}
		}
	}
	return holding, len(list.Items), nil
}

// secretValue is key of Secret namespace/name, waiting until the Secret exists.
func (e *Env) secretValue(ctx context.Context, namespace, name, key string) ([]byte, error) {
	var v []byte
	err := waitFor(ctx, "Secret "+namespace+"/"+name+" to exist", e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
		s, err := e.Lab.Kube().CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var ok bool
		v, ok = s.Data[key]
		if !ok {
			return false, fmt.Errorf("Secret %s/%s has no key %s", namespace, name, key)
		}
		return true, nil
	})
	return v, err
}

// crdField says whether the served CRD's schema at version has the field at path (each
// element a property name below the schema's root).
func (e *Env) crdField(ctx context.Context, crd, version string, path ...string) (bool, error) {
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	o, err := e.Lab.Dynamic().Resource(gvr).Get(ctx, crd, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("read CRD %s: %w", crd, err)
	}
	versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
	for _, v := range versions {
		m, _ := v.(map[string]any)
		if m["name"] != version {
			continue
		}
		node, ok, _ := unstructured.NestedMap(m, "schema", "openAPIV3Schema")
		if !ok {
			return false, fmt.Errorf("CRD %s %s has no openAPIV3Schema", crd, version)
		}
		for _, p := range path {
			next, ok, _ := unstructured.NestedMap(node, "properties", p)
			if !ok {
				return false, nil
			}
			node = next
		}
		return true, nil
	}
	return false, fmt.Errorf("CRD %s has no version %s", crd, version)
}

// mentionsDenied says whether any of texts carries Vault's "permission denied".
func mentionsDenied(texts ...string) bool {
	for _, t := range texts {
		if strings.Contains(strings.ToLower(t), "permission denied") {
			return true
		}
	}
	return false
}

// Names of what the ESO half creates.
const (
	tenantStoreName   = "vault-tenant"             // each tenant's SecretStore
	noAudienceStore   = "vault-tenant-no-audience" // a store that does not ask for the audience
	tenantESName      = "catalog-db-credentials"   // the chapter's ExternalSecret name
	crossTenantES     = "cross-tenant-probe"
	noAudienceES      = "no-audience-probe"
	clusterStoreName  = "vault-bookstore-platform" // the chapter's ClusterSecretStore
	clusterStoreESSfx = "-via-cluster-store"
)

// audiencesPath is where a Vault store's Kubernetes auth asks for token audiences.
var audiencesPath = []string{"spec", "provider", "vault", "auth", "kubernetes", "serviceAccountRef", "audiences"}

// tenantsESO is what the ESO checks of tenants hand on.
type tenantsESO struct {
	hasAudiences bool // the served SecretStore schema has serviceAccountRef.audiences
}

// storeAudiences is what a tenant's store asks for: the role's audience, when the served
// schema lets it.
func (x *tenantsESO) storeAudiences(t fixtures.Platform) []string {
	if !x.hasAudiences {
		return nil
	}
	return audiences(t)
}

func (x *tenantsESO) audiencesField(ctx context.Context, e *Env, r *Result) error {
	fx, err := e.find(ctx, sec+"10-secretstore-vault.yaml", "SecretStore", "")
	if err != nil {
		return err
	}
	version := strings.TrimPrefix(fx.GetAPIVersion(), esGroup+"/")
	var seen []string
	x.hasAudiences = true
	for _, crd := range []string{"secretstores." + esGroup, "clustersecretstores." + esGroup} {
		ok, err := e.crdField(ctx, crd, version, audiencesPath...)
		if err != nil {
			return err
		}
		x.hasAudiences = x.hasAudiences && ok
		seen = append(seen, fmt.Sprintf("%s %s: %s", crd, version, presentOrAbsent(ok)))
	}
	r.Note("%s.%s in the served schema: %s", "serviceAccountRef", "audiences", strings.Join(seen, ", "))
	if !x.hasAudiences {
		r.Note("absent: the stores cannot ask for the role's audience, so they log in with the API server's default audience")
	}
	return nil
}

func presentOrAbsent(ok bool) string {
	if ok {
		return "present"
	}
	return "absent"
}

func (x *tenantsESO) storesReady(ctx context.Context, e *Env, r *Result, onboarded map[string]fixtures.Platform, names []string) error {
	for _, name := range names {
		t := onboarded[name]
		s, err := e.tenantStore(ctx, t, "SecretStore", tenantStoreName, t.TenantRole.Name, x.storeAudiences(t))
		if err != nil {
			return err
		}
		if err := e.applyOwned(ctx, s); err != nil {
			return err
		}
		c, err := e.Kube.WaitCondition(ctx, s, "Ready", e.Timeouts.Sync)
		if err != nil {
			return err
		}
		r.Note("%s: Ready (%s), role %s, audiences %v", kube.Name(s), c.Reason, t.TenantRole.Name, x.storeAudiences(t))
	}
	return nil
}

func (x *tenantsESO) ownValue(ctx context.Context, e *Env, r *Result, onboarded map[string]fixtures.Platform, values map[string]string, names []string) error {
	for _, name := range names {
		t := onboarded[name]
		es, err := e.tenantExternalSecret(ctx, tenantNS(t), tenantESName, "SecretStore", tenantStoreName, t.KVPath)
		if err != nil {
			return err
		}
		if err := e.applyOwned(ctx, es); err != nil {
			return err
		}
		c, err := e.Kube.WaitCondition(ctx, es, "Ready", e.Timeouts.Sync)
		if err != nil {
			return err
		}
		got, err := e.secretValue(ctx, tenantNS(t), tenantESName, tenantKey)
		if err != nil {
			return err
		}
		if want := []byte(values[name]); !bytes.Equal(got, want) {
			return fmt.Errorf("Secret %s/%s key %s is %s, want %s (tenant %s's value)", tenantNS(t), tenantESName, tenantKey, redact.Fingerprint(got), redact.Fingerprint(want), name)
		}
		r.Note("%s/%s: Ready (%s), key %s matches %s's value by fingerprint", tenantNS(t), tenantESName, c.Reason, tenantKey, name)
	}
	return nil
}

// deniedWhere waits until obj's status or events carry Vault's "permission denied" and says
// where it showed (status, events, or both), with the texts seen.
func (e *Env) deniedWhere(ctx context.Context, obj *unstructured.Unstructured) (where string, status kube.Condition, events []string, err error) {
	err = waitFor(ctx, "Vault's \"permission denied\" in the status or events of "+obj.GetKind()+" "+kube.Name(obj), e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
		cur, err := e.Kube.Get(ctx, obj)
		if err != nil {
			return false, err
		}
		status, _ = conditionOf(cur, "Ready")
		if events, err = e.eventsOf(ctx, obj); err != nil {
			return false, err
		}
		inStatus, inEvents := mentionsDenied(status.Message), mentionsDenied(events...)
		switch {
		case inStatus && inEvents:
			where = "status and events"
		case inStatus:
			where = "status"
		case inEvents:
			where = "events only (the status does not say it)"
		}
		return where != "", nil
	})
	return where, status, events, err
}

func (x *tenantsESO) crossTenant(ctx context.Context, e *Env, r *Result, a, b fixtures.Platform, bValue []byte) error {
	es, err := e.tenantExternalSecret(ctx, tenantNS(a), crossTenantES, "SecretStore", tenantStoreName, b.KVPath)
	if err != nil {
		return err
	}
	if err := e.applyOwned(ctx, es); err != nil {
		return err
	}
	c, err := e.settled(ctx, es)
	if err != nil {
		return err
	}
	synced := c.Status == "True"
	holding, scanned, err := e.secretsHolding(ctx, tenantNS(a), bValue)
	if err != nil {
		return err
	}
	r.Claim("C15-05", !synced && len(holding) == 0, "through ESO: an ExternalSecret in A's namespace pointed at B's path is not synced and no Secret there holds B's value")
	if synced {
		return fmt.Errorf("ExternalSecret %s synced %s's path %s: Ready=True %s", kube.Name(es), b.TenantRole.Name, b.KVPath, c.Reason)
	}
	if len(holding) > 0 {
		return fmt.Errorf("%d Secret key(s) in %s hold %s's value: %v", len(holding), tenantNS(a), b.TenantRole.Name, holding)
	}
	where, status, events, err := e.deniedWhere(ctx, es)
	r.Note("Ready=%s reason %s, status message %q; events %q", status.Status, status.Reason, status.Message, events)
	r.Note("no Secret of the %d in %s holds %s's value (by content)", scanned, tenantNS(a), b.TenantRole.Name)
	if err != nil {
		return fmt.Errorf("Vault's permission denied shows neither in the status nor in the events: %w", err)
	}
	r.Note("Vault's permission denied shows in the %s", where)
	return nil
}

func (x *tenantsESO) withoutAudience(ctx context.Context, e *Env, r *Result, a fixtures.Platform, aValue []byte) error {
	if len(audiences(a)) == 0 {
		r.Skip("the tenant role sets no audience")
		return nil
	}
	s, err := e.tenantStore(ctx, a, "SecretStore", noAudienceStore, a.TenantRole.Name, nil)
	if err != nil {
		return err
	}
	if err := e.applyOwned(ctx, s); err != nil {
		return err
	}
	sc, err := e.settled(ctx, s)
	if err != nil {
		return err
	}
	es, err := e.tenantExternalSecret(ctx, tenantNS(a), noAudienceES, "SecretStore", noAudienceStore, a.KVPath)
	if err != nil {
		return err
	}
	if err := e.applyOwned(ctx, es); err != nil {
		return err
	}
	ec, err := e.settled(ctx, es)
	if err != nil {
		return err
	}
	events, err := e.eventsOf(ctx, es)
	if err != nil {
		return err
	}
	storeEvents, err := e.eventsOf(ctx, s)
	if err != nil {
		return err
	}
	r.Note("store %s (no audiences): Ready=%s %s %q; events %q", kube.Name(s), sc.Status, sc.Reason, sc.Message, storeEvents)
	r.Note("ExternalSecret %s through it: Ready=%s %s %q; events %q", kube.Name(es), ec.Status, ec.Reason, ec.Message, events)
	synced := ec.Status == "True"
	if synced {
		got, err := e.secretValue(ctx, tenantNS(a), noAudienceES, tenantKey)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, aValue) {
			return fmt.Errorf("Secret %s/%s is %s, want %s", tenantNS(a), noAudienceES, redact.Fingerprint(got), redact.Fingerprint(aValue))
		}
	}
	r.Claim("C15-06", !synced, "through ESO: a store that does not ask for audience "+audiences(a)[0]+" cannot sync")
	if !synced {
		r.Note("finding: without serviceAccountRef.audiences ESO's token has the API server's audience and the role refuses it")
		if sc.Status == "True" {
			r.Note("the store itself is Ready=True: only the ExternalSecret shows the refusal")
		}
	}
	return nil
}

func (x *tenantsESO) clusterStore(ctx context.Context, e *Env, r *Result, onboarded map[string]fixtures.Platform, values map[string]string, names []string) error {
	first := onboarded[names[0]]
	css, err := e.tenantStore(ctx, first, "ClusterSecretStore", clusterStoreName, first.TenantRole.Name, x.storeAudiences(first))
	if err != nil {
		return err
	}
	if err := e.applyOwned(ctx, css); err != nil {
		return err
	}
	// Ready=True is what the chapter expects; when it does not come, say how it settled
	cc, err := e.Kube.WaitCondition(ctx, css, "Ready", e.Timeouts.Sync)
	if err != nil {
		if cc, err = e.settled(ctx, css); err != nil {
			return err
		}
	}
	r.Note("ClusterSecretStore %s (role %s, ServiceAccount %s in the ExternalSecret's namespace): Ready=%s %s %q", clusterStoreName, first.TenantRole.Name, tenantSA(first), cc.Status, cc.Reason, cc.Message)
	all := cc.Status == "True"
	for _, name := range names {
		t := onboarded[name]
		esName := tenantESName + clusterStoreESSfx
		es, err := e.tenantExternalSecret(ctx, tenantNS(t), esName, "ClusterSecretStore", clusterStoreName, t.KVPath)
		if err != nil {
			return err
		}
		if err := e.applyOwned(ctx, es); err != nil {
			return err
		}
		c, err := e.settled(ctx, es)
		if err != nil {
			return err
		}
		if c.Status == "True" {
			got, err := e.secretValue(ctx, tenantNS(t), esName, tenantKey)
			if err != nil {
				return err
			}
			if want := []byte(values[name]); !bytes.Equal(got, want) {
				return fmt.Errorf("Secret %s/%s is %s, want %s (tenant %s's value)", tenantNS(t), esName, redact.Fingerprint(got), redact.Fingerprint(want), name)
			}
			r.Note("%s: synced (%s), its own value", kube.Name(es), c.Reason)
			continue
		}
		all = false
		events, err := e.eventsOf(ctx, es)
		if err != nil {
			return err
		}
		r.Note("%s: Ready=%s %s %q; events %q", kube.Name(es), c.Status, c.Reason, c.Message, events)
		// whatever the store's single role, another tenant's value never lands here
		for other, v := range values {
			if other == name {
				continue
			}
			holding, _, err := e.secretsHolding(ctx, tenantNS(t), []byte(v))
			if err != nil {
				return err
			}
			if len(holding) > 0 {
				return fmt.Errorf("Secrets in %s hold %s's value: %v", tenantNS(t), other, holding)
			}
		}
	}
	r.Claim("C15-20", all, "the ClusterSecretStore and every tenant's ExternalSecret through it")
	return nil
}
