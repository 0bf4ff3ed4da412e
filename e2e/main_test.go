// Package e2e runs secretslab's end-to-end tests against a lab brought up once per run.
// BACKEND picks it (embedded by default here); ARTIFACTS_DIR keeps the component logs.
package e2e

import (
	"os"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

var testenv env.Environment

func TestMain(m *testing.M) {
	runTeeIfAsked()
	testenv = env.NewWithConfig(envconf.New())
	testenv.Setup(captureOutput, bringLabUp)
	testenv.Finish(bringLabDown, nothingLeftBehind)
	os.Exit(testenv.Run(m))
}
