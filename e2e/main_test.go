// Package e2e runs secretslab's end-to-end tests against a lab brought up once per run.
// BACKEND picks it (embedded by default here); ARTIFACTS_DIR keeps the component logs;
// REPORT_DIR receives the conformance report. Filter scenarios with
// `go test ./e2e -args --labels scenario=swap`.
package e2e

import (
	"log"
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

func TestMain(m *testing.M) {
	runTeeIfAsked()
	cfg, err := envconf.NewFromFlags()
	if err != nil {
		log.Fatalf("e2e flags: %v", err)
	}
	testenv = env.NewWithConfig(cfg)
	testenv.Setup(captureOutput, bringLabUp, prepareRunner)
	testenv.Finish(writeReport, bringLabDown, nothingLeftBehind, secretCanary)
	os.Exit(testenv.Run(m))
}
