package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The canary's scanner must find a planted value, or its "none found" means nothing.
func TestScanForSecretsFindsAPlantedValue(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "lab"), 0o755)
	os.WriteFile(filepath.Join(dir, "lab", "vault.log"), []byte("... token planted-canary-42 ..."), 0o644)
	os.WriteFile(filepath.Join(dir, "clean.log"), []byte("nothing here"), 0o644)
	hits, files, err := scanForSecrets(dir, []string{"planted-canary-42", "absent-value-99"})
	if err != nil {
		t.Fatal(err)
	}
	if files != 2 || len(hits) != 1 || !strings.Contains(hits[0], "vault.log") || strings.Contains(hits[0], "planted-canary-42") {
		t.Fatalf("files=%d hits=%v", files, hits)
	}
}
