// Package pgserver runs a throw-away Postgres server for a lab, either from host binaries or
// in a Docker container, with a random superuser password that never reaches a log or error.
//
// Host mode runs initdb and postgres as host processes (through internal/proc) on 127.0.0.1.
// Postgres refuses to run as root: under euid 0 they run as the "postgres" user, else as
// "nobody". The cluster's data and socket live in a private directory under the system temp
// dir, which that user can reach without any change to the modes of the caller's directories
// (and where the socket path stays short); Stop removes it.
// The password reaches initdb through a 0600 file that is deleted as soon as initdb ends.
//
// Container mode uses testcontainers-go's postgres module with a locally present image
// "postgres:<major>"; nothing is pulled. Testcontainers' reaper (Ryuk) needs an image that
// cannot be pulled offline, so Start sets TESTCONTAINERS_RYUK_DISABLED=true in the process
// environment when the caller has not set it. Testcontainers reads its configuration once per
// process, so this only works if nothing used testcontainers earlier in the process; Start
// reports an error otherwise. Without the reaper nothing removes a forgotten container: Stop
// terminates it, and ContainerID lets a lab state file record it for a later cleanup. The
// port is published on 127.0.0.1 only. The password is given to the image as
// POSTGRES_PASSWORD, so `docker inspect` on the container shows it.
//
// Both modes set log_min_error_statement=panic and log_statement=none, so a failed
// statement carrying a password (CREATE ROLE ... PASSWORD '...', as Vault's database engine
// sends) is not echoed into the server log.
package pgserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/redact"
)

// Mode selects where the server runs.
type Mode string

const (
	ModeAuto      Mode = "auto"      // host binaries when found, else a container
	ModeHost      Mode = "host"      // host processes
	ModeContainer Mode = "container" // a Docker container
)

// Options configure Start.
type Options struct {
	Mode    Mode   // "" means auto
	Major   string // major version, e.g. "15"
	WorkDir string // data dir and sockets go under here
	LogDir  string // host mode: postgres.log (default WorkDir)
	Redact  *redact.Set
}

// Timeouts.
const (
	readyTimeout = 2 * time.Minute
	stopGrace    = 10 * time.Second
)

// Server is a running Postgres.
type Server struct {
	mode     Mode
	addr     string
	password string
	secrets  *redact.Set

	// host mode
	proc *proc.Process
	dir  string // created by Start under WorkDir, removed by Stop
	// container mode
	container *tcpostgres.PostgresContainer

	stopOnce sync.Once
	stopErr  error
}

// Start starts a server and returns once a login with the admin DSN succeeds.
func Start(ctx context.Context, opts Options) (s *Server, err error) {
	if opts.Major == "" {
		return nil, errors.New("pgserver: Options.Major is required")
	}
	if opts.WorkDir == "" {
		return nil, errors.New("pgserver: Options.WorkDir is required")
	}
	if opts.Redact == nil {
		opts.Redact = &redact.Set{}
	}
	if opts.LogDir == "" {
		opts.LogDir = opts.WorkDir
	}
	pw, err := randomPassword()
	if err != nil {
		return nil, err
	}
	opts.Redact.Add(pw) // before anything starts
	s = &Server{password: pw, secrets: opts.Redact}
	defer func() {
		if err != nil {
			_ = s.Stop(context.WithoutCancel(ctx))
			err = s.scrub(err)
			s = nil
		}
	}()

	switch opts.Mode {
	case ModeHost:
		bins, err := findBinaries(ctx, opts.Major)
		if err != nil {
			return s, err
		}
		return s, s.startHost(ctx, opts, bins)
	case ModeContainer:
		if err := dockerPing(ctx); err != nil {
			return s, fmt.Errorf("container mode: no Docker engine answers: %w", err)
		}
		return s, s.startContainer(ctx, opts)
	case ModeAuto, "":
		bins, hostErr := findBinaries(ctx, opts.Major)
		if hostErr == nil {
			return s, s.startHost(ctx, opts, bins)
		}
		dockerErr := dockerPing(ctx)
		if dockerErr == nil {
			if err := s.startContainer(ctx, opts); err != nil {
				return s, fmt.Errorf("no host binaries (%v), and container mode failed: %w", hostErr, err)
			}
			return s, nil
		}
		return s, fmt.Errorf("no way to run Postgres %s: host binaries: %v; Docker: %v", opts.Major, hostErr, dockerErr)
	default:
		return s, fmt.Errorf("pgserver: unknown mode %q (want auto, host or container)", opts.Mode)
	}
}

// Mode reports where the server runs (host or container).
func (s *Server) Mode() Mode { return s.mode }

// Addr is 127.0.0.1:PORT.
func (s *Server) Addr() string { return s.addr }

// AdminDSN is a URL for the superuser "postgres" on database, without TLS.
func (s *Server) AdminDSN(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", s.password),
		Host:     s.addr,
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Version reads server_version from the running server.
func (s *Server) Version(ctx context.Context) (string, error) {
	c, err := connect(ctx, s.AdminDSN("postgres"))
	if err != nil {
		return "", s.scrub(fmt.Errorf("read Postgres version: %w", err))
	}
	defer c.Close(context.WithoutCancel(ctx))
	var v string
	if err := c.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "", s.scrub(fmt.Errorf("read Postgres version: %w", err))
	}
	return v, nil
}

// Records lists the host processes (none in container mode).
func (s *Server) Records() []proc.Record {
	if s.proc == nil {
		return nil
	}
	return []proc.Record{s.proc.Record}
}

// ContainerID is the Docker container's ID ("" in host mode).
func (s *Server) ContainerID() string {
	if s.container == nil {
		return ""
	}
	return s.container.GetContainerID()
}

// Stop stops the server and removes what Start created. Calling it again returns the first result.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		var errs []error
		if s.proc != nil {
			errs = append(errs, stopPostgres(ctx, s.proc))
		}
		if s.container != nil {
			if err := s.container.Terminate(ctx); err != nil {
				errs = append(errs, fmt.Errorf("remove container %s: %w", s.container.GetContainerID(), err))
			}
		}
		errs = append(errs, s.removeHostFiles())
		s.stopErr = s.scrub(errors.Join(errs...))
	})
	return s.stopErr
}

// waitLogin waits until a real login with the admin DSN succeeds. A refused password is final.
func (s *Server) waitLogin(ctx context.Context, p *proc.Process) error {
	dsn := s.AdminDSN("postgres")
	return proc.WaitFor(ctx, "Postgres to accept a login on "+s.addr, readyTimeout, 250*time.Millisecond, p,
		func(ctx context.Context) (bool, error) {
			c, err := connect(ctx, dsn)
			if err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "28P01" {
					return false, proc.Permanent(err)
				}
				return false, err
			}
			c.Close(ctx)
			return true, nil
		})
}

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", RedactDSN(dsn), err)
	}
	return c, nil
}

// RedactDSN returns dsn with its password masked, for messages.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		if err != nil {
			return "(unparsable DSN)"
		}
		return dsn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redact.Mask)
	}
	return u.String()
}

// scrub masks the admin password (and any other registered secret) in err, as a last guard.
func (s *Server) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := s.secrets.String(msg); clean != msg {
		return errors.New(clean)
	}
	return err
}

func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate the Postgres admin password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// majorOf extracts the major version from "postgres (PostgreSQL) 15.18 (Debian ...)" or "15.18".
func majorOf(version string) string {
	if i := strings.Index(version, "(PostgreSQL)"); i >= 0 {
		version = version[i+len("(PostgreSQL)"):]
	}
	version = strings.TrimSpace(version)
	if i := strings.IndexAny(version, ". \n"); i >= 0 {
		version = version[:i]
	}
	return version
}
