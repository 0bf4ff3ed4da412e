package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// File names written by Write (and, except report.json, by Render).
const (
	JSONFile     = "report.json"
	JUnitFile    = "junit.xml"
	MarkdownFile = "report.md"
	HTMLFile     = "report.html"
)

// Write summarizes r and writes dir/report.json, dir/junit.xml, dir/report.md and
// dir/report.html, creating dir. It sets r.SchemaVersion to SchemaVersion, and drops
// figures (and zeroes durations) that are NaN or infinite, which JSON cannot hold,
// noting each drop in the check's message. It sets r.Ledger from the claims the checks recorded.
func Write(dir string, r *Report) error {
	r.SchemaVersion = SchemaVersion
	dropNonFinite(r)
	r.Summarize()
	r.Ledger = TallyClaims(r.Checks)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", JSONFile, err)
	}
	if err := writeFile(filepath.Join(dir, JSONFile), append(data, '\n')); err != nil {
		return err
	}
	return renderAll(dir, r)
}

// Read reads a report.json; a schemaVersion other than SchemaVersion is an error.
func Read(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse report %s: %w", path, err)
	}
	if r.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("report %s: schemaVersion %d is not supported (this secretslab reads schemaVersion %d)",
			path, r.SchemaVersion, SchemaVersion)
	}
	return &r, nil
}

// Render reads jsonPath and writes junit.xml, report.md and report.html from it into
// outDir (default: the directory of jsonPath). report.json itself is not rewritten.
func Render(jsonPath, outDir string) error {
	r, err := Read(jsonPath)
	if err != nil {
		return err
	}
	if outDir == "" {
		outDir = filepath.Dir(jsonPath)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	r.Summarize()
	return renderAll(outDir, r)
}

// renderAll writes the three derived files; r must be summarized.
func renderAll(dir string, r *Report) error {
	v := newView(r)
	var buf bytes.Buffer
	if err := writeJUnit(&buf, v); err != nil {
		return fmt.Errorf("render %s: %w", JUnitFile, err)
	}
	if err := writeFile(filepath.Join(dir, JUnitFile), buf.Bytes()); err != nil {
		return err
	}
	buf.Reset()
	writeMarkdown(&buf, v)
	if err := writeFile(filepath.Join(dir, MarkdownFile), buf.Bytes()); err != nil {
		return err
	}
	buf.Reset()
	if err := writeHTML(&buf, v); err != nil {
		return fmt.Errorf("render %s: %w", HTMLFile, err)
	}
	return writeFile(filepath.Join(dir, HTMLFile), buf.Bytes())
}

func writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// dropNonFinite removes NaN/Inf figures and durations, which encoding/json rejects.
func dropNonFinite(r *Report) {
	for i := range r.Checks {
		c := &r.Checks[i]
		var dropped []string
		for name, val := range c.Figures {
			if math.IsNaN(val) || math.IsInf(val, 0) {
				delete(c.Figures, name)
				dropped = append(dropped, fmt.Sprintf("figure %s was %v", name, val))
			}
		}
		if math.IsNaN(c.DurationSeconds) || math.IsInf(c.DurationSeconds, 0) {
			dropped = append(dropped, fmt.Sprintf("duration was %v", c.DurationSeconds))
			c.DurationSeconds = 0
		}
		if len(dropped) == 0 {
			continue
		}
		sort.Strings(dropped)
		note := "(report: dropped non-finite values: "
		for j, d := range dropped {
			if j > 0 {
				note += "; "
			}
			note += d
		}
		note += ")"
		if c.Message != "" {
			c.Message += " "
		}
		c.Message += note
	}
}

// Verdict is the run's overall status: Failed if any check failed, Unknown if any
// check has no result (or there are no checks), else Passed. Skipped checks do not
// fail a run. Call Summarize first.
func (r *Report) Verdict() Status {
	switch {
	case r.Summary.Failed > 0:
		return Failed
	case r.Summary.Unknown > 0 || r.Summary.Total == 0:
		return Unknown
	}
	return Passed
}
