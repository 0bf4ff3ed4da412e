// Package canary searches files for secret values: the check that logs, artifacts and
// reports of a run hold none of the secrets the run used, in any of the forms
// redact.Forms lists (as is, JSON- and URL-escaped, base64 in both alphabets with and
// without padding, and inside a larger base64 blob at any alignment). A hit names the file,
// the forms found and the value's fingerprint, never the value.
package canary

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/secretslab/secretslab/internal/redact"
)

// Hit is a value found in a file.
type Hit struct {
	File        string
	Forms       []string // the forms found, most specific first; a form implied by an earlier one (a prefix of it, say) is left out
	Fingerprint string   // the value's fingerprint
}

// String is "file (form[, form...]; fingerprint)".
func (h Hit) String() string {
	return fmt.Sprintf("%s (%s; %s)", h.File, strings.Join(h.Forms, ", "), h.Fingerprint)
}

// Result is what a scan searched and found.
type Result struct {
	Files  int   // regular files searched
	Bytes  int64 // bytes searched
	Values int   // distinct non-empty values searched for
	Forms  int   // encoded forms searched for, all values together
	Hits   []Hit
}

// Err is nil without hits, else an error listing them (files, forms and fingerprints).
func (r Result) Err() error {
	if len(r.Hits) == 0 {
		return nil
	}
	hits := make([]string, len(r.Hits))
	for i, h := range r.Hits {
		hits[i] = h.String()
	}
	return fmt.Errorf("secret values found in %d place(s): %s", len(r.Hits), strings.Join(hits, ", "))
}

// Summary is one line on what was searched and found.
func (r Result) Summary() string {
	found := "none found"
	if len(r.Hits) > 0 {
		found = fmt.Sprintf("%d hit(s)", len(r.Hits))
	}
	return fmt.Sprintf("searched %d files (%d bytes) for %d secret values in %d forms: %s", r.Files, r.Bytes, r.Values, r.Forms, found)
}

type needle struct {
	value int // index into values
	form  redact.Form
	text  []byte
}

// chunk is how much of a file is searched at a time.
const chunk = 1 << 20

// Scan searches every regular file under dirs (walked recursively; symbolic links are not
// followed) for every value in every form of redact.Forms. fp names a value in a hit; nil
// means redact.Fingerprint. Empty values are skipped and duplicates searched once. A dir
// that cannot be walked or a file that cannot be read is an error (a canary that did not
// look proves nothing); the result so far is returned with it.
func Scan(dirs []string, values []string, fp func([]byte) string) (Result, error) {
	if fp == nil {
		fp = redact.Fingerprint
	}
	var r Result
	var uniq []string
	seen := map[string]bool{}
	for _, v := range values {
		if v != "" && !seen[v] {
			seen[v] = true
			uniq = append(uniq, v)
		}
	}
	r.Values = len(uniq)
	var needles []needle
	longest := 0
	for i, v := range uniq {
		for _, f := range redact.Forms(v) {
			needles = append(needles, needle{value: i, form: f, text: []byte(f.Text)})
			longest = max(longest, len(f.Text))
		}
	}
	r.Forms = len(needles)
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			found, n, err := scanFile(path, needles, longest)
			if err != nil {
				return err
			}
			r.Files++
			r.Bytes += n
			// one hit per value and file, its forms in Forms order
			byValue := map[int][]redact.Form{}
			var order []int
			for i, ok := range found {
				if !ok {
					continue
				}
				nd := needles[i]
				if _, ok := byValue[nd.value]; !ok {
					order = append(order, nd.value)
				}
				byValue[nd.value] = append(byValue[nd.value], nd.form)
			}
			for _, vi := range order {
				r.Hits = append(r.Hits, Hit{File: path, Forms: names(byValue[vi]), Fingerprint: fp([]byte(uniq[vi]))})
			}
			return nil
		})
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// names lists the forms' names, leaving out a form whose text lies within an earlier one's.
func names(forms []redact.Form) []string {
	var out []string
	for i, f := range forms {
		implied := false
		for _, g := range forms[:i] {
			if strings.Contains(g.Text, f.Text) {
				implied = true
				break
			}
		}
		if !implied {
			out = append(out, f.Name)
		}
	}
	return out
}

// scanFile reports which needles occur in the file, reading it a chunk at a time with
// enough overlap that a needle across a chunk boundary is still found.
func scanFile(path string, needles []needle, longest int) (found []bool, n int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	found = make([]bool, len(needles))
	overlap := max(longest-1, 0)
	buf := make([]byte, 0, chunk+overlap)
	for {
		m, rerr := io.ReadFull(f, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		n += int64(m)
		for i, nd := range needles {
			if !found[i] && bytes.Contains(buf, nd.text) {
				found[i] = true
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			return found, n, nil
		}
		if rerr != nil {
			return nil, n, rerr
		}
		keep := min(overlap, len(buf))
		copy(buf, buf[len(buf)-keep:])
		buf = buf[:keep]
	}
}
