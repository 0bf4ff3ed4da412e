package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// ImageInfo is the part of GET /images/{name}/json that this package uses.
type ImageInfo struct {
	ID       string   `json:"Id"` // "sha256:<config digest>" with the classic image store
	RepoTags []string `json:"RepoTags"`
	Size     int64    `json:"Size"`
}

// ErrImageNotFound is returned (wrapped) by InspectImage when the engine has no such image.
var ErrImageNotFound = errors.New("image not found")

// ImageExists reports whether the engine at Host() has the image ref.
func ImageExists(ctx context.Context, ref string) (bool, error) {
	var ok bool
	err := withDefault(func(c *Client) (err error) { ok, err = c.ImageExists(ctx, ref); return })
	return ok, err
}

// ImageExists reports whether the engine has the image ref (GET /images/{name}/json).
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := c.InspectImage(ctx, ref)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, ErrImageNotFound) {
		return false, nil
	}
	return false, err
}

// InspectImage returns the image's ID, tags and size; an error wrapping ErrImageNotFound when
// the engine does not have it.
func (c *Client) InspectImage(ctx context.Context, ref string) (*ImageInfo, error) {
	if err := validRef(ref); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, "")
	if err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("inspect image %s at %s: %w", ref, c.Host, ErrImageNotFound)
	default:
		return nil, fmt.Errorf("inspect image %s: %w", ref, apiError(resp))
	}
	var info ImageInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, fmt.Errorf("inspect image %s: decode answer: %w", ref, err)
	}
	return &info, nil
}

// SaveImages writes the images refs, as one docker-archive tar (what `docker save` writes),
// from the engine at Host() to w.
func SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	return withDefault(func(c *Client) error { return c.SaveImages(ctx, refs, w) })
}

// SaveImages writes the images refs as one docker-archive tar stream to w
// (GET /images/get?names=...). It is bounded by ctx only: large images take a while.
func (c *Client) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	if len(refs) == 0 {
		return fmt.Errorf("save images: no image named")
	}
	q := url.Values{}
	for _, r := range refs {
		if err := validRef(r); err != nil {
			return fmt.Errorf("save images: %w", err)
		}
		q.Add("names", r)
	}
	resp, err := c.do(ctx, http.MethodGet, "/images/get", q, nil, "")
	if err != nil {
		return fmt.Errorf("save images %v: %w", refs, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("save images %v: %w", refs, apiError(resp))
	}
	// An engine that fails half-way just cuts the (chunked) stream, which io.Copy reports.
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("save images %v: %w", refs, err)
	}
	return nil
}

// RemoveImage removes the image ref from the engine at Host() (see Client.RemoveImage).
func RemoveImage(ctx context.Context, ref string) error {
	return withDefault(func(c *Client) error { return c.RemoveImage(ctx, ref) })
}

// RemoveImage removes the image ref (DELETE /images/{name}, not forced: an image that a
// container uses stays). When ref is one of several tags of an image, only that tag goes.
// An image that does not exist is not an error.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	if err := validRef(ref); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := c.do(ctx, http.MethodDelete, "/images/"+ref, nil, nil, "")
	if err != nil {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("remove image %s: %w", ref, apiError(resp))
	}
	return nil
}
