// Package esoproc installs External Secrets Operator's CRDs and runs its controller as a
// host process against a Kubernetes API server (out-of-cluster, as `external-secrets`
// runs under `go run` in ESO's own development loop).
package esoproc

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/redact"
)

// Module is ESO's Go module; its CRDs are in CRDSubdir.
const (
	Module    = "github.com/external-secrets/external-secrets"
	CRDSubdir = "config/crds/bases"
)

// InstallCRDs creates (or updates) every CRD in dir's *.yaml files and waits until each
// is Established. It returns the CRD names.
func InstallCRDs(ctx context.Context, cfg *rest.Config, dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no CRD files in %s", dir)
	}
	sort.Strings(files)
	return InstallCRDFiles(ctx, cfg, files...)
}

// InstallCRDsFrom installs the CRDs of path: a directory of YAML files (InstallCRDs) or one
// file such as ESO's deploy/crds/bundle.yaml.
func InstallCRDsFrom(ctx context.Context, cfg *rest.Config, path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ESO CRDs: %w", err)
	}
	if fi.IsDir() {
		return InstallCRDs(ctx, cfg, path)
	}
	return InstallCRDFiles(ctx, cfg, path)
}

// InstallCRDFiles is InstallCRDs for the given files (e.g. ESO's deploy/crds/bundle.yaml).
func InstallCRDFiles(ctx context.Context, cfg *rest.Config, files ...string) ([]string, error) {
	cs, err := apiext.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		crds, err := readCRDs(f)
		if err != nil {
			return nil, err
		}
		for _, crd := range crds {
			if err := apply(ctx, cs, crd); err != nil {
				return nil, fmt.Errorf("apply CRD %s from %s: %w", crd.Name, f, err)
			}
			names = append(names, crd.Name)
		}
	}
	for _, name := range names {
		name := name
		err := proc.WaitFor(ctx, "CRD "+name+" to be Established", time.Minute, 200*time.Millisecond, nil,
			func(ctx context.Context) (bool, error) {
				crd, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				for _, c := range crd.Status.Conditions {
					if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
						return true, nil
					}
				}
				return false, nil
			})
		if err != nil {
			return nil, err
		}
	}
	return names, nil
}

func readCRDs(path string) ([]*apiextv1.CustomResourceDefinition, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	objs, err := kube.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []*apiextv1.CustomResourceDefinition
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue // kustomization.yaml and friends
		}
		var crd apiextv1.CustomResourceDefinition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &crd); err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		out = append(out, &crd)
	}
	return out, nil
}

// apply applies crd server-side: ESO's CRDs from 0.19 on are too large for the
// last-applied annotation of a client-side apply, and a server-side apply takes over the
// fields of an earlier install (Helm's or ours) without a read-modify-write race.
//
// A CRD that used a conversion webhook (ESO before 0.16: its cert-controller injects the CA
// into spec.conversion.webhook) and whose new definition does not is first switched to
// strategy None with the webhook removed: server-side apply cannot drop a field another
// manager owns, and the API server rejects webhook settings without strategy Webhook.
func apply(ctx context.Context, cs apiext.Interface, crd *apiextv1.CustomResourceDefinition) error {
	api := cs.ApiextensionsV1().CustomResourceDefinitions()
	crd.APIVersion, crd.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
	crd.ResourceVersion = ""
	if crd.Spec.Conversion == nil {
		crd.Spec.Conversion = &apiextv1.CustomResourceConversion{Strategy: apiextv1.NoneConverter}
	}
	if crd.Spec.Conversion.Strategy != apiextv1.WebhookConverter {
		existing, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
		if err == nil && existing.Spec.Conversion != nil && existing.Spec.Conversion.Strategy == apiextv1.WebhookConverter {
			patch := []byte(`{"spec":{"conversion":{"strategy":"None","webhook":null}}}`)
			if _, err := api.Patch(ctx, crd.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "secretslab"}); err != nil {
				return fmt.Errorf("drop the conversion webhook of %s (the new definition has none): %w", crd.Name, err)
			}
		}
	}
	body, err := json.Marshal(crd)
	if err != nil {
		return err
	}
	force := true
	_, err = api.Patch(ctx, crd.Name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "secretslab", Force: &force})
	return err
}

// Options configures the controller process.
type Options struct {
	Binary     string
	Kubeconfig string
	LogDir     string
	Redact     *redact.Set
}

// Controller is a running ESO controller.
type Controller struct {
	p      *proc.Process
	binary string
}

// Start runs the controller and waits until its ExternalSecret workers have started.
func Start(ctx context.Context, opts Options) (*Controller, error) {
	// the log is appended to across restarts (an upgrade): wait for this start's line only
	var offset int64
	if fi, err := os.Stat(filepath.Join(opts.LogDir, "external-secrets.log")); err == nil {
		offset = fi.Size()
	}
	p, err := proc.Start(proc.Spec{
		Name: "external-secrets", Path: opts.Binary, LogDir: opts.LogDir, Redact: opts.Redact,
		Args: []string{
			"--metrics-addr=0", // no metrics listener: nothing to collide with on the host
			"--enable-leader-election=false",
			"--loglevel=info",
			"--zap-time-encoding=iso8601",
			"--concurrent=4",
		},
		Env: []string{"KUBECONFIG=" + opts.Kubeconfig},
	})
	if err != nil {
		return nil, err
	}
	c := &Controller{p: p, binary: opts.Binary}
	err = proc.WaitFor(ctx, "the ESO controller to start its ExternalSecret workers (log: "+p.LogPath+")", 2*time.Minute, 250*time.Millisecond, p,
		func(context.Context) (bool, error) {
			log, err := os.ReadFile(p.LogPath)
			if err != nil {
				return false, err
			}
			if int64(len(log)) < offset {
				offset = 0
			}
			for _, line := range strings.Split(string(log[offset:]), "\n") {
				if strings.Contains(line, "Starting workers") && strings.Contains(strings.ToLower(line), "externalsecret") {
					return true, nil
				}
			}
			return false, nil
		})
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return c, nil
}

// Version reads the ESO module version from the running binary's build information.
func (c *Controller) Version() (string, error) { return BinaryVersion(c.binary) }

// BinaryVersion reads the ESO module version compiled into binary.
func BinaryVersion(binary string) (string, error) {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return "", fmt.Errorf("read build info of %s: %w", binary, err)
	}
	if bi.Main.Path == Module && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version, nil
	}
	for _, d := range bi.Deps {
		if d.Path == Module {
			return d.Version, nil
		}
	}
	return "", fmt.Errorf("%s carries no version of %s", binary, Module)
}

// Record identifies the process, for a state file.
func (c *Controller) Record() proc.Record { return c.p.Record }

// Process is the controller process.
func (c *Controller) Process() *proc.Process { return c.p }

// Stop stops the controller.
func (c *Controller) Stop(grace time.Duration) error { return c.p.Stop(grace) }
