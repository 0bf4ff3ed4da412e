package proc

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/secretslab/secretslab/internal/redact"
)

func TestStartRedactsLogsAndStopRecordKillsOnlyThatProcess(t *testing.T) {
	dir := t.TempDir()
	var secrets redact.Set
	secrets.Add("canary-value-123")
	p, err := Start(Spec{Name: "sleeper", Path: "/bin/sh", Args: []string{"-c", "echo token canary-value-123; exec sleep 60"}, LogDir: dir, Redact: &secrets})
	if err != nil {
		t.Fatal(err)
	}
	rec := p.Record
	if !rec.Alive() {
		t.Fatal("just-started process is not alive")
	}
	forged := rec
	forged.StartTime++ // same PID, different start time: must not be treated as ours
	if forged.Alive() {
		t.Fatal("a record with another start time matched the live process")
	}
	if err := StopRecord(context.Background(), rec, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("process did not exit after StopRecord")
	}
	if rec.Alive() {
		t.Fatal("record still alive after StopRecord")
	}
	log, _ := os.ReadFile(p.LogPath)
	if strings.Contains(string(log), "canary-value-123") || !strings.Contains(string(log), redact.Mask) {
		t.Fatalf("log not redacted: %q", log)
	}
}

func TestWaitForReportsAnExitedProcess(t *testing.T) {
	p, err := Start(Spec{Name: "quitter", Path: "/bin/sh", Args: []string{"-c", "exit 3"}, LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	err = WaitFor(context.Background(), "something that never happens", 10*time.Second, 50*time.Millisecond, p,
		func(context.Context) (bool, error) { return false, nil })
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "quitter.log") {
		t.Fatalf("want an error with the exit status and log path, got %v", err)
	}
}

func TestWaitForTimesOutNamingWhatItWaitedFor(t *testing.T) {
	err := WaitFor(context.Background(), "the moon", 200*time.Millisecond, 50*time.Millisecond, nil,
		func(context.Context) (bool, error) { return false, nil })
	if err == nil || !strings.Contains(err.Error(), "the moon") {
		t.Fatalf("got %v", err)
	}
}
