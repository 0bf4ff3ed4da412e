package docker

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEngineBuildFromScratch runs against the real engine (DOCKER_HOST or the default socket)
// when one answers. It creates and then removes only secretslab.local/test-scratch:dev.
func TestEngineBuildFromScratch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := Ping(ctx); err != nil {
		t.Skipf("skipping the Docker engine test: %v", err)
	}
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const tag = "secretslab.local/test-scratch:dev"

	// A tiny static binary.
	dir := t.TempDir()
	src := "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello from scratch\\n\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "main.go")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}

	// Left over from an interrupted run? It is ours: remove it.
	if err := c.RemoveImage(ctx, tag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.RemoveImage(context.Background(), tag); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	// A failing build reports the builder's message and leaves no image.
	err = c.BuildFromScratch(ctx, tag, map[string][]byte{"other": []byte("x")}, []byte("FROM scratch\nCOPY hello /hello\n"))
	if err == nil || !strings.Contains(err.Error(), "hello") {
		t.Fatalf("failing build: got %v, want the builder's message about the missing file", err)
	}
	t.Logf("failing build reported: %v", err)
	if ok, err := c.ImageExists(ctx, tag); err != nil || ok {
		t.Fatalf("after the failing build: ImageExists = %v, %v", ok, err)
	}

	dockerfile := []byte("FROM scratch\nCOPY hello /hello\nUSER 65532:65532\nENTRYPOINT [\"/hello\"]\n")
	start := time.Now()
	if err := c.BuildFromScratch(ctx, tag, map[string][]byte{"hello": content}, dockerfile); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %s", tag, time.Since(start).Round(time.Millisecond))
	if ok, err := c.ImageExists(ctx, tag); err != nil || !ok {
		t.Fatalf("ImageExists(%s) = %v, %v", tag, ok, err)
	}
	info, err := c.InspectImage(ctx, tag)
	if err != nil || !slices.Contains(info.RepoTags, tag) {
		t.Fatalf("inspect: %+v, %v", info, err)
	}

	// Save it and find it in the archive's manifest.json.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(c.SaveImages(ctx, []string{tag}, pw)) }()
	tr := tar.NewReader(pr)
	var found bool
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the saved archive: %v", err)
		}
		if h.Name == "manifest.json" {
			var m []struct {
				Config   string
				RepoTags []string
			}
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				t.Fatal(err)
			}
			found = len(m) == 1 && slices.Contains(m[0].RepoTags, tag) && strings.Contains(m[0].Config, strings.TrimPrefix(info.ID, "sha256:"))
		}
	}
	pr.Close()
	if !found {
		t.Fatal("the saved archive's manifest.json does not name the image with its ID")
	}

	// kind's library, against a cluster that does not exist: it runs `docker ps` (read-only).
	if _, err := exec.LookPath("docker"); err == nil {
		err := c.LoadIntoKind(ctx, "secretslab-no-such-cluster", []string{tag}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "has no nodes") {
			t.Fatalf("LoadIntoKind to a missing cluster: %v", err)
		}
	}

	if err := c.RemoveImage(ctx, tag); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.ImageExists(ctx, tag); err != nil || ok {
		t.Fatalf("after RemoveImage: ImageExists = %v, %v", ok, err)
	}
}
