package scenarios

import (
	"context"
	"strings"
	"testing"

	"github.com/secretslab/secretslab/fixtures"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/reports"
)

// fakeLab serves Kubernetes from client-go's fake clientset; nothing else is used.
type fakeLab struct {
	lab.Lab
	kube    kubernetes.Interface
	secrets redact.Set
}

func (f *fakeLab) Kube() kubernetes.Interface { return f.kube }
func (f *fakeLab) Secrets() *redact.Set       { return &f.secrets }
func (f *fakeLab) Versions(context.Context) (lab.Versions, error) {
	return lab.Versions{ESO: "v0.16.2", Vault: "1.17.2"}, nil
}

// The synced Secret has one corrupted value: swap.byte-identical fails and names that key
// alone, with lengths and hashes, never a value.
func TestSwapByteIdenticalFailsNamingOnlyTheCorruptedKey(t *testing.T) {
	demo, err := fixtures.DemoSecret()
	if err != nil {
		t.Fatal(err)
	}
	synced := map[string][]byte{}
	for k, v := range demo {
		synced[k] = append([]byte(nil), v...)
	}
	corrupted := "corrupted-" + string(demo["POSTGRES_PASSWORD"])
	synced["POSTGRES_PASSWORD"] = []byte(corrupted)
	kube := fake.NewSimpleClientset(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db-credentials", Namespace: ns,
			Labels: map[string]string{"reconcile.external-secrets.io/created-by": "x"}}, // ESO's own: ignored
		Data: synced,
	})
	e := &Env{Lab: &fakeLab{kube: kube}, State: State{Demo: demo}}

	s := swap()
	var check Check
	for _, c := range s.Checks {
		if c.Name == "byte-identical" {
			check = c
		}
	}
	rc := runCheck(context.Background(), e, s, check)
	if rc.ID != "swap.byte-identical" || rc.Status != reports.Failed {
		t.Fatalf("want swap.byte-identical failed, got %s %s: %s", rc.ID, rc.Status, rc.Message)
	}
	if !strings.Contains(rc.Message, "POSTGRES_PASSWORD differs") {
		t.Fatalf("the message does not name the corrupted key: %s", rc.Message)
	}
	for k := range demo {
		if k != "POSTGRES_PASSWORD" && strings.Contains(rc.Message, k+" ") {
			t.Fatalf("the message names %s, which is intact: %s", k, rc.Message)
		}
	}
	for _, v := range []string{string(demo["POSTGRES_PASSWORD"]), corrupted} {
		if strings.Contains(rc.Message, v) {
			t.Fatalf("the message shows a value: %s", rc.Message)
		}
		for _, cl := range rc.Claims {
			if strings.Contains(cl.Detail, v) {
				t.Fatalf("the claim's detail shows a value: %s", cl.Detail)
			}
		}
	}
	// what the check observed is the verdict on C05-06, on the versions running
	if len(rc.Claims) != 1 || rc.Claims[0].ID != "C05-06" || rc.Claims[0].Holds || !strings.Contains(rc.Claims[0].Detail, "POSTGRES_PASSWORD differs") ||
		rc.Claims[0].Versions != "ESO v0.16.2, Vault 1.17.2" || !strings.Contains(rc.Claims[0].Text, "byte-identical") {
		t.Fatalf("claims %+v", rc.Claims)
	}

	// and with the value repaired, the same check passes
	synced["POSTGRES_PASSWORD"] = demo["POSTGRES_PASSWORD"]
	sec, _ := kube.CoreV1().Secrets(ns).Get(context.Background(), "db-credentials", metav1.GetOptions{})
	sec.Data = synced
	if _, err := kube.CoreV1().Secrets(ns).Update(context.Background(), sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc = runCheck(context.Background(), e, s, check)
	if rc.Status != reports.Passed {
		t.Fatalf("identical data: want passed, got %s: %s", rc.Status, rc.Message)
	}
	if len(rc.Claims) != 1 || rc.Claims[0].ID != "C05-06" || !rc.Claims[0].Holds {
		t.Fatalf("identical data: claims %+v", rc.Claims)
	}
}
