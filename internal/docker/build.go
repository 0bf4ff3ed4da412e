package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

// BuildFromScratch builds the image tag on the engine at Host() (see Client.BuildFromScratch).
func BuildFromScratch(ctx context.Context, tag string, files map[string][]byte, dockerfile []byte) error {
	return withDefault(func(c *Client) error { return c.BuildFromScratch(ctx, tag, files, dockerfile) })
}

// BuildFromScratch builds the image tag from dockerfile and a build context holding files
// (name -> content; names are slash-separated paths relative to the context root). It is meant
// for `FROM scratch` images on machines with no registry: it uses the legacy builder
// (version=1, no BuildKit) and never pulls (pull=false), and removes intermediate containers
// even when a step fails (forcerm). Files whose content starts with an ELF header or "#!" get
// mode 0755, the others 0644. On failure the error carries the builder's message (errorDetail)
// and the last lines of its output.
func (c *Client) BuildFromScratch(ctx context.Context, tag string, files map[string][]byte, dockerfile []byte) error {
	if err := validRef(tag); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if len(bytes.TrimSpace(dockerfile)) == 0 {
		return fmt.Errorf("build %s: empty Dockerfile", tag)
	}
	buildCtx, err := buildContext(files, dockerfile)
	if err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	q := url.Values{
		"t":          {tag},
		"dockerfile": {"Dockerfile"},
		"version":    {"1"}, // the legacy builder: BuildKit is not asked for
		"pull":       {"false"},
		"rm":         {"true"},
		"forcerm":    {"true"},
	}
	resp, err := c.do(ctx, http.MethodPost, "/build", q, bytes.NewReader(buildCtx), "application/x-tar")
	if err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("build %s: %w", tag, apiError(resp))
	}
	if _, err := readBuildStream(resp.Body); err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	return nil
}

// buildMessage is one JSON message of the build progress stream.
type buildMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

var successfullyBuilt = regexp.MustCompile(`Successfully built ([0-9a-f]{12,64})`)

// readBuildStream consumes the builder's JSON progress stream. It returns the built image's ID,
// or an error with the builder's message and the last lines of its output.
func readBuildStream(r io.Reader) (string, error) {
	const keep = 12
	var tail []string
	addLines := func(s string) {
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimRight(l, "\r "); l != "" {
				tail = append(tail, l)
			}
		}
		if len(tail) > keep {
			tail = tail[len(tail)-keep:]
		}
	}
	id := ""
	dec := json.NewDecoder(r)
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("reading the build output: %w%s", err, tailText(tail))
		}
		if m.ErrorDetail != nil || m.Error != "" {
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			return "", fmt.Errorf("the builder failed: %s%s", strings.TrimSpace(msg), tailText(tail))
		}
		if m.Stream != "" {
			addLines(m.Stream)
			if s := successfullyBuilt.FindStringSubmatch(m.Stream); s != nil && id == "" {
				id = s[1]
			}
		}
		if m.Status != "" {
			addLines(m.Status)
		}
		if len(m.Aux) > 0 {
			var aux struct {
				ID string `json:"ID"`
			}
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
	if id == "" {
		return "", fmt.Errorf("the build output ended without an image ID%s", tailText(tail))
	}
	return id, nil
}

func tailText(tail []string) string {
	if len(tail) == 0 {
		return ""
	}
	return "\nlast build output:\n  " + strings.Join(tail, "\n  ")
}

// buildContext makes the tar build context: Dockerfile plus files, in a stable order with a
// fixed modification time.
func buildContext(files map[string][]byte, dockerfile []byte) ([]byte, error) {
	mtime := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	names := make([]string, 0, len(files))
	for name := range files {
		clean := path.Clean(name)
		if name == "" || clean != name || path.IsAbs(name) || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." {
			return nil, fmt.Errorf("build context: bad file name %q (want a clean relative path)", name)
		}
		if clean == "Dockerfile" {
			return nil, fmt.Errorf("build context: pass the Dockerfile as its own argument, not as a file")
		}
		names = append(names, name)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	write := func(name string, mode int64, content []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	}
	// Parent directories first, so every path's directory exists when it is unpacked.
	for _, name := range names {
		var parents []string
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
			dirs[d] = true
		}
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, ModTime: mtime, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
	}
	if err := write("Dockerfile", 0o644, dockerfile); err != nil {
		return nil, err
	}
	for _, name := range names {
		if err := write(name, fileMode(files[name]), files[name]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func fileMode(content []byte) int64 {
	if bytes.HasPrefix(content, []byte("\x7fELF")) || bytes.HasPrefix(content, []byte("#!")) {
		return 0o755
	}
	return 0o644
}
