package esoproc_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/secretslab/secretslab/internal/build"
	"github.com/secretslab/secretslab/internal/esoproc"
	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/kubeproc"
	"github.com/secretslab/secretslab/versions"
)

// TestCRDsApplyServerSideOverAnOlderInstall applies the pinned ESO's CRDs and writes an
// ExternalSecret, then applies the candidate's CRDs over them, as an in-place upgrade does:
// server-side apply takes the fields over, the served and storage versions are the
// candidate's, and MigrateStorage leaves only the new storage version in storedVersions.
func TestCRDsApplyServerSideOverAnOlderInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts etcd and kube-apiserver")
	}
	etcd, apiserver := os.Getenv("ETCD_BIN"), os.Getenv("KUBE_APISERVER_BIN")
	if etcd == "" || apiserver == "" {
		t.Skip("ETCD_BIN and KUBE_APISERVER_BIN not set (make test sets them from `secretslab build --env`)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := &build.Builder{}
	var dirs []string
	for _, set := range []string{"pinned", "candidate"} {
		v, err := versions.Named(set, versions.Embedded)
		if err != nil {
			t.Fatal(err)
		}
		dir, err := b.ModuleDir(ctx, esoproc.Module, v.ESO)
		if err != nil {
			t.Fatalf("ESO %s (%s) CRDs: %v", v.ESO, set, err)
		}
		dirs = append(dirs, filepath.Join(dir, esoproc.CRDSubdir))
	}
	work := t.TempDir()
	cp, err := kubeproc.Start(ctx, kubeproc.Options{EtcdBin: etcd, APIServerBin: apiserver, WorkDir: work, LogDir: work})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(10 * time.Second); err != nil {
			t.Errorf("stop the control plane: %v", err)
		}
	})
	cs, err := apiext.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	k, err := kube.New(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	const crdName = "externalsecrets.external-secrets.io"
	for i, dir := range dirs {
		if _, err := esoproc.InstallCRDs(ctx, cp.RESTConfig(), dir); err != nil {
			t.Fatalf("apply %s: %v", dir, err)
		}
		if i == 0 { // an object written under the pinned CRDs, in their storage version
			st, err := k.CRDStorage(ctx, crdName)
			if err != nil {
				t.Fatal(err)
			}
			es := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "external-secrets.io/" + st.Storage, "kind": "ExternalSecret",
				"metadata": map[string]any{"name": "old", "namespace": "default"},
				"spec": map[string]any{"secretStoreRef": map[string]any{"name": "s"}, "target": map[string]any{"name": "t"},
					"data": []any{map[string]any{"secretKey": "k", "remoteRef": map[string]any{"key": "a/b", "property": "p"}}}},
			}}
			if err := k.Apply(ctx, es); err != nil {
				t.Fatalf("create an ExternalSecret in %s: %v", st.Storage, err)
			}
			// what ESO's cert-controller does on kind before 0.16: a conversion webhook
			// under another field manager
			hook := []byte(`{"spec":{"conversion":{"strategy":"Webhook","webhook":{"conversionReviewVersions":["v1"],` +
				`"clientConfig":{"service":{"name":"external-secrets-webhook","namespace":"default","path":"/convert"}}}}}}`)
			if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, "secretstores.external-secrets.io", types.MergePatchType, hook,
				metav1.PatchOptions{FieldManager: "cert-controller"}); err != nil {
				t.Fatalf("inject a conversion webhook: %v", err)
			}
		}
	}
	before, err := k.CRDStorage(ctx, crdName)
	if err != nil {
		t.Fatal(err)
	}
	n, err := k.MigrateStorage(ctx, crdName)
	if err != nil {
		t.Fatal(err)
	}
	after, err := k.CRDStorage(ctx, crdName)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("storedVersions before migration %v (stale %v), after %v; %d object(s) rewritten", before.Stored, before.Stale(), after.Stored, n)
	if len(before.Stale()) == 0 || n != 1 || len(after.Stale()) != 0 || !slices.Equal(after.Stored, []string{after.Storage}) {
		t.Fatalf("migration: before %+v, after %+v, %d rewritten; want the old version stale before and only %s after", before, after, n, after.Storage)
	}
	crd, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "externalsecrets.external-secrets.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dirs[1], "external-secrets.io_externalsecrets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want apiextv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	served, storage := versionsOf(crd)
	wantServed, wantStorage := versionsOf(&want)
	t.Logf("after the candidate's CRDs: served %v, storage %s, storedVersions %v", served, storage, crd.Status.StoredVersions)
	if !slices.Equal(served, wantServed) || storage != wantStorage {
		t.Fatalf("served %v, storage %q; the candidate's CRD has %v, %q", served, storage, wantServed, wantStorage)
	}
	var managers []string
	for _, m := range crd.ManagedFields {
		managers = append(managers, m.Manager+"/"+string(m.Operation))
	}
	if !slices.Contains(managers, "secretslab/Apply") {
		t.Fatalf("managed fields %v: want secretslab's server-side apply", managers)
	}
}

func versionsOf(crd *apiextv1.CustomResourceDefinition) (served []string, storage string) {
	for _, v := range crd.Spec.Versions {
		if v.Served {
			served = append(served, v.Name)
		}
		if v.Storage {
			storage = v.Name
		}
	}
	return served, storage
}
