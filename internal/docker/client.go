package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Host is the engine address: DOCKER_HOST, else the default unix socket.
func Host() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

// Client is an HTTP client for the Docker Engine API. Requests are unversioned, so the engine
// serves its own (newest) API version.
type Client struct {
	// HTTP carries the requests; for a unix socket its transport dials the socket.
	HTTP *http.Client
	// Base is the URL that API paths are appended to, e.g. "http://docker" (unix socket) or
	// "http://127.0.0.1:2375".
	Base string
	// Host names the engine in error messages (DOCKER_HOST or the socket).
	Host string
}

// New returns a client for the engine at Host(): a unix:// socket or a plain tcp:// / http://
// address (TLS is not supported). Close it when done.
func New() (*Client, error) {
	host := Host()
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	tr := &http.Transport{}
	base := "http://docker"
	switch u.Scheme {
	case "unix":
		path := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
	case "tcp", "http":
		base = "http://" + u.Host
	default:
		return nil, fmt.Errorf("DOCKER_HOST %q: unsupported scheme", host)
	}
	return &Client{HTTP: &http.Client{Transport: tr}, Base: base, Host: host}, nil
}

// NewWithBaseURL returns a client that sends API requests to base (e.g. an httptest server's
// URL) with hc (nil: http.DefaultClient).
func NewWithBaseURL(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{HTTP: hc, Base: strings.TrimRight(base, "/"), Host: base}
}

// Close releases idle connections.
func (c *Client) Close() {
	c.HTTP.CloseIdleConnections()
}

// withDefault runs f with a client for Host(), for the package-level helpers.
func withDefault(f func(*Client) error) error {
	c, err := New()
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

// do sends one request. path is unescaped (image references keep their '/' and ':', as the
// docker CLI sends them).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := (&url.URL{Path: path, RawQuery: query.Encode()}).String()
	req, err := http.NewRequestWithContext(ctx, method, c.Base+u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return c.HTTP.Do(req)
}

// apiError turns a non-success response into an error carrying the engine's message
// ({"message": "..."}), or the raw body when it is not JSON.
func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var m struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	if msg == "" {
		return fmt.Errorf("engine answered %s", resp.Status)
	}
	return fmt.Errorf("engine answered %s: %s", resp.Status, msg)
}

// validRef rejects references that cannot be put into a URL path as they are.
func validRef(ref string) error {
	if ref == "" || strings.ContainsAny(ref, "?# \t\n\\%") || strings.HasPrefix(ref, "/") || strings.Contains(ref, "..") {
		return fmt.Errorf("invalid image reference %q", ref)
	}
	return nil
}
