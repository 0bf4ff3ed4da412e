package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/secretslab/secretslab/internal/proc"
)

// A run whose Finish steps find a leaked secret or a leftover process must fail, naming the
// file or the process. Each case runs this test binary as a child that brings up its own
// embedded lab, runs no test, and plants the failure.
func TestFinishStepsFailTheRun(t *testing.T) {
	if os.Getenv("BACKEND") == "kind" {
		t.Skip("the planted children run on the embedded backend; this run is kind")
	}
	for _, c := range []struct {
		plant string
		want  *regexp.Regexp
	}{
		{"leak", regexp.MustCompile(`FAIL finish step secretCanary: secret canary: secret values found in \d+ place\(s\): .*test-output\.log`)},
		{"leftover", regexp.MustCompile(`FAIL finish step nothingLeftBehind: the lab left behind: process planted-leftover \(pid \d+\)`)},
	} {
		t.Run(c.plant, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), plantEnv+"="+c.plant, "BACKEND=embedded", "HA=",
				"ARTIFACTS_DIR="+filepath.Join(dir, "artifacts"), "REPORT_DIR="+filepath.Join(dir, "report"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			defer stopPlantedLeftover(t, out.String())
			// The child's output holds its planted value: show only the lines about the verdict.
			verdict := linesWith(out.String(), "FAIL finish step", "lab up in", "secret canary", "planted leftover")
			t.Logf("child (%s, %s):\n%s", c.plant, time.Since(start).Round(time.Second), verdict)
			if err == nil {
				t.Fatalf("the child run with a planted %s exited 0", c.plant)
			}
			if !strings.Contains(verdict, "lab up in") {
				t.Fatalf("the child's lab did not come up, so the plant proved nothing")
			}
			if !c.want.MatchString(verdict) {
				t.Fatalf("the child failed without naming the planted %s (want %s)", c.plant, c.want)
			}
			if n := strings.Count(verdict, "FAIL finish step"); n != 1 {
				t.Fatalf("want exactly the planted failure, got %d failed finish steps", n)
			}
		})
	}
}

func linesWith(s string, subs ...string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				keep = append(keep, l)
				break
			}
		}
	}
	return strings.Join(keep, "\n")
}

// stopPlantedLeftover stops the process the "leftover" child planted, by its recorded pid
// and start time (never another process).
func stopPlantedLeftover(t *testing.T, out string) {
	m := regexp.MustCompile(`planted leftover: pid (\d+) start (\d+)`).FindStringSubmatch(out)
	if m == nil {
		return
	}
	var r proc.Record
	fmt.Sscan(m[1], &r.PID)
	fmt.Sscan(m[2], &r.StartTime)
	if err := proc.StopRecord(t.Context(), r, 5*time.Second); err != nil {
		t.Errorf("stop the planted leftover: %v", err)
	}
}
