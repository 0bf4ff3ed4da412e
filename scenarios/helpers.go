package scenarios

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/proc"
)

const (
	raw      = "bookstore/raw-manifests/"
	sec      = "bookstore/secrets/"
	ns       = "bookstore"
	esGroup  = "external-secrets.io"
	genGroup = "generators.external-secrets.io"
	esoSA    = "bookstore-eso"
)

// objects decodes a fixture and adapts it to this lab: ESO objects are moved to a served
// API version (one source of truth: the fixture names its version; if the cluster does not
// serve it, the preferred served one is used), and the Vault server address is the backend's.
func (e *Env) objects(path string) ([]*unstructured.Unstructured, error) {
	raw, err := fixtures.Manifest(path)
	if err != nil {
		return nil, err
	}
	objs, err := kube.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, o := range objs {
		gv := strings.SplitN(o.GetAPIVersion(), "/", 2)
		if len(gv) == 2 && (gv[0] == esGroup) {
			v, err := e.servedVersion(gv[0], gv[1])
			if err != nil {
				return nil, err
			}
			o.SetAPIVersion(gv[0] + "/" + v)
		}
		if _, err := fixtures.SetVaultServer(o, e.Lab.VaultAddrForESO()); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return objs, nil
}

// servedVersion returns want if the group serves it, else the first (preferred) served one.
func (e *Env) servedVersion(group, want string) (string, error) {
	if group == esGroup && e.State.ESVersion != "" && e.State.ESVersion != want {
		return e.State.ESVersion, nil
	}
	served, err := e.Kube.ServedVersions(group)
	if err != nil {
		return "", err
	}
	if len(served) == 0 {
		return "", fmt.Errorf("the cluster serves no version of %s (is ESO installed?)", group)
	}
	for _, v := range served {
		if v == want {
			return want, nil
		}
	}
	return served[0], nil
}

func (e *Env) apply(ctx context.Context, paths ...string) ([]*unstructured.Unstructured, error) {
	var all []*unstructured.Unstructured
	for _, p := range paths {
		objs, err := e.objects(p)
		if err != nil {
			return nil, err
		}
		if err := e.Kube.Apply(ctx, objs...); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, objs...)
	}
	return all, nil
}

func (e *Env) find(ctx context.Context, path, kind, name string) (*unstructured.Unstructured, error) {
	objs, err := e.objects(path)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o, nil
		}
	}
	return nil, fmt.Errorf("%s has no %s %s", path, kind, name)
}

func (e *Env) secretData(ctx context.Context, name string) (map[string][]byte, error) {
	s, err := e.Lab.Kube().CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return s.Data, nil
}

func secretObj(name string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion("v1")
	o.SetKind("Secret")
	o.SetNamespace(ns)
	o.SetName(name)
	return o
}

// books asks the catalog for /books and returns how many it listed.
func (e *Env) books(ctx context.Context) (int, error) {
	if e.State.Catalog == nil {
		return 0, errNoCatalog
	}
	return booksFrom(ctx, e.State.Catalog.URL(), e.Timeouts.Serve)
}

// booksFrom asks the catalog at url for /books until it lists at least one book (within
// timeout) and returns how many it listed.
func booksFrom(ctx context.Context, url string, timeout time.Duration) (int, error) {
	if url == "" {
		return 0, fmt.Errorf("the catalog has no address")
	}
	var n int
	err := proc.WaitFor(ctx, "the catalog at "+url+" to serve /books", timeout, 500*time.Millisecond, nil, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/books", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("GET /books: %s", resp.Status)
		}
		var list []json.RawMessage
		if err := json.Unmarshal(body, &list); err != nil {
			return false, fmt.Errorf("GET /books: not a JSON list: %w", err)
		}
		n = len(list)
		return n > 0, fmt.Errorf("GET /books: empty list")
	})
	return n, err
}

// loginAsESO logs in to Vault the way ESO does: a TokenRequest token of bookstore-eso
// presented to auth/kubernetes with the given role.
func (e *Env) loginAsESO(ctx context.Context, role string) (*vault.Client, *vault.SecretAuth, error) {
	return e.loginAs(ctx, ns, esoSA, role, nil)
}

// loginAs logs in to Vault's Kubernetes auth as role with a token of ServiceAccount
// namespace/sa for audiences (nil: the API server's default audience).
func (e *Env) loginAs(ctx context.Context, namespace, sa, role string, audiences []string) (*vault.Client, *vault.SecretAuth, error) {
	tr, err := e.Lab.Kube().CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa, &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{Audiences: audiences}}, metav1.CreateOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("TokenRequest for %s/%s: %w", namespace, sa, err)
	}
	e.Lab.Secrets().Add(tr.Status.Token)
	c, err := e.Lab.Vault().Clone()
	if err != nil {
		return nil, nil, err
	}
	c.ClearToken()
	sec, err := c.Logical().WriteWithContext(ctx, "auth/kubernetes/login", map[string]any{"role": role, "jwt": tr.Status.Token})
	if err != nil {
		return nil, nil, fmt.Errorf("auth/kubernetes/login as %s: %w", role, err)
	}
	if sec == nil || sec.Auth == nil {
		return nil, nil, fmt.Errorf("auth/kubernetes/login as %s returned no token", role)
	}
	e.Lab.Secrets().Add(sec.Auth.ClientToken)
	c.SetToken(sec.Auth.ClientToken)
	return c, sec.Auth, nil
}

// conditionOf returns the condition of type typ, if any.
func conditionOf(obj *unstructured.Unstructured, typ string) (kube.Condition, bool) {
	for _, c := range kube.Conditions(obj) {
		if c.Type == typ {
			return c, true
		}
	}
	return kube.Condition{}, false
}

var errNoCatalog = errors.New("the catalog is not running (baseline did not complete)")

func since(t time.Time) float64 { return time.Since(t).Seconds() }

func conditionsOf(o *unstructured.Unstructured) []kube.Condition { return kube.Conditions(o) }

func randomSecret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func waitFor(ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	return proc.WaitFor(ctx, what, timeout, 250*time.Millisecond, nil, cond)
}

// rotationProbe derives a probe ExternalSecret from the db-credentials fixture: same store
// and remote key, target NAME, only POSTGRES_PASSWORD, no template.
func (e *Env) rotationProbe(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	es, err := e.find(ctx, sec+"20-externalsecret-db-credentials.yaml", "ExternalSecret", "")
	if err != nil {
		return nil, err
	}
	probe := es.DeepCopy()
	probe.SetName(name)
	probe.SetAnnotations(nil)
	unstructured.RemoveNestedField(probe.Object, "spec", "target", "template")
	_ = unstructured.SetNestedField(probe.Object, name, "spec", "target", "name")
	data, _, _ := unstructured.NestedSlice(probe.Object, "spec", "data")
	var keep []any
	for _, d := range data {
		if m, ok := d.(map[string]any); ok && m["secretKey"] == "POSTGRES_PASSWORD" {
			keep = append(keep, d)
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("the db-credentials ExternalSecret fixture maps no POSTGRES_PASSWORD")
	}
	_ = unstructured.SetNestedSlice(probe.Object, keep, "spec", "data")
	return probe, nil
}

// requestSync asks ESO to sync es now, as the chapter's `kubectl annotate es ... force-sync=$(date +%s)`
// does: es is applied (a copy) with a new force-sync annotation; ESO reconciles on the change.
func (e *Env) requestSync(ctx context.Context, es *unstructured.Unstructured) error {
	upd := es.DeepCopy()
	upd.SetAnnotations(map[string]string{"force-sync": fmt.Sprint(time.Now().UnixNano())})
	return e.Kube.Apply(ctx, upd)
}
