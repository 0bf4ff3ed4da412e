package vaultops

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretslab/secretslab/internal/redact"
)

func TestSaveKeysIsPrivateFromTheStartAndLoads(t *testing.T) {
	old := syscall.Umask(0) // even with a permissive umask the file must be 0600
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil { // replaced, not reused
		t.Fatal(err)
	}
	in := &KeyFile{RootToken: "root-abcdef", UnsealKeys: []string{"k1-aaaaaa", "k2-bbbbbb", "k3-cccccc"}, Shares: 3, Threshold: 2}
	if err := SaveKeys(path, in); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	out, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if out.RootToken != in.RootToken || strings.Join(out.UnsealKeys, ",") != strings.Join(in.UnsealKeys, ",") || out.Threshold != 2 || out.Shares != 3 {
		t.Fatal("loaded keys differ from saved keys")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(path); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("a world-readable keys file was accepted: %v", err)
	}
}

// fakeVault answers the few endpoints the package uses.
type fakeVault struct {
	sealed, standby atomic.Bool
	leader          atomic.Value // string: leader_address reported by sys/leader
	self            string
	voters          atomic.Int32
	progress        atomic.Int32
}

func newFake(t *testing.T) (*fakeVault, *api.Client) {
	f := &fakeVault{}
	f.leader.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply := func(v any) { w.Header().Set("Content-Type", "application/json"); json.NewEncoder(w).Encode(v) }
		switch r.URL.Path {
		case "/v1/sys/init":
			reply(map[string]any{"root_token": "hvs.fake-root-token", "keys": []string{"aaaaaaaa11", "bbbbbbbb22", "cccccccc33"}, "keys_base64": []string{"qqqqqqqq11", "rrrrrrrr22", "ssssssss33"}})
		case "/v1/sys/seal-status":
			reply(map[string]any{"initialized": true, "sealed": f.sealed.Load(), "t": 2, "n": 3, "progress": f.progress.Load()})
		case "/v1/sys/unseal":
			if f.progress.Add(1) >= 2 {
				f.progress.Store(0)
				f.sealed.Store(false)
			}
			reply(map[string]any{"initialized": true, "sealed": f.sealed.Load(), "t": 2, "n": 3, "progress": f.progress.Load()})
		case "/v1/sys/health":
			reply(map[string]any{"initialized": true, "sealed": f.sealed.Load(), "standby": f.standby.Load() || f.sealed.Load()})
		case "/v1/sys/leader":
			l := f.leader.Load().(string)
			reply(map[string]any{"ha_enabled": true, "is_self": l == f.self, "leader_address": l})
		case "/v1/sys/storage/raft/configuration":
			var servers []any
			for i := 0; i < 3; i++ {
				servers = append(servers, map[string]any{"node_id": "vault-" + string(rune('0'+i)), "address": "x", "leader": i == 0, "voter": int32(i) < f.voters.Load()})
			}
			reply(map[string]any{"data": map[string]any{"config": map[string]any{"servers": servers}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	f.self = srv.URL
	c, err := NewClient(srv.URL, "t")
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func TestInitRegistersSecretsAtOnce(t *testing.T) {
	_, c := newFake(t)
	var secrets redact.Set
	k, err := Init(context.Background(), c, 3, 2, &secrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range append([]string{"hvs.fake-root-token", "aaaaaaaa11", "qqqqqqqq11", "ssssssss33"}, k.UnsealKeys...) {
		if got := secrets.String("x " + v + " y"); strings.Contains(got, v) {
			t.Fatalf("value %s not registered for redaction", redact.Fingerprint([]byte(v)))
		}
	}
	if k.Threshold != 2 || len(k.UnsealKeys) != 3 {
		t.Fatalf("key file: threshold %d, %d keys", k.Threshold, len(k.UnsealKeys))
	}
}

func TestWaitOneActive(t *testing.T) {
	ctx := context.Background()
	a, ca := newFake(t)
	b, cb := newFake(t)
	_, dead := newFake(t)
	dead.SetAddress("http://127.0.0.1:1") // refused: a killed node
	a.leader.Store(a.self)
	b.standby.Store(true)
	b.leader.Store("http://old-leader") // b has not noticed the new leader yet
	go func() { time.Sleep(600 * time.Millisecond); b.leader.Store(a.self) }()
	start := time.Now()
	i, err := WaitOneActive(ctx, []*api.Client{dead, cb, ca}, 5*time.Second)
	if err != nil || i != 2 {
		t.Fatalf("active index %d, err %v", i, err)
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Fatal("WaitOneActive did not wait for the standby to name the new leader")
	}

	b.standby.Store(false) // two actives: must time out and say so
	b.leader.Store(b.self)
	_, err = WaitOneActive(ctx, []*api.Client{ca, cb}, 700*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "exactly one active") || !strings.Contains(err.Error(), "active;") {
		t.Fatalf("want a timeout naming the wait and the states, got %v", err)
	}
}

func TestWaitVotersReturnsLastConfiguration(t *testing.T) {
	f, c := newFake(t)
	f.voters.Store(1)
	rc, err := WaitVoters(context.Background(), c, 3, 600*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "3 raft voters") || !strings.Contains(err.Error(), "vault-1(non-voter)") {
		t.Fatalf("got %v", err)
	}
	if rc == nil || len(rc.Voters()) != 1 || rc.Leader() != "vault-0" {
		t.Fatalf("last configuration %v", rc)
	}
	go func() { time.Sleep(300 * time.Millisecond); f.voters.Store(3) }()
	rc, err = WaitVoters(context.Background(), c, 3, 5*time.Second)
	if err != nil || len(rc.Voters()) != 3 {
		t.Fatalf("%v %v", rc, err)
	}
}

func TestUnsealAndWaitUnsealed(t *testing.T) {
	ctx := context.Background()
	f, c := newFake(t)
	f.sealed.Store(true)
	_, err := WaitUnsealed(ctx, c, 600*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "to be unsealed") || !strings.Contains(err.Error(), "sealed=true") {
		t.Fatalf("want a timeout naming the wait and the last state, got %v", err)
	}
	if err := Unseal(ctx, c, []string{"only-one"}); err == nil {
		t.Fatal("Unseal accepted fewer keys than the threshold")
	}
	if err := Unseal(ctx, c, []string{"k1", "k2", "k3"}); err != nil {
		t.Fatal(err)
	}
	st, err := WaitUnsealed(ctx, c, time.Second)
	if err != nil || st.Sealed {
		t.Fatalf("%v %v", st, err)
	}
}
