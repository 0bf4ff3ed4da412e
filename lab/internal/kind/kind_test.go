package kind

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/secretslab/secretslab/internal/docker"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/lab/kindcluster"
	"github.com/secretslab/secretslab/versions"
)

// A dev-mode lab on a real kind cluster: the charts install, Vault answers through the
// harness's port-forward, the versions come from the cluster, and Close deletes the cluster.
func TestUpReadsVersionsFromTheClusterAndCloseDeletesIt(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: creates a kind cluster")
	}
	if err := docker.Ping(context.Background()); err != nil {
		t.Skipf("no Docker engine: kind backend not tested (%v)", err)
	}
	if os.Getenv("VAULT_CHART") == "" || os.Getenv("ESO_CHART") == "" {
		t.Skip("VAULT_CHART and ESO_CHART not set (no chart repository here): kind backend not tested")
	}
	v, err := versions.FromEnv("kind")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const name = "secretslab-kindtest"
	l, err := Up(ctx, lab.Options{
		Versions: v, ClusterName: name, VaultChart: os.Getenv("VAULT_CHART"), ESOChart: os.Getenv("ESO_CHART"),
		ESOCRDs: os.Getenv("ESO_CRDS"), Preload: strings.Fields(os.Getenv("PRELOAD_IMAGES")),
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			l.Close(context.Background())
		}
	}()
	got, err := l.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kubernetes != v.Kubernetes || got.Vault != v.Vault || got.VaultChart != v.VaultChart || got.ESO != v.ESO || got.ESOChart != v.ESOChart {
		t.Fatalf("running %+v, pinned %+v", got, v)
	}
	h, err := l.Vault().Sys().HealthWithContext(ctx)
	if err != nil || h.Sealed || !h.Initialized {
		t.Fatalf("vault health through the port-forward: %+v, %v", h, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	closed = true
	c := kindcluster.New()
	c.WithName(name)
	if exists, err := c.Exists(); err != nil || exists {
		t.Fatalf("kind cluster %s still exists after Close (err %v)", name, err)
	}
}
