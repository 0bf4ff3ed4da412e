package kube

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Storage is what a CRD says about its versions: the one objects are written in, the ones
// served, and the ones etcd may still hold objects in (status.storedVersions).
type Storage struct {
	CRD     string   `json:"crd"`
	Storage string   `json:"storage"`
	Served  []string `json:"served"`
	Stored  []string `json:"stored"`
}

// Stale lists the stored versions other than the storage version: objects written before
// an upgrade may still be in them.
func (s Storage) Stale() []string {
	var out []string
	for _, v := range s.Stored {
		if v != s.Storage {
			out = append(out, v)
		}
	}
	return out
}

// Unserved lists the stale stored versions the CRD no longer serves: objects stored in them
// are read through conversion (if any) but can no longer be asked for in that version.
func (s Storage) Unserved() []string {
	var out []string
	for _, v := range s.Stale() {
		if !slices.Contains(s.Served, v) {
			out = append(out, v)
		}
	}
	return out
}

// CRDStorage reads the storage state of CRD name (e.g. externalsecrets.external-secrets.io).
func (c *Client) CRDStorage(ctx context.Context, name string) (Storage, error) {
	crd, err := c.Dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Storage{}, fmt.Errorf("read CRD %s: %w", name, err)
	}
	return storageOf(crd), nil
}

func storageOf(crd *unstructured.Unstructured) Storage {
	s := Storage{CRD: crd.GetName()}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		m, _ := v.(map[string]any)
		vn, _ := m["name"].(string)
		if served, _ := m["served"].(bool); served {
			s.Served = append(s.Served, vn)
		}
		if storage, _ := m["storage"].(bool); storage {
			s.Storage = vn
		}
	}
	s.Stored, _, _ = unstructured.NestedStringSlice(crd.Object, "status", "storedVersions")
	return s
}

// MigrateStorage rewrites every object of CRD name in its storage version, as
// kube-storage-version-migrator does (an update that changes nothing but the encoding
// etcd holds), then sets status.storedVersions to the storage version alone. It returns
// how many objects were rewritten.
func (c *Client) MigrateStorage(ctx context.Context, name string) (int, error) {
	crd, err := c.Dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("read CRD %s: %w", name, err)
	}
	st := storageOf(crd)
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	res := c.Dyn.Resource(schema.GroupVersionResource{Group: group, Version: st.Storage, Resource: plural})
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("list %s.%s/%s: %w", plural, group, st.Storage, err)
	}
	for i := range list.Items {
		o := &list.Items[i]
		if _, err := res.Namespace(o.GetNamespace()).Update(ctx, o, metav1.UpdateOptions{}); err != nil {
			return i, fmt.Errorf("rewrite %s %s/%s in %s: %w", plural, o.GetNamespace(), o.GetName(), st.Storage, err)
		}
	}
	if err := unstructured.SetNestedStringSlice(crd.Object, []string{st.Storage}, "status", "storedVersions"); err != nil {
		return len(list.Items), err
	}
	if _, err := c.Dyn.Resource(crdResource).UpdateStatus(ctx, crd, metav1.UpdateOptions{}); err != nil {
		return len(list.Items), fmt.Errorf("set status.storedVersions of CRD %s to [%s]: %w", name, st.Storage, err)
	}
	return len(list.Items), nil
}
