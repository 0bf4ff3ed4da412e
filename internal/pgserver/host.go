package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/secretslab/secretslab/internal/proc"
)

type binaries struct{ initdb, postgres string }

// findBinaries looks in $PG_BIN_DIR, then /usr/lib/postgresql/<major>/bin, then PATH, and
// checks that postgres --version has the wanted major.
func findBinaries(ctx context.Context, major string) (binaries, error) {
	var b binaries
	if dir := os.Getenv("PG_BIN_DIR"); dir != "" {
		b = binaries{filepath.Join(dir, "initdb"), filepath.Join(dir, "postgres")}
		if !isFile(b.initdb) || !isFile(b.postgres) {
			return b, fmt.Errorf("PG_BIN_DIR=%s has no initdb and postgres", dir)
		}
	} else if dir := "/usr/lib/postgresql/" + major + "/bin"; isFile(filepath.Join(dir, "initdb")) && isFile(filepath.Join(dir, "postgres")) {
		b = binaries{filepath.Join(dir, "initdb"), filepath.Join(dir, "postgres")}
	} else {
		var err1, err2 error
		b.initdb, err1 = exec.LookPath("initdb")
		b.postgres, err2 = exec.LookPath("postgres")
		if err1 != nil || err2 != nil {
			return b, fmt.Errorf("no Postgres server binaries (initdb, postgres) in $PG_BIN_DIR, %s or PATH", dir)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, b.postgres, "--version").Output()
	if err != nil {
		return b, fmt.Errorf("%s --version: %w", b.postgres, err)
	}
	if got := majorOf(string(out)); got != major {
		return b, fmt.Errorf("%s is Postgres %s (%q), want major %s; set PG_BIN_DIR to a %s installation",
			b.postgres, got, string(out), major, major)
	}
	return b, nil
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// runAs picks the user to run postgres as: nil (ourselves) unless we are root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root, and neither a postgres nor a nobody user exists to run Postgres as")
}

func (s *Server) startHost(ctx context.Context, opts Options, bins binaries) error {
	s.mode = ModeHost
	cred, err := runAs()
	if err != nil {
		return err
	}
	// The cluster lives in a private directory under the system temp dir, not under WorkDir:
	// the server's user (not root) must reach it without loosening the modes of the caller's
	// directories, and its Unix socket path must stay under 108 bytes.
	if s.dir, err = os.MkdirTemp("", "secretslab-pg-"); err != nil {
		return fmt.Errorf("create Postgres dir: %w", err)
	}
	data, sock := filepath.Join(s.dir, "data"), filepath.Join(s.dir, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("create Postgres dir: %w", err)
		}
	}
	if len(sock)+len("/.s.PGSQL.65535") > 107 { // sun_path holds 108 bytes with the NUL
		return fmt.Errorf("temp dir %s is too deep: the Unix socket path would exceed 107 bytes (set TMPDIR)", s.dir)
	}
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write initdb password file: %w", err)
	}
	if cred != nil {
		for _, p := range []string{s.dir, data, sock, pwfile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("hand %s to uid %d: %w", p, cred.Uid, err)
			}
		}
	}

	err = initdb(ctx, opts, bins.initdb, s.dir, data, pwfile, cred)
	if rmErr := os.Remove(pwfile); rmErr != nil && err == nil {
		err = fmt.Errorf("remove initdb password file: %w", rmErr)
	}
	if err != nil {
		return err
	}

	port, err := proc.FreePort()
	if err != nil {
		return err
	}
	s.addr = fmt.Sprintf("127.0.0.1:%d", port)
	s.proc, err = proc.Start(proc.Spec{
		Name: "postgres",
		Path: bins.postgres,
		Args: []string{"-D", data,
			"-c", "listen_addresses=127.0.0.1",
			"-c", "port=" + strconv.Itoa(port),
			"-c", "unix_socket_directories=" + sock,
			"-c", "fsync=off",
			"-c", "max_connections=200",
			"-c", "log_min_error_statement=panic",
			"-c", "log_statement=none",
		},
		Dir:    s.dir,
		LogDir: opts.LogDir,
		Redact: opts.Redact,
		RunAs:  cred,
	})
	if err != nil {
		return err
	}
	return s.waitLogin(ctx, s.proc)
}

// initdb creates the cluster; its output is appended (redacted) to postgres.log.
func initdb(ctx context.Context, opts Options, path, dir, data, pwfile string, cred *syscall.Credential) error {
	if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	logPath := filepath.Join(opts.LogDir, "postgres.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("initdb: open log: %w", err)
	}
	defer f.Close()
	w := opts.Redact.Writer(f)
	defer w.Close()

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	args := []string{"-D", data, "-U", "postgres", "--pwfile=" + pwfile, "--auth=scram-sha-256",
		"--encoding=UTF8", "--no-locale", "--no-sync"}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(w, "--- %s: running %s %v\n", time.Now().Format(time.RFC3339), path, args)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb failed: %w (log: %s)", err, logPath)
	}
	return nil
}

// stopPostgres asks for a fast shutdown (SIGINT: clients are disconnected), then falls back
// to proc's SIGTERM/SIGKILL.
func stopPostgres(ctx context.Context, p *proc.Process) error {
	if !p.Running() {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGINT)
	err := proc.WaitFor(ctx, "Postgres to shut down", stopGrace, 100*time.Millisecond, nil,
		func(context.Context) (bool, error) { return !p.Running(), nil })
	if err == nil {
		return nil
	}
	if err := p.Stop(stopGrace); err != nil {
		return fmt.Errorf("stop Postgres: %w", err)
	}
	return nil
}

// removeHostFiles removes the directory Start created.
func (s *Server) removeHostFiles() error {
	if s.dir == "" {
		return nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove %s: %w", s.dir, err)
	}
	return nil
}
