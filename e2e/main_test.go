// Package e2e runs secretslab's end-to-end tests against a lab brought up once per run.
// BACKEND picks it (embedded by default here), HA=1 runs Vault as three Raft nodes;
// ARTIFACTS_DIR keeps the component logs; REPORT_DIR receives the conformance report.
// Filter scenarios with `go test ./e2e -args --labels scenario=swap`. Every Finish step runs,
// and any of them failing fails the run; SIGINT or SIGTERM stops the run and cleans up.
package e2e

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

func TestMain(m *testing.M) {
	runTeeIfAsked()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cfg, err := envconf.NewFromFlags()
	if err != nil {
		log.Fatalf("e2e flags: %v", err)
	}
	if testenv, err = env.NewWithContext(ctx, cfg); err != nil {
		log.Fatalf("e2e environment: %v", err)
	}
	testenv.Setup(captureOutput, bringLabUp, plantIfAsked, prepareRunner)
	testenv.Finish(allOf(writeReport, bringLabDown, nothingLeftBehind, secretCanary))
	code := withFinishErrors(testenv.Run(m))
	stop()
	os.Exit(code)
}
