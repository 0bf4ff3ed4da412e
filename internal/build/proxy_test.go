package build

import (
	"reflect"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name, out     string
		kind          refusalKind
		module, vers  string
		reasonSnippet string
	}{
		{"403 from go mod download -json",
			`go.etcd.io/etcd/server/v3@v3.5.999: reading https://proxy.golang.org/go.etcd.io/etcd/server/v3/@v/v3.5.999.info: 403 Forbidden
	server response: This module version is not available.`,
			refusedForbidden, "go.etcd.io/etcd/server/v3", "v3.5.999", "403 Forbidden"},
		{"sumdb 404 while tidying",
			`go: downloading k8s.io/kube-aggregator v0.31.14
go: offline-lab/kubernetes imports
	k8s.io/kubernetes/cmd/kube-apiserver imports
	k8s.io/kube-aggregator/pkg/apiserver: k8s.io/kube-aggregator@v0.31.14: verifying go.mod: k8s.io/kube-aggregator@v0.31.14/go.mod: reading https://proxy.golang.org/sumdb/sum.golang.org/lookup/k8s.io/kube-aggregator@v0.31.14: 404 Not Found
	server response: not found`,
			refusedChecksum, "k8s.io/kube-aggregator", "v0.31.14", "checksum database"},
		{"sumdb 404 verifying module",
			`verifying github.com/hashicorp/vault-plugin-auth-cf@v0.17.0: github.com/hashicorp/vault-plugin-auth-cf@v0.17.0: reading https://proxy.golang.org/sumdb/sum.golang.org/lookup/github.com/hashicorp/vault-plugin-auth-cf@v0.17.0: 404 Not Found`,
			refusedChecksum, "github.com/hashicorp/vault-plugin-auth-cf", "v0.17.0", "checksum database"},
		{"checksum mismatch",
			`verifying github.com/x/y@v1.2.3: checksum mismatch
	downloaded: h1:aaa
	go.sum:     h1:bbb

SECURITY ERROR`,
			refusedChecksum, "github.com/x/y", "v1.2.3", "checksum mismatch"},
		{"no such host",
			`go.etcd.io/etcd/server/v3@v3.5.998: Get "https://proxy.nonexistent.invalid/go.etcd.io/etcd/server/v3/@v/v3.5.998.info": dial tcp: lookup proxy.nonexistent.invalid on 10.255.255.53:53: no such host`,
			refusedNetwork, "go.etcd.io/etcd/server/v3", "v3.5.998", ""},
		{"connection refused",
			`go: module go.etcd.io/etcd/server/v3: Get "http://127.0.0.1:1/go.etcd.io/etcd/server/v3/@v/list": dial tcp 127.0.0.1:1: connect: connection refused`,
			refusedNetwork, "", "", ""},
		{"tls",
			`go.etcd.io/etcd/server/v3@v3.5.998: Get "https://10.255.255.1/go.etcd.io/etcd/server/v3/@v/v3.5.998.info": tls: failed to verify certificate: x509: cannot validate certificate for 10.255.255.1 because it doesn't contain any IP SANs`,
			refusedNetwork, "go.etcd.io/etcd/server/v3", "v3.5.998", ""},
		{"403 of a nested module, named after the importing file",
			`/root/go/pkg/mod/github.com/external-secrets/external-secrets@v1.3.2/cmd/controller/root.go:38:2: github.com/external-secrets/external-secrets/apis@v0.0.0: reading https://proxy.golang.org/github.com/external-secrets/external-secrets/apis/@v/v0.0.0.zip: 403 Forbidden`,
			refusedForbidden, "github.com/external-secrets/external-secrets/apis", "v0.0.0", "403 Forbidden"},
		{"unknown revision",
			`go: github.com/x/y@v9.9.9: reading github.com/x/y/go.mod at revision v9.9.9: unknown revision v9.9.9`,
			refusedNotFound, "github.com/x/y", "v9.9.9", "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, ok := classify(c.out)
			if !ok || r.kind != c.kind || r.module != c.module || r.version != c.vers {
				t.Fatalf("classify = %+v, %v; want kind %d %s@%s", r, ok, c.kind, c.module, c.vers)
			}
			if !strings.Contains(r.reason(), c.reasonSnippet) {
				t.Fatalf("reason %q lacks %q", r.reason(), c.reasonSnippet)
			}
		})
	}
	if r, ok := classify("go: downloading go.etcd.io/etcd/server/v3 v3.5.24\ngo: build failed: undefined: foo"); ok {
		t.Fatalf("ordinary output classified as %+v", r)
	}
}

func TestOrderCandidates(t *testing.T) {
	cases := []struct {
		want string
		have []string
		out  []string
	}{
		// the proxy lists only a few versions; the pinned one is added by the caller
		{"v1.17.99", []string{"v1.1.2", "v1.21.4", "v1.17.2"}, []string{"v1.17.2", "v1.21.4", "v1.1.2"}},
		// same minor by patch distance (tie: newer), prereleases and want itself dropped
		{"v3.5.22", []string{"v3.5.0-alpha.0", "v3.5.0", "v3.5.21", "v3.5.22", "v3.5.23", "v3.6.0", "v3.5.24", "v3.4.27"},
			[]string{"v3.5.23", "v3.5.21", "v3.5.24", "v3.5.0", "v3.6.0", "v3.4.27"}},
		// other minors: nearest minor first (tie: newer); below want the highest patch, above it the lowest
		{"v1.18.0", []string{"v1.16.9", "v1.17.0", "v1.17.5", "v1.20.0", "v1.19.3", "v1.19.1"},
			[]string{"v1.19.1", "v1.19.3", "v1.17.5", "v1.17.0", "v1.20.0", "v1.16.9"}},
		// other majors last
		{"v2.0.0", []string{"v3.0.0", "v1.9.9", "v2.1.0"}, []string{"v2.1.0", "v3.0.0", "v1.9.9"}},
		{"v1.0.0-rc.1", []string{"v1.0.0-rc.2", "v1.0.0"}, []string{"v1.0.0", "v1.0.0-rc.2"}},
		{"garbage", []string{"v1.0.0"}, nil},
	}
	for _, c := range cases {
		got := orderCandidates(c.want, c.have)
		if !reflect.DeepEqual(got, c.out) {
			t.Errorf("orderCandidates(%s, %v) = %v, want %v", c.want, c.have, got, c.out)
		}
	}
}

func TestPickKeepsKnownGoodVersions(t *testing.T) {
	cands := []string{"v1.17.7", "v1.17.6", "v1.17.5", "v1.17.4", "v1.17.3", "v1.17.2", "v1.16.0"}
	if got := pick(cands, []string{"v1.17.2"}, 5); !reflect.DeepEqual(got, []string{"v1.17.7", "v1.17.6", "v1.17.5", "v1.17.4", "v1.17.2"}) {
		t.Errorf("got %v", got)
	}
	if got := pick(cands, []string{"v1.17.6", "v9.9.9"}, 3); !reflect.DeepEqual(got, cands[:3]) {
		t.Errorf("got %v", got)
	}
	if got := pick(cands[:2], nil, 5); !reflect.DeepEqual(got, cands[:2]) {
		t.Errorf("got %v", got)
	}
}
