package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/lab"
	"github.com/secretslab/secretslab/versions"
)

const esGroup = "external-secrets.io"

// TestFoundation checks what the scenarios take for granted about the lab itself. Vault's
// Kubernetes auth, ESO's sync and the garbage collector are the vault-config, swap and revert
// scenarios' checks (TestConformance), on the fixtures a learner applies.
func TestFoundation(t *testing.T) {
	crds := features.New("ESO CRDs").
		Assess("external-secrets.io is served", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			k := kubeClient(ctx, t)
			served, err := k.ServedVersions(esGroup)
			if err != nil {
				t.Fatal(err)
			}
			if len(served) == 0 {
				t.Fatal("external-secrets.io is not served: the ESO CRDs are missing")
			}
			t.Logf("external-secrets.io serves %v", served)
			return ctx
		}).Feature()

	postgres := features.New("Postgres").
		Assess("the admin DSN logs in", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			dsn := labFrom(ctx).PostgresAdminDSN()
			if dsn == "" {
				t.Skip("this backend's Postgres is the bookstore's StatefulSet: the baseline scenario checks it")
			}
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatalf("postgres login: %v", labFrom(ctx).Secrets().String(err.Error()))
			}
			defer conn.Close(ctx)
			var user string
			if err := conn.QueryRow(ctx, "select current_user").Scan(&user); err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(dsn)
			if user != u.User.Username() {
				t.Fatalf("logged in as %q, want %q", user, u.User.Username())
			}
			return ctx
		}).Feature()

	running := features.New("running versions").
		Assess("are read from the components and match the pins", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
			got, err := labFrom(ctx).Versions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("running: %+v", got)
			want, _ := versions.FromEnv(labFrom(ctx).Backend())
			// an empty app version is the chart's own; a declared one (ESO_BIN) starts with it
			if got.Kubernetes != want.Kubernetes || (want.Vault != "" && got.Vault != versions.Trimmed(want.Vault)) ||
				(want.ESO != "" && strings.SplitN(got.ESO, " ", 2)[0] != want.ESO) {
				t.Fatalf("running versions %+v differ from version set %s: %+v", got, want.Name, want)
			}
			if got.Postgres != "" && !strings.HasPrefix(got.Postgres, want.Postgres+".") {
				t.Fatalf("Postgres %s runs, the pin is %s", got.Postgres, want.Postgres)
			}
			switch labFrom(ctx).Backend() {
			case lab.BackendEmbedded:
				if got.Etcd != want.Etcd {
					t.Fatalf("etcd %s runs, the pin is %s", got.Etcd, want.Etcd)
				}
			case lab.BackendKind:
				if got.VaultChart != want.VaultChart || got.ESOChart != want.ESOChart {
					t.Fatalf("charts vault %s / external-secrets %s installed, the pins are %s / %s", got.VaultChart, got.ESOChart, want.VaultChart, want.ESOChart)
				}
			}
			return ctx
		}).Feature()

	testenv.Test(t, crds, postgres, running)
}

func kubeClient(ctx context.Context, t *testing.T) *kube.Client {
	k, err := kube.New(labFrom(ctx).RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return k
}
