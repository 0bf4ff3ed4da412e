package main

import (
	"bufio"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secretslab/secretslab/internal/proc"
)

// SIGINT in the middle of an embedded conformance run: the run stops, cleans up and exits
// non-zero; afterwards no process of the lab runs, its ports are free and its temp dirs are gone.
func TestInterruptedConformanceLeavesNothingBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts the whole embedded lab")
	}
	tmp, err := os.MkdirTemp("", "sl-int-") // the lab's TMPDIR; short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	bin := filepath.Join(t.TempDir(), "secretslab")
	app := filepath.Join(tmp, "bookstore-under-test")
	for _, b := range [][]string{{"build", "-o", bin, "."}, {"build", "-o", app, "../../fixtures/bookstore/app"}} {
		if out, err := exec.Command("go", b...).CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(b, " "), err, out)
		}
	}
	labTmp := filepath.Join(tmp, "lab")
	if err := os.Mkdir(labTmp, 0o755); err != nil {
		t.Fatal(err)
	}
	// As root, Postgres runs as the postgres user, which must reach its dir under TMPDIR.
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command(bin, "conformance", "--backend", "embedded", "--ha=false", "--labels", "scenario=swap",
		"--out", filepath.Join(out, "report"), "--bookstore-binary", app)
	cmd.Env = append(os.Environ(), "TMPDIR="+labTmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // only if the test fails before the child exits

	// Wait until the scenarios run, then interrupt.
	lines := bufio.NewScanner(stdout)
	var upLine string
	started := make(chan struct{})
	rest := make(chan string, 1)
	go func() {
		var all strings.Builder
		for lines.Scan() {
			l := lines.Text()
			all.WriteString(l + "\n")
			if strings.HasPrefix(l, "conformance: lab up in") {
				upLine = l
			}
			if strings.HasPrefix(l, "scenario baseline:") {
				close(started)
			}
		}
		rest <- all.String()
	}()
	select {
	case <-started:
	case output := <-rest:
		t.Fatalf("the conformance run ended before its first scenario; it printed:\n%s", output)
	case <-time.After(10 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("timed out after 10m waiting for the conformance run to start its first scenario; it printed:\n%s", <-rest)
	}
	time.Sleep(2 * time.Second) // in the middle of baseline
	interrupted := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("timed out after 2m waiting for the interrupted run to exit")
	}
	output := <-rest
	t.Logf("the interrupted run exited %s after SIGINT (%v)", time.Since(interrupted).Round(100*time.Millisecond), waitErr)
	if waitErr == nil || !strings.Contains(output, "interrupted") {
		t.Fatalf("want a non-zero exit saying interrupted; output:\n%s", output)
	}

	// no process that runs from the lab's temp dirs or the bookstore binary
	for _, pid := range pidsMentioning(t, tmp) {
		t.Errorf("process %d still runs from %s", pid, tmp)
	}
	// the lab's ports are free
	for _, addr := range regexp.MustCompile(`https?://[0-9.:]+`).FindAllString(upLine, -1) {
		u, _ := url.Parse(addr)
		if proc.PortInUseAddr(u.Host) {
			t.Errorf("%s still listens", u.Host)
		}
	}
	if upLine == "" {
		t.Error("the run never printed its lab's addresses")
	}
	// and the lab's temp dirs are gone
	left, _ := os.ReadDir(labTmp)
	for _, e := range left {
		t.Errorf("left in TMPDIR: %s", e.Name())
	}
}

// pidsMentioning lists processes whose command line names a path under dir.
func pidsMentioning(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if r, err := proc.RecordOf("", pid); err == nil && r.Alive() && strings.Contains(string(b), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}
