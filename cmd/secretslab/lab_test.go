package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretslab/secretslab/internal/labstate"
	"github.com/secretslab/secretslab/internal/proc"
)

// The lifecycle a learner goes through, as `make lab BACKEND=embedded` runs it (the tour, the
// bookstore binary given by a relative path): `lab up` returns with chapter 05 set up and the
// catalog answering at the printed URL, `lab status` sees it from another process, `lab down`
// leaves no process, port or directory behind. Every command lab up prints (usage and tour)
// works, in a shell that has only the printed exports, with the lab's own kubectl and vault.
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
	if s.CatalogURL == "" || !strings.Contains(up, "curl -fsS "+s.CatalogURL+"/books") {
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
	runPrintedCommands(t, up, workDir, s)
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

// printedCommands parses what lab up printed: the export lines, and the commands (indented
// lines that start with kubectl, vault or curl), in order.
func printedCommands(out string) (exports, cmds []string) {
	for _, l := range strings.Split(out, "\n") {
		c := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(c, "export "):
			exports = append(exports, c)
		case c != l && (strings.HasPrefix(c, "kubectl ") || strings.HasPrefix(c, "vault ") || strings.HasPrefix(c, "curl ")):
			cmds = append(cmds, c)
		}
	}
	return exports, cmds
}

// runPrintedCommands runs each printed command with bash, after the printed exports, in
// workDir, as a learner would paste them. Their output may hold values (a username): it
// is never logged, only a failing command, its exit code and how much it wrote to stderr.
func runPrintedCommands(t *testing.T, up, workDir string, s *labstate.State) {
	t.Helper()
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("running the printed commands needs %s: %v", tool, err)
		}
	}
	exports, cmds := printedCommands(up)
	if len(exports) == 0 || len(cmds) < 15 {
		t.Fatalf("lab up printed %d exports and %d commands; want the exports and the tour's commands:\n%s", len(exports), len(cmds), up)
	}
	if s.BinDir == "" || !strings.HasPrefix(exports[0], "export PATH="+s.BinDir+":") {
		t.Fatalf("the first export should put the lab's CLIs (%q) on PATH: %q", s.BinDir, exports[0])
	}
	var env []string // the learner's shell, without a lab of its own
	for _, e := range os.Environ() {
		switch k, _, _ := strings.Cut(e, "="); k {
		case "KUBECONFIG", "VAULT_ADDR", "VAULT_TOKEN", "BASH_ENV", "ENV":
		default:
			env = append(env, e)
		}
	}
	prelude := "set -o pipefail\n" + strings.Join(exports, "\n") + "\n"
	bash := func(cmd string) (stdout string, code, stderrLen int) {
		c := exec.Command("bash", "--noprofile", "--norc", "-c", prelude+cmd)
		c.Dir, c.Env = workDir, env
		var o, e strings.Builder
		c.Stdout, c.Stderr = &o, &e
		err := c.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err != nil:
			t.Fatalf("run bash: %v", err)
		}
		return o.String(), code, e.Len()
	}
	// the commands run the lab's CLIs, not some kubectl or vault of the host's
	if where, code, _ := bash("command -v kubectl vault"); code != 0 ||
		where != filepath.Join(s.BinDir, "kubectl")+"\n"+filepath.Join(s.BinDir, "vault")+"\n" {
		t.Fatalf("after the exports, kubectl and vault are %q (exit %d); want the links in %s", where, code, s.BinDir)
	}
	for _, cmd := range cmds {
		start := time.Now()
		if _, code, errLen := bash(cmd); code != 0 {
			t.Errorf("printed command failed: exit %d, %d bytes on stderr (output not shown: it may hold values):\n  %s", code, errLen, cmd)
		} else {
			t.Logf("ok (%s): %s", time.Since(start).Round(time.Millisecond), cmd)
		}
	}
	if t.Failed() {
		t.FailNow()
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

// What lab up prints for each backend, without a lab: the embedded backend's commands put
// the lab's CLIs first on PATH and ask for no pods (it has none); kind keeps its pods and
// brings its own CLIs. Paths that need quoting are quoted.
func TestPrintedCommandsPerBackend(t *testing.T) {
	for _, c := range []struct {
		backend, binDir string
		want, notWant   []string
	}{
		{"embedded", "/state/my lab/bin", []string{"  export PATH='/state/my lab/bin':$PATH", "kubectl get svc,serviceaccounts,configmaps,secrets -n bookstore"}, []string{"pods"}},
		{"kind", "", []string{"kubectl get pods,svc -n bookstore"}, []string{"export PATH="}},
	} {
		s := &labstate.State{Name: "x", Backend: c.backend, VaultMode: "dev", Kubeconfig: "/state/my lab/kubeconfig",
			VaultAddr: "http://127.0.0.1:8200", RootTokenFile: "/state/my lab/root-token", CatalogURL: "http://127.0.0.1:9000",
			BinDir: c.binDir, DemoSecretFile: "/state/my lab/16-db-credentials.yaml", Tour: true}
		var b strings.Builder
		printUsage(&b, s)
		printTour(&b, s)
		out := b.String()
		exports, cmds := printedCommands(out)
		if c.binDir != "" && !strings.HasPrefix(exports[0], "export PATH=") {
			t.Errorf("%s: the first export is %q, want PATH", c.backend, exports[0])
		}
		for _, want := range append(c.want, `export VAULT_TOKEN="$(cat '/state/my lab/root-token')"`,
			"kubectl apply --server-side -f '/state/my lab/16-db-credentials.yaml'", "curl -fsS http://127.0.0.1:9000/books") {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", c.backend, want, out)
			}
		}
		for _, cmd := range cmds {
			for _, no := range c.notWant {
				if strings.Contains(cmd, no) {
					t.Errorf("%s: command %q has %q", c.backend, cmd, no)
				}
			}
		}
		for _, e := range exports {
			if c.binDir == "" && strings.HasPrefix(e, "export PATH=") {
				t.Errorf("%s: %q", c.backend, e)
			}
		}
	}
}
