package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secretslab/secretslab/internal/labstate"
	"github.com/secretslab/secretslab/internal/proc"
)

// The lifecycle a learner goes through, as `make lab BACKEND=embedded` runs it (the tour, the
// bookstore binary given by a relative path): `lab up` returns with chapter 05 set up and the
// catalog answering at the printed URL, `lab status` sees it from another process, `lab down`
// leaves no process, port or directory behind.
func TestLabUpStatusDownFromSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the lab lifecycle test starts the whole embedded lab")
	}
	bin := filepath.Join(t.TempDir(), "secretslab")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build the CLI: %v\n%s", err, out)
	}
	stateRoot, err := os.MkdirTemp("", "sl-cli-") // short: Unix socket paths are limited to 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(stateRoot) })
	workDir := t.TempDir() // where the learner's shell is: the bookstore path is relative to it
	if out, err := exec.Command("go", "build", "-o", filepath.Join(workDir, "bin", "bookstore"), "../../fixtures/bookstore/app").CombinedOutput(); err != nil {
		t.Fatalf("build the bookstore: %v\n%s", err, out)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = workDir
		cmd.Env = append(os.Environ(), "SECRETSLAB_STATE_DIR="+stateRoot)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("secretslab %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		cmd := exec.Command(bin, "lab", "down", "--name", "clitest")
		cmd.Env = append(os.Environ(), "SECRETSLAB_STATE_DIR="+stateRoot)
		cmd.Run()
	})

	up := run("lab", "up", "--backend", "embedded", "--name", "clitest", "--tour", "--bookstore-binary", "bin/bookstore")
	for _, want := range []string{"export KUBECONFIG=", "export VAULT_ADDR=", "root-token", "Chapter 05"} {
		if !strings.Contains(up, want) {
			t.Fatalf("lab up output lacks %q:\n%s", want, up)
		}
	}
	dir := filepath.Join(stateRoot, "clitest")
	s, err := labstate.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(s.RootTokenFile)
	if err != nil || len(token) < 10 {
		t.Fatalf("root token file: %v", err)
	}
	if fi, _ := os.Stat(s.RootTokenFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("root token file mode %v, want 0600", fi.Mode().Perm())
	}
	if strings.Contains(up, string(token)) {
		t.Fatal("lab up printed the root token")
	}
	if s.CatalogURL == "" || !strings.Contains(up, "curl -s "+s.CatalogURL+"/books") {
		t.Fatalf("the tour does not print the catalog URL %q:\n%s", s.CatalogURL, up)
	}
	resp, err := http.Get(s.CatalogURL + "/books")
	if err != nil {
		t.Fatalf("the catalog at the printed URL: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var books []map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &books) != nil || len(books) == 0 {
		t.Fatalf("GET %s/books: %s, %d bytes, %d books", s.CatalogURL, resp.Status, len(body), len(books))
	}
	records := append([]proc.Record{s.Supervisor}, s.Processes...)
	if len(records) < 7 {
		t.Fatalf("state lists %d processes, want supervisor + 6 components", len(records))
	}
	status := run("lab", "status", "--name", "clitest")
	if strings.Contains(status, "NOT RUNNING") || !strings.Contains(status, "phase ready") {
		t.Fatalf("lab status:\n%s", status)
	}

	run("lab", "down", "--name", "clitest")
	for _, r := range records {
		if r.Alive() {
			t.Errorf("%s (pid %d) still runs after lab down", r.Name, r.PID)
		}
	}
	if proc.PortInUseAddr(strings.TrimPrefix(s.VaultAddr, "http://")) {
		t.Errorf("Vault's port %s still listens after lab down", s.VaultAddr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir %s still exists after lab down", dir)
	}
	if again := run("lab", "down", "--name", "clitest"); !strings.Contains(again, "no lab") {
		t.Errorf("a second lab down should say there is no lab, said: %s", again)
	}
}

func TestUnknownBackendAndKindWithoutDockerGetOneClearError(t *testing.T) {
	t.Setenv("SECRETSLAB_STATE_DIR", t.TempDir())
	t.Setenv("DOCKER_HOST", "unix://"+t.TempDir()+"/no-docker.sock")
	for backend, want := range map[string]string{"nonsense": "unknown backend", "kind": "backend kind needs a Docker engine"} {
		err := labUp(t.Context(), []string{"--backend", backend, "--name", "x"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--backend %s: want an error containing %q, got %v", backend, want, err)
		}
	}
}
