package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/build"
	"github.com/secretslab/secretslab/internal/docker"
	"github.com/secretslab/secretslab/internal/labstate"
	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/lab/backend"
	kindcluster "github.com/secretslab/secretslab/lab/kindcluster"
	"github.com/secretslab/secretslab/versions"
)

// upFlags are shared by "lab up" and the supervisor it starts.
type upFlags struct {
	name, backend, postgres, cacheDir string
	seal                              string
	ha, reuse, tour                   bool
	vaultChart, esoChart, esoCRDs     string
	preload, bookstoreBin             string
	kubeconfig, runName               string
	raftPerfMult                      int
	choice                            versions.Choice
	versions                          versions.Set // resolved by resolve, once the backend is known
}

func parseUpFlags(cmd string, args []string) (*upFlags, error) {
	return parseFlags(cmd, "secretslab", args, nil)
}

// parseFlags parses the lab flags, and the extra ones a command registers, with defaultName
// as the lab name when LAB_NAME is not set.
func parseFlags(cmd, defaultName string, args []string, extra func(*flag.FlagSet)) (*upFlags, error) {
	f := &upFlags{}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.StringVar(&f.name, "name", envOr("LAB_NAME", defaultName), "lab name (env LAB_NAME)")
	fs.StringVar(&f.backend, "backend", envOr("BACKEND", lab.BackendAuto), "embedded | kind | cluster (the cluster in KUBECONFIG) | auto (env BACKEND)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "cluster: the kubeconfig of the cluster to run on, its current context (default: KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&f.runName, "run-name", os.Getenv("RUN_NAME"), "cluster: the run's name; its charts go into namespaces RUN-vault and RUN-eso (default: secretslab-XXXXXX) (env RUN_NAME)")
	fs.BoolVar(&f.ha, "ha", os.Getenv("HA") == "1", "Vault HA: 3 Raft nodes instead of one dev server (env HA=1)")
	fs.StringVar(&f.seal, "seal", envOr("VAULT_SEAL", lab.SealShamir), "with --ha: shamir (unseal keys) | transit (a second Vault's transit engine plays the KMS; the nodes unseal themselves) (env VAULT_SEAL)")
	fs.StringVar(&f.postgres, "postgres", envOr("POSTGRES_MODE", "auto"), "embedded Postgres: auto | host | container (env POSTGRES_MODE)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "component build cache (default: the user cache dir/secretslab)")
	fs.StringVar(&f.vaultChart, "vault-chart", os.Getenv("VAULT_CHART"), "kind: local vault chart dir or .tgz instead of the repository (env VAULT_CHART)")
	fs.StringVar(&f.esoChart, "eso-chart", os.Getenv("ESO_CHART"), "kind: local external-secrets chart dir or .tgz (env ESO_CHART)")
	fs.StringVar(&f.esoCRDs, "eso-crds", os.Getenv("ESO_CRDS"), "ESO's CRDs from this file or dir (kind: the chart then gets installCRDs=false; embedded: instead of the ESO module's, e.g. with ESO_BIN) (env ESO_CRDS)")
	fs.StringVar(&f.preload, "preload", os.Getenv("PRELOAD_IMAGES"), "kind: space-separated local images or image archives (.tar) to load into the nodes (env PRELOAD_IMAGES)")
	fs.BoolVar(&f.tour, "tour", os.Getenv("TOUR") == "1", "set up chapter 05 (bookstore, Vault config, the swap) and print a guided tour; needs --bookstore-binary (env TOUR=1)")
	fs.BoolVar(&f.reuse, "reuse", os.Getenv("REUSE") == "1", "kind: reuse an existing cluster of the lab's name (env REUSE=1)")
	fs.StringVar(&f.bookstoreBin, "bookstore-binary", os.Getenv("BOOKSTORE_BIN"), "the bookstore app binary (kind: built into its image) (env BOOKSTORE_BIN)")
	fs.IntVar(&f.raftPerfMult, "raft-performance-multiplier", envInt(lab.RaftPerformanceMultiplierEnv), "HA: performance_multiplier in Vault's Raft storage stanza; 0 keeps Vault's default (5) (env "+lab.RaftPerformanceMultiplierEnv+")")
	f.choice.RegisterFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if f.raftPerfMult < 0 {
		return nil, fmt.Errorf("--raft-performance-multiplier %d: want 0 (Vault's default) or more", f.raftPerfMult)
	}
	return f, nil
}

// envInt is the integer in the variable name (0 when unset or not a number; the flag's
// own parsing reports a bad value given on the command line).
func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

// resolve picks the backend (auto: kind when Docker answers) and the versions it runs.
func (f *upFlags) resolve(ctx context.Context) (string, error) {
	name, err := backend.Resolve(ctx, f.backend, os.Stderr)
	if err != nil {
		return "", err
	}
	if f.versions, err = f.choice.Resolve(name); err != nil {
		return "", err
	}
	return name, nil
}

func (f *upFlags) vaultMode() lab.VaultMode {
	if f.ha {
		return lab.VaultHA
	}
	return lab.VaultDev
}

// args renders the flags for the supervisor, versions included, so it runs exactly this choice.
func (f *upFlags) args(backendName string) []string {
	a := append([]string{"--name=" + f.name, "--backend=" + backendName, "--postgres=" + f.postgres, fmt.Sprintf("--ha=%t", f.ha), "--seal=" + f.seal},
		f.versions.Flags()...)
	if f.cacheDir != "" {
		a = append(a, "--cache-dir="+f.cacheDir)
	}
	a = append(a, "--vault-chart="+f.vaultChart, "--eso-chart="+f.esoChart, "--eso-crds="+f.esoCRDs,
		"--preload="+f.preload, "--kubeconfig="+f.kubeconfig, "--run-name="+f.runName, fmt.Sprintf("--reuse=%t", f.reuse), fmt.Sprintf("--tour=%t", f.tour), "--bookstore-binary="+f.bookstoreBin,
		fmt.Sprintf("--raft-performance-multiplier=%d", f.raftPerfMult))
	return a
}

// labOptions are the lab.Options these flags choose, on backendName, logging to artifacts.
func (f *upFlags) labOptions(backendName, artifacts string) lab.Options {
	return lab.Options{
		Backend: backendName, VaultMode: f.vaultMode(), Seal: f.seal, Versions: f.versions, ArtifactsDir: artifacts,
		CacheDir: f.cacheDir, PostgresMode: f.postgres, Progress: os.Stdout,
		VaultChart: f.vaultChart, ESOChart: f.esoChart, ESOCRDs: f.esoCRDs, Preload: strings.Fields(f.preload),
		Reuse: f.reuse, ClusterName: f.name, BookstoreImage: envOr("BOOKSTORE_IMAGE", fixtures.BookstoreImage), BookstoreBinary: f.bookstoreBin,
		Kubeconfig: f.kubeconfig, RunName: f.runName, RaftPerformanceMultiplier: f.raftPerfMult,
	}
}

// ensureBuilt builds the embedded backend's component binaries into the cache (a no-op for
// kind, and when they are cached).
func (f *upFlags) ensureBuilt(ctx context.Context, backendName string) error {
	if backendName != lab.BackendEmbedded {
		return nil
	}
	b := &build.Builder{CacheDir: f.cacheDir, Progress: os.Stderr}
	for _, c := range build.Components(f.versions) {
		if _, err := b.Ensure(ctx, c.Name, c.Version); err != nil {
			return err
		}
	}
	return nil
}

// absPaths makes every path flag absolute: the supervisor runs in another working directory.
// A --preload entry is a path only when such a file exists (otherwise it names an image).
func (f *upFlags) absPaths() error {
	for _, p := range []*string{&f.bookstoreBin, &f.vaultChart, &f.esoChart, &f.esoCRDs, &f.cacheDir, &f.kubeconfig} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("path %s: %w", *p, err)
		}
		*p = abs
	}
	if f.bookstoreBin != "" {
		if _, err := os.Stat(f.bookstoreBin); err != nil {
			return fmt.Errorf("--bookstore-binary: %w (make lab builds it: make bookstore)", err)
		}
	}
	var preload []string
	for _, p := range strings.Fields(f.preload) {
		if _, err := os.Stat(p); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
		}
		preload = append(preload, p)
	}
	f.preload = strings.Join(preload, " ")
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

const supervisorStartTimeout = 10 * time.Minute

func labUp(ctx context.Context, args []string) error {
	f, err := parseUpFlags("lab up", args)
	if err != nil {
		return err
	}
	if f.tour && f.bookstoreBin == "" {
		return fmt.Errorf("--tour needs --bookstore-binary (make lab builds it: bin/bookstore)")
	}
	if err := f.absPaths(); err != nil {
		return err
	}
	dir, err := labstate.Dir(f.name)
	if err != nil {
		return err
	}
	if s, err := labstate.Load(dir); err == nil {
		if s.Supervisor.Alive() {
			return fmt.Errorf("lab %q is already running (backend %s); `secretslab lab status` shows it, `secretslab lab down` stops it", f.name, s.Backend)
		}
		fmt.Fprintf(os.Stderr, "lab %q: found state of a lab that is no longer supervised; cleaning it up first\n", f.name)
		if err := down(ctx, dir, s); err != nil {
			return err
		}
	}
	name, err := f.resolve(ctx)
	if err != nil {
		return err
	}
	// Build in the foreground, where its progress is seen; the supervisor then finds the cache.
	if err := f.ensureBuilt(ctx, name); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "supervisor.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, append([]string{"lab", "serve"}, f.args(name)...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives this shell
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start the lab supervisor: %w", err)
	}
	logFile.Close()
	supervisor := proc.Record{Name: "supervisor", PID: cmd.Process.Pid}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	fmt.Fprintf(os.Stderr, "lab %q: starting (supervisor pid %d, log %s)\n", f.name, supervisor.PID, logPath)
	s, err := waitReady(ctx, dir, logPath, exited)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab up failed; cleaning up what it started")
		if s == nil {
			s, _ = labstate.Load(dir)
		}
		if s == nil {
			_ = syscall.Kill(supervisor.PID, syscall.SIGTERM)
			s = &labstate.State{Dir: dir}
		}
		if derr := down(context.Background(), dir, s); derr != nil {
			return fmt.Errorf("%w; cleanup: %v", err, derr)
		}
		return err
	}
	printUsage(os.Stdout, s)
	if s.Tour {
		printTour(os.Stdout, s)
	}
	return nil
}

// waitReady follows the supervisor's log until the state says ready or failed.
func waitReady(ctx context.Context, dir, logPath string, exited <-chan error) (*labstate.State, error) {
	deadline := time.After(supervisorStartTimeout)
	var offset int64
	follow := func() {
		f, err := os.Open(logPath)
		if err != nil {
			return
		}
		defer f.Close()
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			offset += int64(len(sc.Bytes())) + 1
			fmt.Fprintln(os.Stderr, "  "+sc.Text())
		}
	}
	for {
		follow()
		if s, err := labstate.Load(dir); err == nil {
			switch s.Phase {
			case labstate.PhaseReady:
				return s, nil
			case labstate.PhaseFailed:
				return s, fmt.Errorf("lab failed to start: %s", s.Error)
			}
		}
		select {
		case err := <-exited:
			follow()
			if s, lerr := labstate.Load(dir); lerr == nil && s.Phase == labstate.PhaseFailed {
				return s, fmt.Errorf("lab failed to start: %s", s.Error)
			}
			return nil, fmt.Errorf("the lab supervisor exited before the lab was ready (%v); its log is above", err)
		case <-ctx.Done():
			return nil, fmt.Errorf("interrupted while waiting for the lab")
		case <-deadline:
			return nil, fmt.Errorf("timed out after %s waiting for the lab to be ready; log: %s", supervisorStartTimeout, logPath)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func printUsage(w io.Writer, s *labstate.State) {
	fmt.Fprintf(w, `
Lab %q is up (backend %s, Vault %s). Use it from any shell:

`, s.Name, s.Backend, s.VaultMode)
	printExports(w, s, "   # Vault's root token: kept in that 0600 file, never printed")
	fmt.Fprint(w, `
  kubectl get namespaces
  kubectl get crd | grep external-secrets
  vault status
`)
	if len(s.VaultAddrs) > 1 {
		fmt.Fprintf(w, "  vault operator raft list-peers          # Vault nodes: %s\n", strings.Join(s.VaultAddrs, " "))
	}
	fmt.Fprintf(w, "\nComponent logs: %s\nStatus: secretslab lab status    Stop: secretslab lab down (or make lab-down)\n", s.ArtifactsDir)
}

// labServe is the detached supervisor: it owns the lab until SIGTERM.
func labServe(ctx context.Context, args []string) error {
	f, err := parseUpFlags("lab serve", args)
	if err != nil {
		return err
	}
	if _, err := f.resolve(ctx); err != nil {
		return err
	}
	dir, err := labstate.Dir(f.name)
	if err != nil {
		return err
	}
	s := &labstate.State{
		Name: f.name, Backend: f.backend, VaultMode: string(f.vaultMode()), Phase: labstate.PhaseStarting,
		Supervisor: proc.Self("supervisor"), Dir: dir,
		ArtifactsDir: filepath.Join(dir, "logs"), RootTokenFile: filepath.Join(dir, "root-token"),
	}
	if err := labstate.Save(s); err != nil {
		return err
	}
	opts := f.labOptions(f.backend, s.ArtifactsDir)
	opts.WorkDir = filepath.Join(dir, "work")
	l, err := backend.Up(ctx, opts)
	if err != nil {
		s.Phase, s.Error = labstate.PhaseFailed, err.Error()
		_ = labstate.Save(s)
		return err
	}
	defer func() {
		fmt.Println("lab: stopping")
		if err := l.Close(context.Background()); err != nil {
			fmt.Println("lab:", l.Secrets().String(err.Error()))
		}
		fmt.Println("lab: stopped")
	}()
	if err := os.WriteFile(s.RootTokenFile, []byte(l.Vault().Token()), 0o600); err != nil {
		return err
	}
	s.Kubeconfig = l.KubeconfigPath()
	s.VaultAddr = l.VaultNodes()[0].Address() // where this host reaches Vault (kind: a port-forward)
	for _, n := range l.VaultNodes() {
		s.VaultAddrs = append(s.VaultAddrs, n.Address())
	}
	if c, ok := l.(interface{ ClusterName() string }); ok {
		s.Cluster = c.ClusterName()
	}
	if c, ok := l.(interface{ RunName() string }); ok {
		s.Run = c.RunName()
	}
	if r, ok := l.(interface {
		Records() []proc.Record
		ContainerIDs() []string
		KeysFile() string
	}); ok {
		s.Processes, s.Containers, s.KeysFile = r.Records(), r.ContainerIDs(), r.KeysFile()
	}
	if f.backend == lab.BackendEmbedded { // the CLIs the printed commands use; kind: the learner's own
		b := &build.Builder{CacheDir: f.cacheDir, Progress: os.Stdout}
		if s.BinDir, err = linkCLIs(ctx, b, f.versions, dir); err != nil {
			s.Phase, s.Error = labstate.PhaseFailed, err.Error()
			_ = labstate.Save(s)
			return err
		}
	}
	if f.tour {
		if s.DemoSecretFile, err = writeDemoSecret(dir); err != nil {
			s.Phase, s.Error = labstate.PhaseFailed, err.Error()
			_ = labstate.Save(s)
			return err
		}
		fmt.Println("lab: setting up chapter 05: bookstore, Vault configuration, the swap")
		if err := setUpChapter05(ctx, l, os.Stdout, s); err != nil {
			s.Phase, s.Error = labstate.PhaseFailed, l.Secrets().String(err.Error())
			_ = labstate.Save(s)
			return err
		}
		s.Tour = true
	}
	s.Phase = labstate.PhaseReady
	if err := labstate.Save(s); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// loadNamed parses --name and loads that lab's state; nil state means no lab by that name.
func loadNamed(cmd string, args []string) (dir, name string, s *labstate.State, err error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	n := fs.String("name", envOr("LAB_NAME", "secretslab"), "lab name (env LAB_NAME)")
	if err := fs.Parse(args); err != nil {
		return "", "", nil, err
	}
	if dir, err = labstate.Dir(*n); err != nil {
		return "", "", nil, err
	}
	s, err = labstate.Load(dir)
	if errors.Is(err, os.ErrNotExist) {
		return dir, *n, nil, nil
	}
	return dir, *n, s, err
}

func labDown(ctx context.Context, args []string) error {
	dir, name, s, err := loadNamed("lab down", args)
	if err != nil {
		return err
	}
	if s == nil {
		fmt.Printf("no lab %q is running (no state in %s)\n", name, dir)
		return nil
	}
	if err := down(ctx, dir, s); err != nil {
		return err
	}
	fmt.Printf("lab %q is down: processes stopped, %s removed\n", name, dir)
	return nil
}

// down stops the supervisor (which closes the lab in order), then anything recorded that
// still runs, removes recorded containers and finally the state dir. What cannot be
// removed is listed with the command that removes it.
func down(ctx context.Context, dir string, s *labstate.State) error {
	var left []string
	if s.Supervisor.PID != 0 {
		if err := proc.StopRecord(ctx, s.Supervisor, 12*time.Minute); err != nil {
			left = append(left, fmt.Sprintf("supervisor pid %d (kill -9 %d)", s.Supervisor.PID, s.Supervisor.PID))
			if s.Run != "" {
				left = append(left, fmt.Sprintf("run %s on the cluster of %s, if the supervisor did not remove it: %s", s.Run, s.Kubeconfig, backend.ClusterLeftoverHelp(s.Run)))
			}
		}
	}
	for _, r := range s.Processes {
		if err := proc.StopRecord(ctx, r, 10*time.Second); err != nil {
			left = append(left, fmt.Sprintf("%s pid %d (kill -9 %d)", r.Name, r.PID, r.PID))
		}
	}
	if s.Cluster != "" {
		if err := kindcluster.Delete(s.Cluster); err != nil {
			left = append(left, fmt.Sprintf("kind cluster %s (kind delete cluster --name %s): %v", s.Cluster, s.Cluster, err))
		}
	}
	for _, id := range s.Containers {
		if err := docker.RemoveContainer(ctx, id); err != nil {
			left = append(left, fmt.Sprintf("container %s (docker rm -f %s): %v", id, id, err))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("lab %q left these behind:\n  %s\nstate kept in %s", s.Name, strings.Join(left, "\n  "), dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w (rm -rf %s)", dir, err, dir)
	}
	return nil
}

func labStatus(ctx context.Context, args []string) error {
	dir, name, s, err := loadNamed("lab status", args)
	if err != nil {
		return err
	}
	if s == nil {
		fmt.Printf("no lab %q (no state in %s); start one with `secretslab lab up`\n", name, dir)
		return nil
	}
	alive := func(r proc.Record) string {
		if r.Alive() {
			return "running"
		}
		return "NOT RUNNING"
	}
	fmt.Printf("lab %q: backend %s, Vault %s, phase %s\n", s.Name, s.Backend, s.VaultMode, s.Phase)
	if s.Error != "" {
		fmt.Printf("  error: %s\n", s.Error)
	}
	fmt.Printf("  %-26s pid %-7d %s\n", "supervisor", s.Supervisor.PID, alive(s.Supervisor))
	for _, r := range s.Processes {
		fmt.Printf("  %-26s pid %-7d %s  (log %s)\n", r.Name, r.PID, alive(r), r.LogPath)
	}
	for _, c := range s.Containers {
		fmt.Printf("  container %s\n", c)
	}
	if s.Phase == labstate.PhaseReady {
		printUsage(os.Stdout, s)
	}
	return nil
}
