package vaultops

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// KeyFile is what Init produced and what unsealing needs. It is secret: keep it in a 0600
// file and never print it.
// A Shamir-sealed Vault has UnsealKeys; an auto-unsealed one (seal "transit", "awskms"...) has
// RecoveryKeys instead, which authorise some operations (generate-root, rekey) but cannot
// unseal: the seal does that. Shares and Threshold are those of whichever set it has.
type KeyFile struct {
	RootToken    string   `json:"root_token"`
	UnsealKeys   []string `json:"unseal_keys_b64,omitempty"`
	RecoveryKeys []string `json:"recovery_keys_b64,omitempty"`
	Shares       int      `json:"shares"`
	Threshold    int      `json:"threshold"`
}

// SaveKeys writes k as JSON to path with mode 0600. The file is created 0600 under a
// temporary name in the same directory and renamed into place, so the keys are never in a
// file anyone else can read, not even briefly, and a crash leaves no half-written file.
func SaveKeys(path string, k *KeyFile) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return fmt.Errorf("save vault keys: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save vault keys: %w", err)
	}
	// os.CreateTemp creates with O_EXCL and mode 0600
	f, err := os.CreateTemp(dir, ".vault-keys-*")
	if err != nil {
		return fmt.Errorf("save vault keys: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("save vault keys: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("save vault keys to %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save vault keys to %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save vault keys to %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save vault keys: %w", err)
	}
	return nil
}

// LoadKeys reads a file written by SaveKeys. It refuses a file that group or others can
// access, as ssh does with private keys.
func LoadKeys(path string) (*KeyFile, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load vault keys: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load vault keys: %s has mode %v; want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load vault keys: %w", err)
	}
	var k KeyFile
	if err := json.Unmarshal(b, &k); err != nil {
		// json errors quote at most a byte or a type, never the values
		return nil, fmt.Errorf("load vault keys from %s: %w", path, err)
	}
	if k.RootToken == "" || len(k.UnsealKeys)+len(k.RecoveryKeys) == 0 {
		return nil, fmt.Errorf("load vault keys from %s: no root token, or neither unseal nor recovery keys", path)
	}
	return &k, nil
}
