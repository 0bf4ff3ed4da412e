package kindcluster

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/e2e-framework/support"
)

func TestWithVersionPicksTheKindNodeImage(t *testing.T) {
	var p support.E2EClusterProvider = New().WithName("x").WithVersion("v1.31.14")
	if got := p.(*Cluster).nodeImage; got != "kindest/node:v1.31.14" {
		t.Fatalf("node image %q", got)
	}
	if p.GetKubectlContext() != "kind-x" {
		t.Fatalf("context %q", p.GetKubectlContext())
	}
}

func TestCreateWithoutDockerIsOneClearError(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+t.TempDir()+"/none.sock")
	_, err := New().WithName("never-created").Create(context.Background())
	if err == nil || !strings.Contains(err.Error(), "kind needs a Docker engine") {
		t.Fatalf("want one clear error, got %v", err)
	}
}
