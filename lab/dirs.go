package lab

import (
	"os"
	"path/filepath"
)

// Dirs are a lab's private work dir (0700) and its artifacts dir.
type Dirs struct {
	Work      string
	Artifacts string
	OwnWork   bool // Work is a temp dir the lab created: Close removes it
}

// MakeDirs creates opts.WorkDir (or a new temp dir named after prefix) and the artifacts dir
// (opts.ArtifactsDir, else Work/artifacts).
func MakeDirs(opts Options, prefix string) (Dirs, error) {
	d := Dirs{Work: opts.WorkDir, Artifacts: opts.ArtifactsDir}
	if d.Work == "" {
		dir, err := os.MkdirTemp("", prefix)
		if err != nil {
			return d, err
		}
		d.Work, d.OwnWork = dir, true
	}
	if err := os.MkdirAll(d.Work, 0o700); err != nil {
		return d, err
	}
	if err := os.Chmod(d.Work, 0o700); err != nil {
		return d, err
	}
	if d.Artifacts == "" {
		d.Artifacts = filepath.Join(d.Work, "artifacts")
	}
	return d, os.MkdirAll(d.Artifacts, 0o755)
}
