package build

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestBuildEtcdForReal builds etcd from the real module proxy into an empty cache.
func TestBuildEtcdForReal(t *testing.T) {
	if testing.Short() || os.Getenv("SECRETSLAB_SKIP_BUILD_TEST") == "1" {
		t.Skip("real build of etcd v3.5.24 from the module proxy (about 1 min cold) skipped: -short or SECRETSLAB_SKIP_BUILD_TEST=1")
	}
	t.Setenv("ETCD_BIN", "")
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}
	b := &Builder{CacheDir: t.TempDir(), Progress: testWriter{t}}

	t.Run("refused version", func(t *testing.T) {
		_, err := b.Ensure(ctx, "etcd", "v3.5.999")
		t.Log(err)
		for _, want := range []string{
			"etcd v3.5.999: go.etcd.io/etcd/server/v3@v3.5.999 is not available from the module proxy (403 Forbidden)",
			"; nearest version that downloads: v3.5.", "(set ETCD_VERSION=v3.5.",
		} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
	})

	t.Run("build", func(t *testing.T) {
		p, err := b.Ensure(ctx, "etcd", "v3.5.24")
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(p, "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "etcd Version: 3.5.24") {
			t.Fatalf("%s --version: %v\n%s", p, err, out)
		}
		start := time.Now()
		if p2, err := b.Ensure(ctx, "etcd", "v3.5.24"); err != nil || p2 != p || time.Since(start) > time.Second {
			t.Fatalf("second Ensure: %q, %v after %s; want a quick cache hit", p2, err, time.Since(start))
		}
	})
}
