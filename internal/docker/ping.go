// Package docker answers one question without the docker CLI: does an engine answer?
package docker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Host is the engine address: DOCKER_HOST, else the default unix socket.
func Host() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

// client is an HTTP client for the engine API and its base URL.
func client() (*http.Client, string, error) {
	host := Host()
	u, err := url.Parse(host)
	if err != nil {
		return nil, "", fmt.Errorf("DOCKER_HOST %q: %w", host, err)
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
		return nil, "", fmt.Errorf("DOCKER_HOST %q: unsupported scheme", host)
	}
	return &http.Client{Transport: tr}, base, nil
}

// Ping reports nil when a Docker engine answers /_ping within a few seconds.
func Ping(ctx context.Context) error {
	host := Host()
	hc, base, err := client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_ping", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("no Docker engine answers at %s: %v", host, strings.TrimSpace(err.Error()))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the Docker engine at %s answered /_ping with %s", host, resp.Status)
	}
	return nil
}

// RemoveContainer force-removes a container (and its anonymous volumes) by ID.
func RemoveContainer(ctx context.Context, id string) error {
	hc, base, err := client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, base+"/containers/"+url.PathEscape(id)+"?force=true&v=true", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("remove container %s: %s", id, resp.Status)
	}
	return nil
}
