package kind

import (
	"context"
	"fmt"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/secretslab/secretslab/internal/charts"
	"github.com/secretslab/secretslab/internal/esoproc"
	"github.com/secretslab/secretslab/internal/proc"
)

// installESO installs the external-secrets chart. By default the chart installs its CRDs
// (installCRDs=true); with opts.ESOCRDs the CRDs are applied from that file first and the
// chart is installed with installCRDs=false, as GitOps setups manage CRDs separately.
func (l *Lab) installESO(ctx context.Context, ch *chart.Chart) error {
	return l.installESOWith(ctx, ch, l.opts.ESOCRDs, l.opts.Versions.ESO)
}

// installESOWith installs (or upgrades) the chart with CRDs from crds (a file or dir; empty:
// the chart's) and image tag (empty: the chart's app version).
func (l *Lab) installESOWith(ctx context.Context, ch *chart.Chart, crds, tag string) error {
	values := map[string]any{"installCRDs": true}
	if crds != "" {
		l.say("applying ESO CRDs from %s (server-side)", crds)
		if _, err := esoproc.InstallCRDsFrom(ctx, l.cfg, crds); err != nil {
			return fmt.Errorf("ESO CRDs: %w", err)
		}
		values["installCRDs"] = false
	}
	setImageTag(values, "", tag)
	start := time.Now()
	l.say("installing chart external-secrets %s (%s; waiting for its Deployments)", ch.Metadata.Version, imageNote(ch, tag))
	var err error
	l.esoRelease, err = charts.Install(ctx, l.kubeconfig, ch, "external-secrets", l.esoNS, values,
		charts.InstallOptions{Wait: true, Timeout: 5 * time.Minute, Log: l.secrets.Writer(l.progress)})
	if err != nil {
		return fmt.Errorf("install external-secrets chart: %w", err)
	}
	served, err := l.k.ServedVersions("external-secrets.io")
	if err != nil {
		return err
	}
	if len(served) == 0 {
		return fmt.Errorf("the external-secrets chart installed no CRDs (a chart taken from git lacks its generated CRD templates): pass --eso-crds with the CRD bundle of that version (deploy/crds/bundle.yaml)")
	}
	if err := l.waitWebhook(ctx, served[0]); err != nil {
		return err
	}
	l.say("external-secrets ready in %s", time.Since(start).Round(time.Second))
	return nil
}

// waitWebhook waits until ESO's validating webhook answers: a server-side dry-run create of a
// SecretStore, in the version the cluster prefers, goes through the webhook and succeeds
// only when it serves. A SecretStore that version does not serve fails at once.
func (l *Lab) waitWebhook(ctx context.Context, version string) error {
	store := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/" + version, "kind": "SecretStore",
		"metadata": map[string]any{"name": "secretslab-webhook-probe", "namespace": "default"},
		"spec": map[string]any{"provider": map[string]any{"vault": map[string]any{
			"server": l.VaultAddrForESO(), "path": "secret", "version": "v2",
			"auth": map[string]any{"tokenSecretRef": map[string]any{"name": "none", "key": "token"}},
		}}},
	}}
	res := schema.GroupVersionResource{Group: "external-secrets.io", Version: version, Resource: "secretstores"}
	var notServed error
	err := proc.WaitFor(ctx, "the ESO webhook to serve (dry-run SecretStore "+version+" create)", 3*time.Minute, time.Second, nil, func(ctx context.Context) (bool, error) {
		_, err := l.dyn.Resource(res).Namespace("default").Create(ctx, store, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsNotFound(err) {
			notServed = fmt.Errorf("external-secrets.io/%s does not serve secretstores: %w", version, err)
			return true, nil
		}
		return err == nil, err
	})
	if notServed != nil {
		return notServed
	}
	return err
}

// setImageTag sets the chart value [under.]image.tag to tag; an empty tag keeps the chart's
// default (its appVersion).
func setImageTag(values map[string]any, under, tag string) {
	if tag == "" {
		return
	}
	m := values
	if under != "" {
		sub, ok := values[under].(map[string]any)
		if !ok {
			sub = map[string]any{}
			values[under] = sub
		}
		m = sub
	}
	img, ok := m["image"].(map[string]any)
	if !ok {
		img = map[string]any{}
		m["image"] = img
	}
	img["tag"] = tag
}

// imageNote says which image tag a chart runs: its own app version, or the version set's.
func imageNote(ch *chart.Chart, tag string) string {
	switch {
	case tag == "":
		return "its own app version " + ch.Metadata.AppVersion
	case tag == ch.Metadata.AppVersion:
		return "app version " + tag
	}
	return fmt.Sprintf("image tag %s from the version set; the chart's app version is %s", tag, ch.Metadata.AppVersion)
}
