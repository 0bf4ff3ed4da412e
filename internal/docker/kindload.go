package docker

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/distribution/reference"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// LoadIntoKind loads images into every node of a kind cluster, with the engine at Host() as the
// source of refs (see Client.LoadIntoKind).
func LoadIntoKind(ctx context.Context, clusterName string, refs []string, archives []string, progress io.Writer) error {
	return withDefault(func(c *Client) error { return c.LoadIntoKind(ctx, clusterName, refs, archives, progress) })
}

// LoadIntoKind does what `kind load docker-image` and `kind load image-archive` do, through
// sigs.k8s.io/kind as a library: refs are images of this engine (streamed with SaveImages, one
// image at a time, straight into the node's `ctr images import`); archives are docker-archive
// tar files (e.g. component-images.tar). Each goes into every internal node of cluster
// clusterName.
//
// Before loading, each node is asked (`crictl inspecti`, as kind does) whether it already has
// the image under its name with the same ID (for an archive: every tagged image in its
// manifest.json); if so it is skipped. After loading, the node must list the image under its
// normalized name (docker.io/library/postgres:15 for postgres:15), or LoadIntoKind fails.
//
// progress (nil: discarded) gets one line per image and node: skipped, or loading and then
// loaded with the time it took.
//
// The refs must exist in the engine, and the archives as files, before any node is touched.
// kind's node commands run `docker exec` on the node containers, so the docker CLI must be on
// PATH for this function (kind's own requirement); this package itself never runs it.
func (c *Client) LoadIntoKind(ctx context.Context, clusterName string, refs []string, archives []string, progress io.Writer) error {
	if clusterName == "" {
		return errors.New("load into kind: empty cluster name")
	}
	if len(refs) == 0 && len(archives) == 0 {
		return nil
	}
	provider := cluster.NewProvider(cluster.ProviderWithDocker())
	nodeList, err := provider.ListInternalNodes(clusterName)
	if err != nil {
		return fmt.Errorf("load into kind cluster %q: list its nodes: %w", clusterName, err)
	}
	if len(nodeList) == 0 {
		return fmt.Errorf("load into kind cluster %q: it has no nodes (no such cluster?)", clusterName)
	}
	return c.loadIntoNodes(ctx, nodeList, refs, archives, progress)
}

// archiveImage is one image listed in a docker-archive's manifest.json.
type archiveImage struct {
	ID   string // "sha256:<config digest>", "" when the Config path does not tell it
	Tags []string
}

type archiveInfo struct {
	path    string
	size    int64
	images  []archiveImage
	readErr error // manifest.json could not be read: load without checking
}

func (c *Client) loadIntoNodes(ctx context.Context, nodeList []nodes.Node, refs []string, archives []string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	refs = dedup(refs)
	infos := make([]*ImageInfo, len(refs))
	for i, ref := range refs {
		info, err := c.InspectImage(ctx, ref)
		if errors.Is(err, ErrImageNotFound) {
			return fmt.Errorf("load into kind: image %s is not in the local Docker engine (%s): build or load it there first", ref, c.Host)
		}
		if err != nil {
			return fmt.Errorf("load into kind: %w", err)
		}
		infos[i] = info
	}
	var arcs []archiveInfo
	for _, a := range dedup(archives) {
		st, err := os.Stat(a)
		if err != nil {
			return fmt.Errorf("load into kind: image archive: %w", err)
		}
		imgs, rerr := readArchiveManifest(a)
		arcs = append(arcs, archiveInfo{path: a, size: st.Size(), images: imgs, readErr: rerr})
	}

	for _, n := range nodeList {
		node := ctxNode{Node: n, ctx: ctx}
		for i, ref := range refs {
			if err := ctx.Err(); err != nil {
				return err
			}
			info := infos[i]
			name := normalizeRef(ref)
			present, why := nodeHas(node, name, info.ID)
			if present {
				fmt.Fprintf(progress, "%s: %s already present (%s), skipped\n", node, ref, shortID(info.ID))
				continue
			}
			fmt.Fprintf(progress, "%s: loading %s (%s, %s): %s\n", node, ref, shortID(info.ID), sizeText(info.Size), why)
			start := time.Now()
			if err := c.loadRef(ctx, node, ref); err != nil {
				return fmt.Errorf("load %s into kind node %s: %w", ref, node, err)
			}
			if err := verifyLoaded(node, name); err != nil {
				return fmt.Errorf("load %s into kind node %s: %w", ref, node, err)
			}
			fmt.Fprintf(progress, "%s: loaded %s in %s\n", node, ref, since(start))
		}
		for _, a := range arcs {
			if err := ctx.Err(); err != nil {
				return err
			}
			tags := a.tags()
			label := fmt.Sprintf("archive %s (%s", a.path, sizeText(a.size))
			if len(tags) > 0 {
				label += ": " + strings.Join(tags, ", ")
			}
			label += ")"
			var why string
			if a.readErr != nil {
				why = fmt.Sprintf("could not read its manifest.json (%v), so it is loaded without checking the node", a.readErr)
			} else {
				all := len(a.images) > 0
				why = "its manifest.json lists no image"
				for _, img := range a.images {
					if img.ID == "" || len(img.Tags) == 0 {
						all, why = false, "an image in it has no tag or no ID to check"
						break
					}
					for _, t := range img.Tags {
						ok, w := nodeHas(node, normalizeRef(t), img.ID)
						if !ok {
							all, why = false, t+": "+w
							break
						}
					}
					if !all {
						break
					}
				}
				if all {
					fmt.Fprintf(progress, "%s: %s already present, skipped\n", node, label)
					continue
				}
			}
			fmt.Fprintf(progress, "%s: loading %s: %s\n", node, label, why)
			start := time.Now()
			if err := loadArchive(node, a.path); err != nil {
				return fmt.Errorf("load image archive %s into kind node %s: %w", a.path, node, err)
			}
			for _, t := range tags {
				if err := verifyLoaded(node, normalizeRef(t)); err != nil {
					return fmt.Errorf("load image archive %s into kind node %s: %w", a.path, node, err)
				}
			}
			fmt.Fprintf(progress, "%s: loaded %s in %s\n", node, label, since(start))
		}
	}
	return nil
}

func (a archiveInfo) tags() []string {
	var out []string
	for _, img := range a.images {
		out = append(out, img.Tags...)
	}
	return out
}

// ctxNode runs every node command under ctx, so that cancelling ctx kills the `docker exec`
// (nodeutils calls Command, not CommandContext).
type ctxNode struct {
	nodes.Node
	ctx context.Context
}

func (n ctxNode) Command(name string, args ...string) kindexec.Cmd {
	return n.Node.CommandContext(n.ctx, name, args...)
}

// nodeHas reports whether the node's container runtime has image name with ID id; when it does
// not, why says so in a few words.
func nodeHas(node nodes.Node, name, id string) (bool, string) {
	got, err := nodeutils.ImageID(node, name)
	switch {
	case err != nil && strings.Contains(strings.ToLower(runOutput(err)), "no such image"):
		return false, "not present on the node"
	case err != nil:
		return false, "could not check the node (" + nodeErr(err) + ")"
	case got == id:
		return true, ""
	default:
		return false, fmt.Sprintf("the node has it with another ID (%s)", shortID(got))
	}
}

// verifyLoaded fails when the node definitely does not list name after a load.
func verifyLoaded(node nodes.Node, name string) error {
	_, err := nodeutils.ImageID(node, name)
	if err != nil && strings.Contains(strings.ToLower(runOutput(err)), "no such image") {
		return fmt.Errorf("loaded, but the node does not list %s afterwards", name)
	}
	return nil // other errors: the check itself failed; the load went through
}

var errLoadEnded = errors.New("the node's import ended")

// loadRef streams `docker save ref` into the node's `ctr images import`.
func (c *Client) loadRef(ctx context.Context, node nodes.Node, ref string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	saved := make(chan error, 1)
	go func() {
		err := c.SaveImages(ctx, []string{ref}, pw)
		pw.CloseWithError(err) // nil: the reader sees EOF
		saved <- err
	}()
	loadErr := nodeutils.LoadImageArchive(node, pr)
	// Unblocks the writer if the import stopped reading early; its next write fails with
	// errLoadEnded, so the save ends without being reported as the cause.
	pr.CloseWithError(errLoadEnded)
	saveErr := <-saved
	if saveErr != nil && !errors.Is(saveErr, errLoadEnded) {
		if loadErr != nil {
			return fmt.Errorf("%w (and the node's import: %s)", saveErr, nodeErr(loadErr))
		}
		return saveErr
	}
	if loadErr != nil {
		return errors.New(nodeErr(loadErr))
	}
	return nil
}

func loadArchive(node nodes.Node, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := nodeutils.LoadImageArchive(node, f); err != nil {
		return errors.New(nodeErr(err))
	}
	return nil
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// readArchiveManifest lists the images in a docker-archive tar (what `docker save` writes; newer
// engines write an OCI layout that carries the same manifest.json).
func readArchiveManifest(file string) ([]archiveImage, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f) // *os.File seeks past the layers, so this is quick
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("no manifest.json in the archive")
		}
		if err != nil {
			return nil, err
		}
		if path.Clean(h.Name) != "manifest.json" {
			continue
		}
		var m []struct {
			Config   string
			RepoTags []string
		}
		if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&m); err != nil {
			return nil, fmt.Errorf("manifest.json: %w", err)
		}
		out := make([]archiveImage, 0, len(m))
		for _, e := range m {
			img := archiveImage{Tags: e.RepoTags}
			// "<hex>.json" (docker-archive) or "blobs/sha256/<hex>" (OCI layout)
			if h := strings.TrimSuffix(path.Base(e.Config), ".json"); hex64.MatchString(h) {
				img.ID = "sha256:" + h
			}
			out = append(out, img)
		}
		return out, nil
	}
}

// normalizeRef names an image the way containerd (and so the kind node) does:
// postgres:15 -> docker.io/library/postgres:15, name -> name:latest.
func normalizeRef(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.TagNameOnly(named).String()
}

func dedup(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func shortID(id string) string {
	h := strings.TrimPrefix(id, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	if h == "" {
		return "no ID"
	}
	return h
}

func sizeText(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

func since(t time.Time) string {
	return time.Since(t).Round(100 * time.Millisecond).String()
}

// runOutput is the output a failed kind node command printed, if any.
func runOutput(err error) string {
	if re := kindexec.RunErrorForError(err); re != nil {
		return string(re.Output)
	}
	return ""
}

// nodeErr is err with the command's output, which kind's errors leave out.
func nodeErr(err error) string {
	msg := err.Error()
	if out := strings.TrimSpace(runOutput(err)); out != "" {
		if len(out) > 2000 {
			out = out[len(out)-2000:]
		}
		msg += ": " + out
	}
	return msg
}
