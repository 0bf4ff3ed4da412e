package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// fakeNode answers the node commands kind's nodeutils runs: containerd config dump, crictl
// inspecti and ctr images import (which it parses like containerd: names are normalized).
type fakeNode struct {
	name      string
	mu        sync.Mutex
	images    map[string]string // normalized name -> ID
	imports   int
	cmds      []string
	importErr string // ctr import fails with this output
	noNames   bool   // import succeeds but names nothing (to test the check afterwards)
	dumpFail  bool   // containerd config dump fails (so the import never reads its input)
}

func (n *fakeNode) String() string              { return n.name }
func (n *fakeNode) Role() (string, error)       { return "control-plane", nil }
func (n *fakeNode) IP() (string, string, error) { return "172.18.0.2", "", nil }
func (n *fakeNode) SerialLogs(io.Writer) error  { return nil }
func (n *fakeNode) Command(c string, a ...string) kindexec.Cmd {
	return &fakeCmd{n: n, argv: append([]string{c}, a...)}
}
func (n *fakeNode) CommandContext(_ context.Context, c string, a ...string) kindexec.Cmd {
	return n.Command(c, a...)
}

var _ nodes.Node = (*fakeNode)(nil)

type fakeCmd struct {
	n      *fakeNode
	argv   []string
	stdin  io.Reader
	stdout io.Writer
}

func (c *fakeCmd) SetEnv(...string) kindexec.Cmd      { return c }
func (c *fakeCmd) SetStdin(r io.Reader) kindexec.Cmd  { c.stdin = r; return c }
func (c *fakeCmd) SetStdout(w io.Writer) kindexec.Cmd { c.stdout = w; return c }
func (c *fakeCmd) SetStderr(io.Writer) kindexec.Cmd   { return c }
func (c *fakeCmd) fail(out string) error {
	return &kindexec.RunError{Command: c.argv, Output: []byte(out), Inner: errors.New("exit status 1")}
}

func (c *fakeCmd) Run() error {
	n := c.n
	line := strings.Join(c.argv, " ")
	n.mu.Lock()
	n.cmds = append(n.cmds, line)
	n.mu.Unlock()
	out := c.stdout
	if out == nil {
		out = io.Discard
	}
	switch {
	case line == "containerd config dump" && n.dumpFail:
		return c.fail("containerd: not running")
	case line == "containerd config dump":
		io.WriteString(out, "version = 2\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n      snapshotter = \"overlayfs\"\n")
		return nil
	case len(c.argv) == 3 && c.argv[0] == "crictl" && c.argv[1] == "inspecti":
		n.mu.Lock()
		id, ok := n.images[c.argv[2]]
		n.mu.Unlock()
		if !ok {
			return c.fail(fmt.Sprintf("no such image %q present\n", c.argv[2]))
		}
		fmt.Fprintf(out, `{"status":{"id":%q,"repoTags":[%q],"repoDigests":[]}}`+"\n", id, c.argv[2])
		return nil
	case strings.HasPrefix(line, "ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -"):
		data, err := io.ReadAll(c.stdin)
		if err != nil {
			return c.fail("ctr: reading stdin: " + err.Error())
		}
		if n.importErr != "" {
			return c.fail(n.importErr)
		}
		imgs, err := manifestOf(data)
		if err != nil {
			return c.fail("ctr: " + err.Error())
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		n.imports++
		if n.noNames {
			return nil
		}
		for _, img := range imgs {
			for _, t := range img.Tags {
				n.images[normalizeRef(t)] = img.ID
			}
		}
		return nil
	}
	return c.fail("fake node: unexpected command " + line)
}

func manifestOf(archive []byte) ([]archiveImage, error) {
	dir, err := os.MkdirTemp("", "fake-archive")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "a.tar")
	if err := os.WriteFile(p, archive, 0o644); err != nil {
		return nil, err
	}
	return readArchiveManifest(p)
}

func newNode() *fakeNode { return &fakeNode{name: "lab-control-plane", images: map[string]string{}} }

func TestLoadIntoNodesRefs(t *testing.T) {
	f := &fakeEngine{images: map[string]ImageInfo{
		"postgres:15":                    {ID: idA, Size: 373e6},
		"secretslab.local/bookstore:dev": {ID: idB, Size: 5e6},
	}}
	c := newFake(t, f)
	ctx := context.Background()
	node := newNode()
	refs := []string{"postgres:15", "secretslab.local/bookstore:dev", "postgres:15"}

	var out bytes.Buffer
	if err := c.loadIntoNodes(ctx, []nodes.Node{node}, refs, nil, &out); err != nil {
		t.Fatal(err)
	}
	if node.imports != 2 {
		t.Fatalf("imports = %d, want 2 (duplicates load once)\n%s", node.imports, out.String())
	}
	if node.images["docker.io/library/postgres:15"] != idA || node.images["secretslab.local/bookstore:dev"] != idB {
		t.Fatalf("node images: %v", node.images)
	}
	for _, want := range []string{
		"lab-control-plane: loading postgres:15 (aaaaaaaaaaaa, 373.0 MB): not present on the node",
		"lab-control-plane: loaded postgres:15 in ",
		"lab-control-plane: loaded secretslab.local/bookstore:dev in ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}

	// Second time: present with the same ID, so skipped.
	out.Reset()
	if err := c.loadIntoNodes(ctx, []nodes.Node{node}, refs, nil, &out); err != nil {
		t.Fatal(err)
	}
	if node.imports != 2 || !strings.Contains(out.String(), "postgres:15 already present (aaaaaaaaaaaa), skipped") {
		t.Fatalf("second load: imports = %d\n%s", node.imports, out.String())
	}

	// The local image changed: the node's copy has another ID, so it is loaded again.
	f.images["postgres:15"] = ImageInfo{ID: "sha256:" + strings.Repeat("c", 64)}
	out.Reset()
	if err := c.loadIntoNodes(ctx, []nodes.Node{node}, refs, nil, &out); err != nil {
		t.Fatal(err)
	}
	if node.imports != 3 || !strings.Contains(out.String(), "the node has it with another ID (aaaaaaaaaaaa)") {
		t.Fatalf("changed image: imports = %d\n%s", node.imports, out.String())
	}
}

func TestLoadIntoNodesErrors(t *testing.T) {
	f := &fakeEngine{images: map[string]ImageInfo{"a:1": {ID: idA}}}
	c := newFake(t, f)
	ctx := context.Background()

	// A missing local image fails before any node command runs.
	node := newNode()
	err := c.loadIntoNodes(ctx, []nodes.Node{node}, []string{"a:1", "missing:2"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "missing:2 is not in the local Docker engine") || len(node.cmds) != 0 {
		t.Fatalf("missing image: %v, node commands %v", err, node.cmds)
	}
	// So does a missing archive.
	err = c.loadIntoNodes(ctx, []nodes.Node{node}, nil, []string{filepath.Join(t.TempDir(), "nope.tar")}, nil)
	if err == nil || len(node.cmds) != 0 {
		t.Fatalf("missing archive: %v, node commands %v", err, node.cmds)
	}

	// The node's import fails: its output is in the error.
	node.importErr = "ctr: failed to ingest: no space left on device"
	err = c.loadIntoNodes(ctx, []nodes.Node{node}, []string{"a:1"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "lab-control-plane") {
		t.Fatalf("import failure: %v", err)
	}

	// The load stops before reading anything: the save must not hang.
	node = newNode()
	node.dumpFail = true
	err = c.loadIntoNodes(ctx, []nodes.Node{node}, []string{"a:1"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "failed to detect containerd snapshotter") || strings.Contains(err.Error(), "import ended") {
		t.Fatalf("early load failure: %v", err)
	}

	// The engine fails to save: its message is in the error.
	node = newNode()
	f.saveFail = "failed to export image: layer gone"
	err = c.loadIntoNodes(ctx, []nodes.Node{node}, []string{"a:1"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "layer gone") {
		t.Fatalf("save failure: %v", err)
	}
	f.saveFail = ""

	// The import "succeeds" but the node does not list the image afterwards.
	node = newNode()
	node.noNames = true
	err = c.loadIntoNodes(ctx, []nodes.Node{node}, []string{"a:1"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "does not list docker.io/library/a:1 afterwards") {
		t.Fatalf("unnamed import: %v", err)
	}
}

func writeArchive(t *testing.T, config string, tags ...string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	add("blobs/sha256/"+strings.Repeat("d", 64), bytes.Repeat([]byte{'l'}, 4096)) // a layer before the manifest
	var m []map[string]any
	for _, tag := range tags {
		m = append(m, map[string]any{"Config": config, "RepoTags": []string{tag}})
	}
	mj, _ := json.Marshal(m)
	add("manifest.json", mj)
	tw.Close()
	p := filepath.Join(t.TempDir(), "images.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadIntoNodesArchive(t *testing.T) {
	c := newFake(t, &fakeEngine{})
	ctx := context.Background()
	node := newNode()
	arc := writeArchive(t, "blobs/sha256/"+strings.Repeat("a", 64), "postgres:15", "hashicorp/vault:1.17.2")

	var out bytes.Buffer
	if err := c.loadIntoNodes(ctx, []nodes.Node{node}, nil, []string{arc}, &out); err != nil {
		t.Fatal(err)
	}
	if node.imports != 1 || node.images["docker.io/hashicorp/vault:1.17.2"] != idA {
		t.Fatalf("imports %d, images %v\n%s", node.imports, node.images, out.String())
	}
	if !strings.Contains(out.String(), "postgres:15, hashicorp/vault:1.17.2") || !strings.Contains(out.String(), "lab-control-plane: loaded archive "+arc) {
		t.Errorf("progress:\n%s", out.String())
	}
	out.Reset()
	if err := c.loadIntoNodes(ctx, []nodes.Node{node}, nil, []string{arc}, &out); err != nil {
		t.Fatal(err)
	}
	if node.imports != 1 || !strings.Contains(out.String(), "already present, skipped") {
		t.Fatalf("second load: imports %d\n%s", node.imports, out.String())
	}
	// One image missing from the node: the archive is loaded again.
	delete(node.images, "docker.io/library/postgres:15")
	out.Reset()
	if err := c.loadIntoNodes(ctx, []nodes.Node{node}, nil, []string{arc}, &out); err != nil {
		t.Fatal(err)
	}
	if node.imports != 2 || !strings.Contains(out.String(), "postgres:15: not present on the node") {
		t.Fatalf("partial: imports %d\n%s", node.imports, out.String())
	}
}

func TestReadArchiveManifest(t *testing.T) {
	imgs, err := readArchiveManifest(writeArchive(t, strings.Repeat("e", 64)+".json", "x:1"))
	if err != nil || len(imgs) != 1 || imgs[0].ID != "sha256:"+strings.Repeat("e", 64) || imgs[0].Tags[0] != "x:1" {
		t.Fatalf("docker-archive config path: %+v, %v", imgs, err)
	}
	imgs, err = readArchiveManifest(writeArchive(t, "weird", "x:1"))
	if err != nil || imgs[0].ID != "" {
		t.Fatalf("unknown config path: %+v, %v", imgs, err)
	}
	p := filepath.Join(t.TempDir(), "empty.tar")
	var buf bytes.Buffer
	tar.NewWriter(&buf).Close()
	os.WriteFile(p, buf.Bytes(), 0o644)
	if _, err := readArchiveManifest(p); err == nil {
		t.Fatal("archive without manifest.json: want an error")
	}
}

func TestNormalizeRef(t *testing.T) {
	for in, want := range map[string]string{
		"postgres:15":                    "docker.io/library/postgres:15",
		"hashicorp/vault:1.17.2":         "docker.io/hashicorp/vault:1.17.2",
		"secretslab.local/bookstore:dev": "secretslab.local/bookstore:dev",
		"oci.external-secrets.io/external-secrets/external-secrets:v0.10.4": "oci.external-secrets.io/external-secrets/external-secrets:v0.10.4",
		"busybox":          "docker.io/library/busybox:latest",
		"localhost:5000/x": "localhost:5000/x:latest",
	} {
		if got := normalizeRef(in); got != want {
			t.Errorf("normalizeRef(%q) = %q, want %q", in, got, want)
		}
	}
}
