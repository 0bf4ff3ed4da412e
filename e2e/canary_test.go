package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/secretslab/secretslab/fixtures"
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
	values := append(labSecrets.Values(), canaries...)
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
	// A lab that came up made at least a root token and its own passwords; fewer values would
	// prove nothing. After a failed bring-up, search for whatever it made.
	if labUp && (len(values) < 6 || rootToken == "") {
		return ctx, fmt.Errorf("secret canary: only %d secret values known; it would prove nothing", len(values))
	}
	time.Sleep(300 * time.Millisecond) // let the output tee catch up
	dirs := []string{artifactsDir}
	if reportDir != "" {
		dirs = append(dirs, reportDir)
	}
	var hits []string
	files := 0
	for _, d := range dirs {
		h, n, err := scanForSecrets(d, values)
		if err != nil {
			return ctx, err
		}
		hits, files = append(hits, h...), files+n
	}
	if labUp && files < 5 {
		return ctx, fmt.Errorf("secret canary: scanned only %d files under %v; expected every component log", files, dirs)
	}
	if len(hits) > 0 {
		return ctx, fmt.Errorf("secret canary: secret values found in: %s", strings.Join(hits, ", "))
	}
	fmt.Printf("secret canary: searched %d files (logs, artifacts, reports, test output) for %d secret values: none found\n", files, len(values))
	return ctx, nil
}

// scanForSecrets searches every file under dir for each value; it returns "file: value
// fingerprint" for each hit and the number of files searched.
func scanForSecrets(dir string, values []string) (hits []string, files int, err error) {
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, v := range values {
			if v != "" && bytes.Contains(b, []byte(v)) {
				hits = append(hits, fmt.Sprintf("%s (%s)", path, redact.Fingerprint([]byte(v))))
			}
		}
		return nil
	})
	return hits, files, err
}
