package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/lab/backend"
	"github.com/secretslab/secretslab/versions"
)

type labKey struct{}

// run-wide facts the Finish steps check.
var (
	artifactsDir string
	capturedPath string
	labRecords   []proc.Record
	labWorkDir   string
	labAddrs     []string
	// labSecrets outlives the lab, and a failed bring-up: the canary searches for its values.
	labSecrets = &redact.Set{}
)

func labFrom(ctx context.Context) lab.Lab { return ctx.Value(labKey{}).(lab.Lab) }

// captureOutput tees this process's stdout and stderr into a file, so the canary check
// can search everything the run printed. The tee is a child process (this test binary in
// tee mode), so it drains even what a crashing test prints last.
func captureOutput(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	artifactsDir = os.Getenv("ARTIFACTS_DIR")
	if artifactsDir == "" {
		dir, err := os.MkdirTemp("", "secretslab-e2e-artifacts-")
		if err != nil {
			return ctx, err
		}
		artifactsDir = dir
	}
	artifactsDir, _ = filepath.Abs(artifactsDir)
	if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
		return ctx, err
	}
	capturedPath = filepath.Join(artifactsDir, "test-output.log")
	r, w, err := os.Pipe()
	if err != nil {
		return ctx, err
	}
	tee := exec.Command(os.Args[0])
	tee.Env = append(os.Environ(), teeEnv+"="+capturedPath)
	tee.Stdin, tee.Stdout, tee.Stderr = r, os.Stdout, os.Stderr
	if err := tee.Start(); err != nil {
		return ctx, fmt.Errorf("start the output tee: %w", err)
	}
	r.Close()
	for _, fd := range []int{1, 2} {
		if err := syscall.Dup3(int(w.Fd()), fd, 0); err != nil {
			return ctx, err
		}
	}
	w.Close()
	return ctx, nil
}

const teeEnv = "SECRETSLAB_E2E_TEE"

// runTeeIfAsked is the tee child: stdin to stdout and to the file named by teeEnv.
func runTeeIfAsked() {
	path := os.Getenv(teeEnv)
	if path == "" {
		return
	}
	// Ctrl-C reaches the whole process group: the tee must outlive the test process's
	// cleanup, and ends when the test process closes its end of the pipe.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tee:", err)
		os.Exit(1)
	}
	io.Copy(io.MultiWriter(os.Stdout, f), os.Stdin)
	f.Close()
	os.Exit(0)
}

func bringLabUp(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	name := os.Getenv("BACKEND")
	if name == "" {
		name = lab.BackendEmbedded
	}
	v, err := versions.FromEnv(name)
	if err != nil {
		return ctx, err
	}
	app, err := buildBookstore(ctx)
	if err != nil {
		return ctx, err
	}
	start := time.Now()
	mode := lab.VaultDev
	if os.Getenv("HA") == "1" {
		mode = lab.VaultHA
	}
	perfMult := 0
	if v := os.Getenv(lab.RaftPerformanceMultiplierEnv); v != "" {
		if perfMult, err = strconv.Atoi(v); err != nil || perfMult < 0 {
			return ctx, fmt.Errorf("%s=%q: want 0 (Vault's default) or more", lab.RaftPerformanceMultiplierEnv, v)
		}
	}
	l, err := backend.Up(ctx, lab.Options{
		Backend: name, Versions: v, VaultMode: mode, Seal: os.Getenv("VAULT_SEAL"), ArtifactsDir: filepath.Join(artifactsDir, "lab"),
		PostgresMode: os.Getenv("POSTGRES_MODE"), Progress: os.Stdout,
		BookstoreImage: bookstoreImage(), BookstoreBinary: app,
		VaultChart: os.Getenv("VAULT_CHART"), ESOChart: os.Getenv("ESO_CHART"), ESOCRDs: os.Getenv("ESO_CRDS"),
		Preload: strings.Fields(os.Getenv("PRELOAD_IMAGES")), ClusterName: labName(), RunName: os.Getenv("RUN_NAME"),
		Secrets: labSecrets, RaftPerformanceMultiplier: perfMult,
	})
	if err != nil {
		return ctx, fmt.Errorf("bring the lab up: %s", labSecrets.String(err.Error()))
	}
	rootToken = l.Vault().Token()
	fmt.Printf("lab up in %s (backend %s)\n", time.Since(start).Round(time.Second), l.Backend())
	if r, ok := l.(interface {
		Records() []proc.Record
		WorkDir() string
	}); ok {
		labRecords, labWorkDir = r.Records(), r.WorkDir()
	}
	labAddrs = append(labAddrs, l.PostgresAddrForVault())
	if l.Backend() != lab.BackendCluster { // the cluster backend's API server is not the lab's: it stays
		labAddrs = append(labAddrs, hostOf(l.RESTConfig().Host))
	}
	for _, n := range l.VaultNodes() {
		labAddrs = append(labAddrs, hostOf(n.Address()))
	}
	if kms := lab.KMSOf(l); kms != nil {
		labAddrs = append(labAddrs, hostOf(kms.Address()))
	}
	return context.WithValue(ctx, labKey{}, l), nil
}

// bookstoreImage is BOOKSTORE_IMAGE, or the fixtures' image (built and loaded on kind; on
// the cluster backend an image the cluster can pull).
func bookstoreImage() string {
	if s := os.Getenv("BOOKSTORE_IMAGE"); s != "" {
		return s
	}
	return fixtures.BookstoreImage
}

// buildBookstore builds the bookstore app (a static binary) into the artifacts dir.
func buildBookstore(ctx context.Context) (string, error) {
	out := filepath.Join(artifactsDir, "bin", "bookstore")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "../fixtures/bookstore/app")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the bookstore app: %v\n%s", err, msg)
	}
	return out, nil
}

func bringLabDown(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	l, ok := ctx.Value(labKey{}).(lab.Lab)
	if !ok {
		return ctx, nil
	}
	// the run's context may be cancelled (an interrupt): closing must still happen
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute) // the cluster backend removes the run and takes an inventory
	defer cancel()
	return ctx, l.Close(cctx)
}

// nothingLeftBehind: after Close no process, listening port or temp dir of the lab remains.
func nothingLeftBehind(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	var left []string
	for _, r := range labRecords {
		if r.Alive() {
			left = append(left, fmt.Sprintf("process %s (pid %d)", r.Name, r.PID))
		}
	}
	for _, a := range labAddrs {
		if a != "" && proc.PortInUseAddr(a) {
			left = append(left, "a listener on "+a)
		}
	}
	if labWorkDir != "" {
		if _, err := os.Stat(labWorkDir); err == nil {
			left = append(left, "work dir "+labWorkDir)
		}
	}
	if len(left) > 0 {
		return ctx, fmt.Errorf("the lab left behind: %s", strings.Join(left, ", "))
	}
	fmt.Printf("lab down: %d processes gone, %d ports free, work dir removed\n", len(labRecords), len(labAddrs))
	return ctx, nil
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return u
	}
	if _, _, err := net.SplitHostPort(p.Host); err != nil {
		return ""
	}
	return p.Host
}

// labName is the kind cluster's name: LAB_NAME, or secretslab-e2e.
func labName() string {
	if n := os.Getenv("LAB_NAME"); n != "" {
		return n
	}
	return "secretslab-e2e"
}
