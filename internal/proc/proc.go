// Package proc starts and stops the host processes a lab owns. Every process gets one log
// file (written through a redacting writer), dies with its parent, and is recorded by PID
// and start time so that another process can later stop exactly it and nothing else.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/secretslab/secretslab/internal/redact"
)

// Spec describes a process to start.
type Spec struct {
	Name   string   // component name; also the log file's base name
	Path   string   // binary
	Args   []string // arguments, without argv[0]
	Env    []string // added to a minimal environment (PATH, HOME, TMPDIR)
	Dir    string   // working directory
	LogDir string   // the log goes to LogDir/Name.log (appended)
	Redact *redact.Set
	RunAs  *syscall.Credential // nil: the current user
	Stdin  io.Reader
}

// Process is a running (or exited) child.
type Process struct {
	Record
	cmd     *exec.Cmd
	log     io.WriteCloser
	logFile *os.File
	done    chan struct{}
	waitErr error
}

// Record identifies a process across restarts of its owner.
type Record struct {
	Name      string `json:"name"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"` // clock ticks since boot, /proc/PID/stat field 22
	LogPath   string `json:"logPath"`
}

// Start launches spec and returns once the process exists.
func Start(spec Spec) (*Process, error) {
	if spec.Redact == nil {
		spec.Redact = &redact.Set{}
	}
	if err := os.MkdirAll(spec.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	logPath := filepath.Join(spec.LogDir, spec.Name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", spec.Name, err)
	}
	lw := spec.Redact.Writer(f)
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = append(baseEnv(), spec.Env...)
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.Stdin = spec.Stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,            // a terminal's Ctrl-C reaches us, and we stop the child in order
		Pdeathsig:  syscall.SIGKILL, // the owner died without cleaning up: do not outlive it
		Credential: spec.RunAs,
	}
	fmt.Fprintf(lw, "--- %s: starting %s %s\n", time.Now().Format(time.RFC3339), spec.Path, strings.Join(spec.Args, " "))
	if err := cmd.Start(); err != nil {
		lw.Close()
		f.Close()
		return nil, fmt.Errorf("start %s (%s): %w", spec.Name, spec.Path, err)
	}
	p := &Process{
		Record: Record{Name: spec.Name, PID: cmd.Process.Pid, LogPath: logPath},
		cmd:    cmd, log: lw, logFile: f, done: make(chan struct{}),
	}
	p.StartTime, _ = startTime(p.PID)
	go func() {
		p.waitErr = cmd.Wait()
		lw.Close()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitError describes how the process ended; nil while it runs.
func (p *Process) ExitError() error {
	select {
	case <-p.done:
		if p.waitErr == nil {
			return fmt.Errorf("%s exited with status 0", p.Name)
		}
		return fmt.Errorf("%s exited: %w", p.Name, p.waitErr)
	default:
		return nil
	}
}

// Result is the exit error after Done is closed: nil for exit status 0.
func (p *Process) Result() error {
	<-p.done
	if p.waitErr != nil {
		return fmt.Errorf("%s: %w", p.Name, p.waitErr)
	}
	return nil
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs. It returns once the process is gone.
func (p *Process) Stop(grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	return p.Kill()
}

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() error {
	if !p.Running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s (pid %d): %w", p.Name, p.PID, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) still running 10s after SIGKILL", p.Name, p.PID)
	}
}

// Alive reports whether the recorded process still runs: same PID and same start time,
// so a recycled PID is never mistaken for ours.
func (r Record) Alive() bool {
	st, err := startTime(r.PID)
	return err == nil && st == r.StartTime && !zombie(r.PID)
}

// StopRecord stops a process recorded by another (possibly dead) owner.
func StopRecord(ctx context.Context, r Record, grace time.Duration) error {
	if !r.Alive() {
		return nil
	}
	_ = syscall.Kill(r.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !r.Alive() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if r.Alive() {
		_ = syscall.Kill(r.PID, syscall.SIGKILL)
	}
	for i := 0; i < 100 && r.Alive(); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if r.Alive() {
		return fmt.Errorf("%s (pid %d) survived SIGKILL", r.Name, r.PID)
	}
	return nil
}

// startTime reads field 22 of /proc/PID/stat.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// the command name (field 2) may contain spaces; fields after it follow the last ')'
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// Group stops a set of processes in reverse start order.
type Group struct {
	mu    sync.Mutex
	procs []*Process
}

// Add registers p.
func (g *Group) Add(p *Process) {
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
}

// Records lists the processes of the group.
func (g *Group) Records() []Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Record, 0, len(g.procs))
	for _, p := range g.procs {
		out = append(out, p.Record)
	}
	return out
}

// StopAll stops every process, newest first, and joins the errors.
func (g *Group) StopAll(grace time.Duration) error {
	g.mu.Lock()
	procs := append([]*Process(nil), g.procs...)
	g.procs = nil
	g.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(grace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RecordOf records the running process pid under name.
func RecordOf(name string, pid int) (Record, error) {
	st, err := startTime(pid)
	if err != nil {
		return Record{}, fmt.Errorf("record %s (pid %d): %w", name, pid, err)
	}
	return Record{Name: name, PID: pid, StartTime: st}, nil
}

// Self is the record of the calling process.
func Self(name string) Record {
	st, _ := startTime(os.Getpid())
	return Record{Name: name, PID: os.Getpid(), StartTime: st}
}
