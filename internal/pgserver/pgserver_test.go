package pgserver

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/redact"
)

func TestRedactDSN(t *testing.T) {
	got := RedactDSN("postgres://postgres:s3cr3t-value@127.0.0.1:5432/db?sslmode=disable")
	if strings.Contains(got, "s3cr3t-value") || !strings.Contains(got, "127.0.0.1:5432/db") {
		t.Fatalf("RedactDSN: %s", got)
	}
}

func TestMajorOf(t *testing.T) {
	for in, want := range map[string]string{
		"postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n": "15",
		"postgres (PostgreSQL) 9.6.24\n":                         "9",
		"16.2":                                                   "16",
	} {
		if got := majorOf(in); got != want {
			t.Errorf("majorOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkServer logs in, checks that a wrong password is refused and reads the version.
func checkServer(t *testing.T, ctx context.Context, s *Server) {
	t.Helper()
	c, err := pgx.Connect(ctx, s.AdminDSN("postgres"))
	if err != nil {
		t.Fatalf("login with AdminDSN: %v", err)
	}
	c.Close(ctx)

	wrong := strings.Replace(s.AdminDSN("postgres"), ":"+s.password+"@", ":not-the-password@", 1)
	if wrong == s.AdminDSN("postgres") {
		t.Fatal("could not build a wrong-password DSN")
	}
	_, err = pgx.Connect(ctx, wrong)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("wrong password: want SQLSTATE 28P01 (invalid_password), got %v", err)
	}

	v, err := s.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "15") {
		t.Fatalf("Version = %q, want 15.x", v)
	}
	t.Logf("%s mode: Postgres %s on %s", s.Mode(), v, s.Addr())
}

func TestHostMode(t *testing.T) {
	ctx := context.Background()
	if _, err := findBinaries(ctx, "15"); err != nil {
		t.Skipf("no Postgres 15 server binaries: host mode not tested (%v)", err)
	}
	workDir, logDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(workDir, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	parent := filepath.Dir(workDir) // t.TempDir's parent is 0700: Start must not loosen it
	before, err := os.Stat(parent)
	if err != nil {
		t.Fatal(err)
	}
	var secrets redact.Set
	s, err := Start(ctx, Options{Mode: ModeHost, Major: "15", WorkDir: workDir, LogDir: logDir, Redact: &secrets})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Stop(ctx)
		}
	}()
	if s.Mode() != ModeHost || s.ContainerID() != "" || len(s.Records()) != 1 {
		t.Fatalf("mode %s, container %q, records %v", s.Mode(), s.ContainerID(), s.Records())
	}
	if got := secrets.Values(); len(got) != 1 || got[0] != s.password {
		t.Fatal("the admin password is not registered for redaction")
	}
	checkServer(t, ctx, s)

	// A failed CREATE ROLE ... PASSWORD must not echo the password into the log.
	const canary = "canary-pw-5f1c9e2a"
	c, err := pgx.Connect(ctx, s.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	create := "CREATE ROLE canary_role LOGIN PASSWORD '" + canary + "'"
	if _, err := c.Exec(ctx, create); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, create); err == nil {
		t.Fatal("creating the role twice succeeded")
	}
	c.Close(ctx)

	rec := s.Records()[0]
	port, _ := strconv.Atoi(s.Addr()[strings.LastIndex(s.Addr(), ":")+1:])
	dir := s.dir
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true

	log, err := os.ReadFile(rec.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `role "canary_role" already exists`) {
		t.Fatalf("the failed CREATE ROLE is not in %s at all, so the check below proves nothing:\n%s", rec.LogPath, log)
	}
	if strings.Contains(string(log), canary) {
		t.Fatalf("the canary password is in %s:\n%s", rec.LogPath, log)
	}
	if strings.Contains(string(log), s.password) {
		t.Fatalf("the admin password is in %s", rec.LogPath)
	}

	if rec.Alive() {
		t.Fatal("postgres still alive after Stop")
	}
	if pids := processesIn(dir); len(pids) > 0 {
		t.Fatalf("processes still working in %s after Stop: %v", dir, pids)
	}
	if proc.PortInUse(port) {
		t.Fatalf("port %d still in use after Stop", port)
	}
	if l, err := net.Listen("tcp", s.Addr()); err != nil {
		t.Fatalf("cannot listen on %s after Stop: %v", s.Addr(), err)
	} else {
		l.Close()
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Postgres dir %s still exists after Stop", dir)
	}
	entries, _ := os.ReadDir(workDir)
	if len(entries) != 1 || entries[0].Name() != "keep" {
		t.Fatalf("WorkDir after Stop holds %v, want only the caller's file", entries)
	}
	after, err := os.Stat(parent)
	if err != nil {
		t.Fatal(err)
	}
	if after.Mode() != before.Mode() {
		t.Fatalf("%s has mode %v after Stop, was %v", parent, after.Mode(), before.Mode())
	}
}

// processesIn lists the PIDs whose working directory is under dir.
func processesIn(dir string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && strings.HasPrefix(cwd, dir) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestContainerMode(t *testing.T) {
	ctx := context.Background()
	if err := dockerPing(ctx); err != nil {
		t.Skip("no Docker engine: container mode not tested")
	}
	if err := imagePresent(ctx, "postgres:15"); err != nil {
		t.Skipf("container mode not tested: %v", err)
	}
	s, err := Start(ctx, Options{Mode: ModeContainer, Major: "15", WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	id := s.ContainerID()
	if s.Mode() != ModeContainer || id == "" || len(s.Records()) != 0 {
		t.Fatalf("mode %s, container %q, records %v", s.Mode(), id, s.Records())
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr = %s", s.Addr())
	}
	checkServer(t, ctx, s)

	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	info, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for port, bindings := range info.NetworkSettings.Ports {
		for _, b := range bindings {
			if b.HostIP != "127.0.0.1" {
				t.Errorf("container port %s is published on %q, want loopback only", port, b.HostIP)
			}
		}
	}

	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerInspect(ctx, id); !cerrdefs.IsNotFound(err) {
		t.Fatalf("container %s still exists after Stop (inspect: %v)", id, err)
	}
}
