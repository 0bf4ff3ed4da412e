package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/versions"
)

const (
	ns       = "secretslab-e2e"
	esoSA    = "eso-e2e"
	role     = "e2e-eso"
	policy   = "e2e-ro"
	kvPath   = "e2e/db"
	esGroup  = "external-secrets.io"
	esoStore = "vault-backend"
)

// canaries are secret values this test makes; none may appear in any output.
var canaries []string

func randomValue(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	v := prefix + "-" + hex.EncodeToString(b)
	canaries = append(canaries, v)
	return v
}

func TestFoundation(t *testing.T) {
	kvPassword := randomValue("kvcanary")

	crds := features.New("ESO CRDs").
		Assess("externalsecrets.external-secrets.io serves v1beta1", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			k := kubeClient(ctx, t)
			served, err := k.ServedVersions(esGroup)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("external-secrets.io serves %v", served)
			if !slices.Contains(served, "v1beta1") {
				t.Fatalf("external-secrets.io does not serve v1beta1 (serves %v)", served)
			}
			return ctx
		}).Feature()

	vaultLogin := features.New("Vault Kubernetes auth").
		Setup(func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			l := labFrom(ctx)
			mustCreateNamespaceAndSA(ctx, t)
			v := l.Vault()
			auths, err := v.Sys().ListAuthWithContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := auths["kubernetes/"]; !ok {
				if err := v.Sys().EnableAuthWithOptionsWithContext(ctx, "kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := l.VaultKubernetesAuthConfig(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(ctx, t, v, "auth/kubernetes/config", cfg)
			if err := v.Sys().PutPolicyWithContext(ctx, policy, `path "secret/data/`+kvPath+`" { capabilities = ["read"] }`); err != nil {
				t.Fatal(err)
			}
			mustWrite(ctx, t, v, "auth/kubernetes/role/"+role, map[string]any{
				"bound_service_account_names": esoSA, "bound_service_account_namespaces": ns,
				"policies": policy, "ttl": "15m",
			})
			if _, err := v.KVv2("secret").Put(ctx, kvPath, map[string]any{"password": kvPassword}); err != nil {
				t.Fatal(err)
			}
			return ctx
		}).
		Assess("a ServiceAccount token (TokenRequest) logs in through auth/kubernetes", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			c := loginAsSA(ctx, t)
			sec, err := c.KVv2("secret").Get(ctx, kvPath)
			if err != nil {
				t.Fatalf("read %s with the role's token: %v", kvPath, err)
			}
			if sec.Data["password"] != kvPassword {
				t.Fatalf("read back a different value: %s", redact.Fingerprint([]byte(fmt.Sprint(sec.Data["password"]))))
			}
			return ctx
		}).
		Assess("the role's token is denied outside its policy", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			c := loginAsSA(ctx, t)
			_, err := c.KVv2("secret").Put(ctx, kvPath, map[string]any{"password": "overwritten"})
			if err == nil || !strings.Contains(err.Error(), "permission denied") {
				t.Fatalf("want permission denied writing with a read-only policy, got %v", err)
			}
			return ctx
		}).Feature()

	esoSync := features.New("ESO syncs a KV v2 value").
		Assess("SecretStore and ExternalSecret become Ready and the Secret holds the value", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			l, k := labFrom(ctx), kubeClient(ctx, t)
			store, es := storeAndExternalSecret(l.VaultAddrForESO())
			if err := k.Apply(ctx, store); err != nil {
				t.Fatal(err)
			}
			if _, err := k.WaitCondition(ctx, store, "Ready", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := k.Apply(ctx, es); err != nil {
				t.Fatal(err)
			}
			cond, err := k.WaitCondition(ctx, es, "Ready", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if cond.Reason != "SecretSynced" {
				t.Errorf("ExternalSecret Ready with reason %q, want SecretSynced", cond.Reason)
			}
			sec, err := l.Kube().CoreV1().Secrets(ns).Get(ctx, "e2e-synced", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := sec.Data["password"]; !bytes.Equal(got, []byte(kvPassword)) {
				t.Fatalf("synced value differs: got %s, want %s", redact.Fingerprint(got), redact.Fingerprint([]byte(kvPassword)))
			}
			if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].Kind != "ExternalSecret" {
				t.Fatalf("synced Secret is not owned by the ExternalSecret: %+v", sec.OwnerReferences)
			}
			return ctx
		}).
		Assess("deleting the ExternalSecret garbage-collects the Secret", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			l, k := labFrom(ctx), kubeClient(ctx, t)
			_, es := storeAndExternalSecret(l.VaultAddrForESO())
			if err := k.Delete(ctx, es); err != nil {
				t.Fatal(err)
			}
			secret := &unstructured.Unstructured{}
			secret.SetAPIVersion("v1")
			secret.SetKind("Secret")
			secret.SetNamespace(ns)
			secret.SetName("e2e-synced")
			if err := k.WaitGone(ctx, secret, time.Minute); err != nil {
				t.Fatal(err)
			}
			return ctx
		}).Feature()

	postgres := features.New("Postgres").
		Assess("the admin DSN logs in", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			dsn := labFrom(ctx).PostgresAdminDSN()
			if dsn == "" {
				t.Skip("this backend's Postgres is the bookstore's StatefulSet: the baseline scenario checks it")
			}
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatalf("postgres login: %v", labFrom(ctx).Secrets().String(err.Error()))
			}
			defer conn.Close(ctx)
			var user string
			if err := conn.QueryRow(ctx, "select current_user").Scan(&user); err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(dsn)
			if user != u.User.Username() {
				t.Fatalf("logged in as %q, want %q", user, u.User.Username())
			}
			return ctx
		}).Feature()

	running := features.New("running versions").
		Assess("are read from the components and match the pins", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			got, err := labFrom(ctx).Versions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("running: %+v", got)
			want, _ := versions.FromEnv()
			if got.Kubernetes != want.Kubernetes || got.Vault != versions.Trimmed(want.Vault) || got.ESO != want.ESO {
				t.Fatalf("running versions %+v differ from the pins %+v", got, want)
			}
			if got.Postgres != "" && !strings.HasPrefix(got.Postgres, want.Postgres+".") {
				t.Fatalf("Postgres %s runs, the pin is %s", got.Postgres, want.Postgres)
			}
			switch labFrom(ctx).Backend() {
			case lab.BackendEmbedded:
				if got.Etcd != want.Etcd {
					t.Fatalf("etcd %s runs, the pin is %s", got.Etcd, want.Etcd)
				}
			case lab.BackendKind:
				if got.VaultChart != want.VaultChart || got.ESOChart != want.ESOChart {
					t.Fatalf("charts vault %s / external-secrets %s installed, the pins are %s / %s", got.VaultChart, got.ESOChart, want.VaultChart, want.ESOChart)
				}
			}
			return ctx
		}).Feature()

	testenv.Test(t, crds, vaultLogin, esoSync, postgres, running)
}

func kubeClient(ctx context.Context, t *testing.T) *kube.Client {
	k, err := kube.New(labFrom(ctx).RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCreateNamespaceAndSA(ctx context.Context, t *testing.T) {
	cs := labFrom(ctx).Kube()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: esoSA, Namespace: ns}}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func mustWrite(ctx context.Context, t *testing.T, v *vault.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := v.Logical().WriteWithContext(ctx, path, data); err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
}

// loginAsSA logs in to Vault with a fresh TokenRequest token of the ESO ServiceAccount.
func loginAsSA(ctx context.Context, t *testing.T) *vault.Client {
	l := labFrom(ctx)
	tr, err := l.Kube().CoreV1().ServiceAccounts(ns).CreateToken(ctx, esoSA, &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", ns, esoSA, err)
	}
	canaries = append(canaries, tr.Status.Token)
	c, err := l.Vault().Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.ClearToken()
	sec, err := c.Logical().WriteWithContext(ctx, "auth/kubernetes/login", map[string]any{"role": role, "jwt": tr.Status.Token})
	if err != nil {
		t.Fatalf("auth/kubernetes/login: %v", err)
	}
	if sec.Auth == nil || !slices.Contains(sec.Auth.Policies, policy) {
		t.Fatalf("login returned no token with policy %s", policy)
	}
	canaries = append(canaries, sec.Auth.ClientToken)
	c.SetToken(sec.Auth.ClientToken)
	return c
}

func storeAndExternalSecret(vaultAddr string) (store, es *unstructured.Unstructured) {
	objs, err := kube.Decode([]byte(fmt.Sprintf(`
apiVersion: external-secrets.io/v1beta1
kind: SecretStore
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  provider:
    vault:
      server: %[3]q
      path: secret
      version: v2
      auth:
        kubernetes: {mountPath: kubernetes, role: %[4]s, serviceAccountRef: {name: %[5]s}}
---
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {name: e2e-synced, namespace: %[2]s}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: %[1]s, kind: SecretStore}
  target: {name: e2e-synced, creationPolicy: Owner}
  data:
  - {secretKey: password, remoteRef: {key: %[6]s, property: password}}
`, esoStore, ns, vaultAddr, role, esoSA, kvPath)))
	if err != nil {
		panic(err)
	}
	return objs[0], objs[1]
}
