package kube_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/kubeproc"
)

func TestDiffByUID(t *testing.T) {
	before := kube.Inventory{"a": {Resource: "namespaces", Name: "kept"}, "b": {Resource: "configmaps", Namespace: "kept", Name: "gone"}}
	after := kube.Inventory{"a": {Resource: "namespaces", Name: "kept"}, "c": {Resource: "configmaps", Namespace: "kept", Name: "gone"}}
	d := kube.Diff(before, after)
	// same name, new UID: the old object was deleted and another created in its place
	if len(d.Added) != 1 || d.Added[0].Name != "gone" || len(d.Removed) != 1 || d.Removed[0].Name != "gone" {
		t.Fatalf("diff = %+v, want one added and one removed configmap kept/gone", d)
	}
	if !kube.Diff(before, before).Empty() {
		t.Fatal("an inventory differs from itself")
	}
	if s := d.Summary(10); !strings.Contains(s, "1 left behind") || !strings.Contains(s, "configmaps kept/gone") {
		t.Fatalf("summary:\n%s", s)
	}
}

// TestInventorySeesWhatARunCreatedAndRemoved takes inventories of a real kube-apiserver around
// creating and deleting objects.
func TestInventorySeesWhatARunCreatedAndRemoved(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts etcd and kube-apiserver")
	}
	etcd, apiserver := os.Getenv("ETCD_BIN"), os.Getenv("KUBE_APISERVER_BIN")
	if etcd == "" || apiserver == "" {
		t.Skip("ETCD_BIN and KUBE_APISERVER_BIN not set (make test sets them from `secretslab build --env`)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
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
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	pre := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "default"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, pre, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before, err := kube.TakeInventory(ctx, cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(before) == 0 {
		t.Fatal("empty inventory of a running apiserver")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "run-x"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ours", Namespace: "run-x"}}
	if _, err := cs.CoreV1().ConfigMaps("run-x").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().ConfigMaps("default").Delete(ctx, "theirs", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	after, err := kube.TakeInventory(ctx, cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	d := kube.Diff(before, after)
	var added, removed []string
	for _, o := range d.Added {
		added = append(added, o.String())
	}
	for _, o := range d.Removed {
		removed = append(removed, o.String())
	}
	if got, want := strings.Join(added, "; "), "configmaps run-x/ours; namespaces/run-x"; got != want {
		t.Errorf("added = %q, want %q", got, want)
	}
	if got, want := strings.Join(removed, "; "), "configmaps default/theirs"; got != want {
		t.Errorf("removed = %q, want %q", got, want)
	}
}
