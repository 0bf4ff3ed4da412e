// Package docker talks to a Docker Engine over its HTTP API (DOCKER_HOST or the default unix
// socket), without the docker CLI: ping, images (inspect, save, remove, build) and loading local
// images into the nodes of a kind cluster.
package docker

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Ping reports nil when a Docker engine answers /_ping within a few seconds.
func Ping(ctx context.Context) error {
	c, err := New()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Ping(ctx)
}

// Ping reports nil when the engine answers /_ping within a few seconds.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, "/_ping", nil, nil, "")
	if err != nil {
		return fmt.Errorf("no Docker engine answers at %s: %v", c.Host, strings.TrimSpace(err.Error()))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the Docker engine at %s answered /_ping with %s", c.Host, resp.Status)
	}
	return nil
}

// RemoveContainer force-removes a container (and its anonymous volumes) by ID.
func RemoveContainer(ctx context.Context, id string) error {
	c, err := New()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.RemoveContainer(ctx, id)
}

// RemoveContainer force-removes a container (and its anonymous volumes) by ID. A container
// that does not exist is not an error.
func (c *Client) RemoveContainer(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.do(ctx, http.MethodDelete, "/containers/"+id, url.Values{"force": {"true"}, "v": {"true"}}, nil, "")
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("remove container %s: %w", id, apiError(resp))
	}
	return nil
}
