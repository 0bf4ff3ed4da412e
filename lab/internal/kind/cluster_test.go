package kind

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretslab/secretslab/lab"
)

// Bad input on the cluster backend gets one clear error, before anything is created.
func TestClusterBackendBadInputGetsOneClearError(t *testing.T) {
	dir := t.TempDir()
	unreachable := filepath.Join(dir, "unreachable")
	if err := os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts lab.Options
		want string
	}{
		{"no kubeconfig", lab.Options{Kubeconfig: filepath.Join(dir, "missing")}, "backend cluster: read the kubeconfig"},
		{"a cluster that does not answer", lab.Options{Kubeconfig: unreachable}, `the cluster of context "ctx" (https://127.0.0.1:1) does not answer`},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Backend = lab.BackendCluster
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			l, err := Up(ctx, c.opts)
			if err == nil {
				l.Close(ctx)
				t.Fatal("Up succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || strings.Count(err.Error(), "\n") > 0 {
				t.Fatalf("error %q, want one line containing %q", err, c.want)
			}
		})
	}
	if runName.MatchString("Bad_Name") || !runName.MatchString("nightly-42") {
		t.Fatal("run name check")
	}
}
