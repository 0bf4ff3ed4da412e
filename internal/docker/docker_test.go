package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeEngine fakes the few Engine API endpoints this package calls.
type fakeEngine struct {
	images   map[string]ImageInfo // ref -> inspect answer
	saveFail string               // /images/get answers 500 with this message
	build    func(w http.ResponseWriter, r *http.Request)
	removed  []string
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/_ping":
		io.WriteString(w, "OK")
	case r.Method == http.MethodGet && p == "/images/get":
		if f.saveFail != "" {
			apiErr(w, http.StatusInternalServerError, f.saveFail)
			return
		}
		names := r.URL.Query()["names"]
		for _, n := range names {
			if _, ok := f.images[n]; !ok {
				apiErr(w, http.StatusNotFound, "reference does not exist")
				return
			}
		}
		w.Header().Set("Content-Type", "application/x-tar")
		w.Write(fakeArchive(f.images, names))
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/images/") && strings.HasSuffix(p, "/json"):
		ref := strings.TrimSuffix(strings.TrimPrefix(p, "/images/"), "/json")
		if ref == "broken:1" {
			apiErr(w, http.StatusInternalServerError, "layer store is on fire")
			return
		}
		info, ok := f.images[ref]
		if !ok {
			apiErr(w, http.StatusNotFound, "No such image: "+ref)
			return
		}
		json.NewEncoder(w).Encode(info)
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/images/"):
		ref := strings.TrimPrefix(p, "/images/")
		f.removed = append(f.removed, ref)
		if _, ok := f.images[ref]; !ok {
			apiErr(w, http.StatusNotFound, "No such image: "+ref)
			return
		}
		delete(f.images, ref)
		io.WriteString(w, `[{"Untagged":"`+ref+`"}]`)
	case r.Method == http.MethodPost && p == "/build" && f.build != nil:
		f.build(w, r)
	default:
		apiErr(w, http.StatusNotFound, "page not found")
	}
}

func apiErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// fakeArchive is a docker-archive (manifest.json, config, one layer) holding names.
func fakeArchive(images map[string]ImageInfo, names []string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var m []entry
	for _, n := range names {
		hex := strings.TrimPrefix(images[n].ID, "sha256:")
		add(hex+".json", []byte(`{"architecture":"amd64","os":"linux"}`))
		add(hex+"/layer.tar", bytes.Repeat([]byte{'x'}, 1024))
		m = append(m, entry{Config: hex + ".json", RepoTags: []string{n}, Layers: []string{hex + "/layer.tar"}})
	}
	mj, _ := json.Marshal(m)
	add("manifest.json", mj)
	tw.Close()
	return buf.Bytes()
}

func newFake(t *testing.T, f *fakeEngine) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return NewWithBaseURL(srv.URL, srv.Client())
}

const (
	idA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestPingAndRemoveContainer(t *testing.T) {
	c := newFake(t, &fakeEngine{})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The fake answers 404 for containers: a missing container is not an error.
	if err := c.RemoveContainer(context.Background(), "abc"); err != nil {
		t.Fatal(err)
	}
}

func TestImageExists(t *testing.T) {
	f := &fakeEngine{images: map[string]ImageInfo{"secretslab.local/x:dev": {ID: idA, RepoTags: []string{"secretslab.local/x:dev"}}}}
	c := newFake(t, f)
	ctx := context.Background()

	ok, err := c.ImageExists(ctx, "secretslab.local/x:dev")
	if err != nil || !ok {
		t.Fatalf("existing image: got %v, %v", ok, err)
	}
	ok, err = c.ImageExists(ctx, "secretslab.local/y:dev")
	if err != nil || ok {
		t.Fatalf("missing image: got %v, %v", ok, err)
	}
	_, err = c.ImageExists(ctx, "broken:1")
	if err == nil || !strings.Contains(err.Error(), "layer store is on fire") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("engine error: got %v, want the engine's message and status", err)
	}
	if _, err := c.ImageExists(ctx, "bad?ref"); err == nil {
		t.Fatal("a reference with '?' was accepted")
	}
	info, err := c.InspectImage(ctx, "secretslab.local/x:dev")
	if err != nil || info.ID != idA {
		t.Fatalf("inspect: %+v, %v", info, err)
	}
}

func TestSaveImages(t *testing.T) {
	f := &fakeEngine{images: map[string]ImageInfo{"a:1": {ID: idA}, "b/c:2": {ID: idB}}}
	c := newFake(t, f)
	ctx := context.Background()

	var buf bytes.Buffer
	if err := c.SaveImages(ctx, []string{"a:1", "b/c:2"}, &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), fakeArchive(f.images, []string{"a:1", "b/c:2"})) {
		t.Fatal("the saved stream differs from what the engine sent (both names must be asked for)")
	}

	err := c.SaveImages(ctx, []string{"a:1", "missing:9"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "reference does not exist") {
		t.Fatalf("missing image: got %v", err)
	}
	f.saveFail = "failed to export: disk full"
	err = c.SaveImages(ctx, []string{"a:1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("engine error: got %v", err)
	}
	if err := c.SaveImages(ctx, nil, io.Discard); err == nil {
		t.Fatal("no names: want an error")
	}
}

func TestRemoveImage(t *testing.T) {
	f := &fakeEngine{images: map[string]ImageInfo{"secretslab.local/x:dev": {ID: idA}}}
	c := newFake(t, f)
	if err := c.RemoveImage(context.Background(), "secretslab.local/x:dev"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveImage(context.Background(), "secretslab.local/x:dev"); err != nil {
		t.Fatalf("removing a missing image: %v", err)
	}
	if len(f.removed) != 2 || f.removed[0] != "secretslab.local/x:dev" {
		t.Fatalf("DELETE paths: %v", f.removed)
	}
}

func streamLines(w http.ResponseWriter, msgs ...string) {
	w.Header().Set("Content-Type", "application/json")
	for _, m := range msgs {
		io.WriteString(w, m+"\r\n")
	}
}

func TestBuildFromScratch(t *testing.T) {
	dockerfile := []byte("FROM scratch\nCOPY bookstore /bookstore\nUSER 65532:65532\nENTRYPOINT [\"/bookstore\"]\n")
	elf := append([]byte("\x7fELF"), bytes.Repeat([]byte{1}, 100)...)
	files := map[string][]byte{"bookstore": elf, "etc/config/app.yaml": []byte("a: 1\n")}

	var gotQuery map[string][]string
	gotFiles := map[string]int64{} // name -> mode
	gotContent := map[string]string{}
	var gotCT string
	f := &fakeEngine{}
	f.build = func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.Query()
		gotCT = r.Header.Get("Content-Type")
		tr := tar.NewReader(r.Body)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			gotFiles[h.Name] = h.Mode
			b, _ := io.ReadAll(tr)
			gotContent[h.Name] = string(b)
		}
		streamLines(w,
			`{"stream":"Step 1/4 : FROM scratch\n"}`,
			`{"stream":" ---\u003e \n"}`,
			`{"stream":"Step 2/4 : COPY bookstore /bookstore\n"}`,
			`{"aux":{"ID":"`+idA+`"}}`,
			`{"stream":"Successfully built aaaaaaaaaaaa\n"}`,
			`{"stream":"Successfully tagged secretslab.local/bookstore:dev\n"}`)
	}
	c := newFake(t, f)
	ctx := context.Background()
	if err := c.BuildFromScratch(ctx, "secretslab.local/bookstore:dev", files, dockerfile); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"t": "secretslab.local/bookstore:dev", "version": "1", "pull": "false", "dockerfile": "Dockerfile", "forcerm": "true"} {
		if got := strings.Join(gotQuery[k], ","); got != want {
			t.Errorf("query %s=%q, want %q", k, got, want)
		}
	}
	if gotCT != "application/x-tar" {
		t.Errorf("Content-Type %q", gotCT)
	}
	wantModes := map[string]int64{"Dockerfile": 0o644, "bookstore": 0o755, "etc/": 0o755, "etc/config/": 0o755, "etc/config/app.yaml": 0o644}
	for name, mode := range wantModes {
		if got, ok := gotFiles[name]; !ok || got != mode {
			t.Errorf("context entry %s: mode %o (present %v), want %o", name, got, ok, mode)
		}
	}
	if len(gotFiles) != len(wantModes) {
		t.Errorf("context entries: %v", gotFiles)
	}
	if gotContent["Dockerfile"] != string(dockerfile) || gotContent["bookstore"] != string(elf) {
		t.Error("context content differs from what was passed")
	}

	// The builder's failure: errorDetail's message and the step it failed at.
	f.build = func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		streamLines(w,
			`{"stream":"Step 1/4 : FROM scratch\n"}`,
			`{"stream":"Step 2/4 : COPY bookstore /bookstore\n"}`,
			`{"errorDetail":{"message":"COPY failed: file not found in build context or excluded by .dockerignore: stat bookstore: file does not exist"},"error":"COPY failed: file not found"}`)
	}
	err := c.BuildFromScratch(ctx, "secretslab.local/bookstore:dev", map[string][]byte{"other": []byte("x")}, dockerfile)
	if err == nil || !strings.Contains(err.Error(), "stat bookstore: file does not exist") || !strings.Contains(err.Error(), "Step 2/4 : COPY bookstore /bookstore") {
		t.Fatalf("builder failure: got %v", err)
	}

	// An HTTP-level refusal (e.g. a bad Dockerfile) comes back as {"message": ...}.
	f.build = func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		apiErr(w, http.StatusBadRequest, "dockerfile parse error line 1: unknown instruction: FORM")
	}
	err = c.BuildFromScratch(ctx, "x:1", nil, []byte("FORM scratch\n"))
	if err == nil || !strings.Contains(err.Error(), "unknown instruction: FORM") {
		t.Fatalf("HTTP error: got %v", err)
	}

	// A stream that ends without an image ID is not a success.
	f.build = func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		streamLines(w, `{"stream":"Step 1/1 : FROM scratch\n"}`)
	}
	if err := c.BuildFromScratch(ctx, "x:1", nil, []byte("FROM scratch\n")); err == nil || !strings.Contains(err.Error(), "without an image ID") {
		t.Fatalf("truncated stream: got %v", err)
	}

	// Refused before anything is sent.
	for _, bad := range []map[string][]byte{{"../x": nil}, {"/abs": nil}, {"Dockerfile": nil}, {"a/./b": nil}} {
		if err := c.BuildFromScratch(ctx, "x:1", bad, dockerfile); err == nil {
			t.Errorf("files %v accepted", bad)
		}
	}
	if err := c.BuildFromScratch(ctx, "x:1", nil, nil); err == nil {
		t.Error("empty Dockerfile accepted")
	}
}
