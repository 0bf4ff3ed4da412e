// Package labstate records a running lab on disk, so that `secretslab lab down` and
// `lab status` work from any shell: who supervises it (PID and start time), which
// processes it runs, and where its kubeconfig, logs and token file are.
package labstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/secretslab/secretslab/internal/proc"
)

// Phases of a lab.
const (
	PhaseStarting = "starting"
	PhaseReady    = "ready"
	PhaseFailed   = "failed"
)

// State is the content of state.json.
type State struct {
	Name       string        `json:"name"`
	Backend    string        `json:"backend"`
	VaultMode  string        `json:"vaultMode"`
	Phase      string        `json:"phase"`
	Error      string        `json:"error,omitempty"`
	Supervisor proc.Record   `json:"supervisor"`
	Processes  []proc.Record `json:"processes,omitempty"`
	Containers []string      `json:"containers,omitempty"`
	Cluster    string        `json:"cluster,omitempty"` // a kind cluster this lab created: deleted on down
	Run        string        `json:"run,omitempty"`     // cluster backend: the run whose namespaces the supervisor removes
	Tour       bool          `json:"tour,omitempty"`    // chapter 05 was set up
	CatalogURL string        `json:"catalogURL,omitempty"`
	// What the tour's setup observed: the external-secrets.io versions served, and for each
	// claim of the ledger it observed (by id, e.g. C05-05), whether the claim held on this lab.
	ESOServed      []string        `json:"esoServed,omitempty"`
	Claims         map[string]bool `json:"claims,omitempty"`
	Kubeconfig     string          `json:"kubeconfig,omitempty"`
	VaultAddr      string          `json:"vaultAddr,omitempty"`
	VaultAddrs     []string        `json:"vaultAddrs,omitempty"`
	RootTokenFile  string          `json:"rootTokenFile,omitempty"`
	KeysFile       string          `json:"keysFile,omitempty"`
	ArtifactsDir   string          `json:"artifactsDir,omitempty"`
	BinDir         string          `json:"binDir,omitempty"`         // embedded: kubectl and vault for the learner's PATH (links into the build cache)
	DemoSecretFile string          `json:"demoSecretFile,omitempty"` // tour: raw-manifests/16-db-credentials.yaml copied here, for the revert step
	Dir            string          `json:"dir"`
}

// Dir is where lab name keeps its state: $SECRETSLAB_STATE_DIR/NAME, else
// $XDG_STATE_HOME/secretslab/NAME, else ~/.local/state/secretslab/NAME.
func Dir(name string) (string, error) {
	if d := os.Getenv("SECRETSLAB_STATE_DIR"); d != "" {
		return filepath.Join(d, name), nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "secretslab", name), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state dir: set SECRETSLAB_STATE_DIR: %w", err)
	}
	return filepath.Join(home, ".local", "state", "secretslab", name), nil
}

func file(dir string) string { return filepath.Join(dir, "state.json") }

// Load reads the state in dir; os.ErrNotExist when there is none.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(file(dir))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read %s: %w", file(dir), err)
	}
	return &s, nil
}

// Save writes the state atomically.
func Save(s *State) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := file(s.Dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file(s.Dir))
}

// Exists reports whether dir holds a state file.
func Exists(dir string) bool {
	_, err := os.Stat(file(dir))
	return !errors.Is(err, os.ErrNotExist)
}
