package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/secretslab/secretslab/internal/proc"
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
)

func labFrom(ctx context.Context) lab.Lab { return ctx.Value(labKey{}).(lab.Lab) }

// captureOutput tees this process's stdout and stderr into a file, so the canary check
// can search everything the run printed.
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
	f, err := os.Create(capturedPath)
	if err != nil {
		return ctx, err
	}
	for _, fd := range []int{1, 2} {
		orig, err := syscall.Dup(fd)
		if err != nil {
			return ctx, err
		}
		r, w, err := os.Pipe()
		if err != nil {
			return ctx, err
		}
		if err := syscall.Dup3(int(w.Fd()), fd, 0); err != nil {
			return ctx, err
		}
		go io.Copy(io.MultiWriter(os.NewFile(uintptr(orig), "orig"), f), r)
	}
	return ctx, nil
}

func bringLabUp(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	v, err := versions.FromEnv()
	if err != nil {
		return ctx, err
	}
	name := os.Getenv("BACKEND")
	if name == "" {
		name = lab.BackendEmbedded
	}
	start := time.Now()
	l, err := backend.Up(ctx, lab.Options{
		Backend: name, Versions: v, ArtifactsDir: filepath.Join(artifactsDir, "lab"),
		PostgresMode: os.Getenv("POSTGRES_MODE"), Progress: os.Stdout,
	})
	if err != nil {
		return ctx, fmt.Errorf("bring the lab up: %w", err)
	}
	fmt.Printf("lab up in %s (backend %s)\n", time.Since(start).Round(time.Second), l.Backend())
	if r, ok := l.(interface {
		Records() []proc.Record
		WorkDir() string
	}); ok {
		labRecords, labWorkDir = r.Records(), r.WorkDir()
	}
	labAddrs = append(labAddrs, hostOf(l.RESTConfig().Host), l.PostgresAddrForVault())
	for _, n := range l.VaultNodes() {
		labAddrs = append(labAddrs, hostOf(n.Address()))
	}
	return context.WithValue(ctx, labKey{}, l), nil
}

func bringLabDown(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	l, ok := ctx.Value(labKey{}).(lab.Lab)
	if !ok {
		return ctx, nil
	}
	return ctx, l.Close(ctx)
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
