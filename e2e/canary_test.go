package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/canary"
	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/lab"
)

// rootToken is kept from setup: the canary runs after the lab is gone.
var rootToken string

// secretCanary is the last Finish step: every log, artifact and report of the run, and all
// it printed, is searched for every secret value the run used: the root token, unseal
// keys, Postgres passwords, ServiceAccount and Vault tokens, KV values, minted passwords
// and the demo Secret's password and DSN.
func secretCanary(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	_, labUp := ctx.Value(labKey{}).(lab.Lab)
	values := labSecrets.Values()
	values = append(values, rootToken)
	demo, err := fixtures.DemoSecret()
	if err != nil {
		return ctx, err
	}
	for k, v := range demo {
		if strings.Contains(k, "PASSWORD") || strings.Contains(k, "DSN") {
			values = append(values, string(v))
		}
	}
	// A lab that came up made its root token and the demo's password and DSN at least; with
	// fewer values the search would prove nothing. After a failed bring-up, search for
	// whatever it made.
	if labUp && (len(values) < 3 || rootToken == "") {
		return ctx, fmt.Errorf("secret canary: only %d secret values known; it would prove nothing", len(values))
	}
	time.Sleep(300 * time.Millisecond) // let the output tee catch up
	dirs := []string{artifactsDir}
	if reportDir != "" {
		dirs = append(dirs, reportDir)
	}
	res, err := canary.Scan(dirs, values, redact.Fingerprint)
	if err != nil {
		return ctx, fmt.Errorf("secret canary: %w", err)
	}
	if labUp && res.Files < 5 {
		return ctx, fmt.Errorf("secret canary: scanned only %d files under %v; expected every component log", res.Files, dirs)
	}
	if err := res.Err(); err != nil {
		return ctx, fmt.Errorf("secret canary: %w", err)
	}
	fmt.Printf("secret canary (logs, artifacts, reports, test output): %s\n", res.Summary())
	return ctx, nil
}
