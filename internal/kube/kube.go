// Package kube applies manifests and waits on objects through the dynamic client, the
// way `kubectl apply` and `kubectl wait` would, without shelling out to kubectl.
package kube

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/secretslab/secretslab/internal/proc"
)

// Client applies and reads objects of any kind.
type Client struct {
	Dyn       dynamic.Interface
	Discovery discovery.DiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
}

// New makes a Client for cfg.
func New(cfg *rest.Config) (*Client, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{Dyn: dyn, Discovery: dc, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// Decode splits a multi-document YAML manifest into objects.
func Decode(manifest []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, fmt.Errorf("decode manifest: %w", err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		out = append(out, obj)
	}
}

// ServedVersions lists the versions the API server serves for group.
func (c *Client) ServedVersions(group string) ([]string, error) {
	groups, err := c.Discovery.ServerGroups()
	if err != nil {
		return nil, fmt.Errorf("discover API groups: %w", err)
	}
	for _, g := range groups.Groups {
		if g.Name == group {
			var vs []string
			for _, v := range g.Versions {
				vs = append(vs, v.Version)
			}
			return vs, nil
		}
	}
	return nil, nil
}

// resource maps obj's kind to its resource, reloading discovery once on a miss (new CRDs).
func (c *Client) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", gvk.GroupVersion(), gvk.Kind, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.Dyn.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
	}
	return c.Dyn.Resource(m.Resource), nil
}

// Apply creates or updates each object with server-side apply (field manager secretslab).
func (c *Client) Apply(ctx context.Context, objs ...*unstructured.Unstructured) error {
	for _, obj := range objs {
		ri, err := c.resource(obj)
		if err != nil {
			return err
		}
		body, err := obj.MarshalJSON()
		if err != nil {
			return err
		}
		force := true
		if _, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "secretslab", Force: &force}); err != nil {
			return fmt.Errorf("apply %s %s: %w", obj.GetKind(), Name(obj), err)
		}
	}
	return nil
}

// Delete deletes each object (background propagation); absent objects are fine.
func (c *Client) Delete(ctx context.Context, objs ...*unstructured.Unstructured) error {
	for _, obj := range objs {
		ri, err := c.resource(obj)
		if err != nil {
			return err
		}
		bg := metav1.DeletePropagationBackground
		if err := ri.Delete(ctx, obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s: %w", obj.GetKind(), Name(obj), err)
		}
	}
	return nil
}

// Get reads obj's current state from the server.
func (c *Client) Get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := c.resource(obj)
	if err != nil {
		return nil, err
	}
	return ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
}

// Condition is one status condition.
type Condition struct{ Type, Status, Reason, Message string }

// Conditions reads status.conditions.
func Conditions(obj *unstructured.Unstructured) []Condition {
	raw, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	var out []Condition
	for _, r := range raw {
		m, _ := r.(map[string]any)
		s := func(k string) string { v, _ := m[k].(string); return v }
		out = append(out, Condition{s("type"), s("status"), s("reason"), s("message")})
	}
	return out
}

// WaitCondition waits until obj has condition typ with status "True" and returns it. The
// error names the object and its last conditions.
func (c *Client) WaitCondition(ctx context.Context, obj *unstructured.Unstructured, typ string, timeout time.Duration) (Condition, error) {
	var found Condition
	var last []Condition
	err := proc.WaitFor(ctx, fmt.Sprintf("%s %s to be %s", obj.GetKind(), Name(obj), typ), timeout, 250*time.Millisecond, nil,
		func(ctx context.Context) (bool, error) {
			cur, err := c.Get(ctx, obj)
			if err != nil {
				return false, err
			}
			last = Conditions(cur)
			for _, cond := range last {
				if cond.Type == typ && cond.Status == "True" {
					found = cond
					return true, nil
				}
			}
			return false, nil
		})
	if err != nil {
		return Condition{}, fmt.Errorf("%w; last conditions: %s", err, describe(last))
	}
	return found, nil
}

// WaitGone waits until obj no longer exists.
func (c *Client) WaitGone(ctx context.Context, obj *unstructured.Unstructured, timeout time.Duration) error {
	return proc.WaitFor(ctx, fmt.Sprintf("%s %s to be deleted", obj.GetKind(), Name(obj)), timeout, 250*time.Millisecond, nil,
		func(ctx context.Context) (bool, error) {
			_, err := c.Get(ctx, obj)
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
}

// GVK is a shorthand.
func GVK(group, version, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
}

// Name is namespace/name, or name for cluster-scoped objects.
func Name(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}

func describe(cs []Condition) string {
	if len(cs) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return strings.Join(parts, "; ")
}
