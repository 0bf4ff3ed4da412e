package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// Object names one object of an inventory.
type Object struct {
	Resource  string // resource.group, e.g. "deployments.apps"
	Namespace string
	Name      string
}

func (o Object) String() string {
	if o.Namespace == "" {
		return o.Resource + "/" + o.Name
	}
	return o.Resource + " " + o.Namespace + "/" + o.Name
}

// Inventory is every object a cluster holds, by UID: what `kubectl get` of every listable
// resource would show, read as metadata only. Events are left out: the cluster writes and
// expires them on its own.
type Inventory map[types.UID]Object

// churn are resources the cluster creates and deletes by itself whatever a run does.
var churn = map[string]bool{"events": true, "events.events.k8s.io": true}

// TakeInventory lists every object of every listable resource the API serves, in the
// preferred version of each group.
func TakeInventory(ctx context.Context, cfg *rest.Config) (Inventory, error) {
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	lists, err := disc.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("inventory: discovery: %w", err)
	}
	inv := Inventory{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, err
		}
		for _, r := range l.APIResources {
			name := r.Name
			if gv.Group != "" {
				name += "." + gv.Group
			}
			if strings.Contains(r.Name, "/") || churn[name] || !hasVerb(r.Verbs, "list") {
				continue
			}
			if err := inv.add(ctx, meta, gv.WithResource(r.Name), name); err != nil {
				return nil, err
			}
		}
	}
	return inv, nil
}

func (inv Inventory) add(ctx context.Context, meta metadata.Interface, gvr schema.GroupVersionResource, name string) error {
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := meta.Resource(gvr).List(ctx, opts)
		if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
			return nil // a resource removed (e.g. a CRD deleted) while listing
		}
		if err != nil {
			return fmt.Errorf("inventory: list %s: %w", name, err)
		}
		for _, o := range list.Items {
			inv[o.UID] = Object{Resource: name, Namespace: o.Namespace, Name: o.Name}
		}
		if list.Continue == "" {
			return nil
		}
		opts.Continue = list.Continue
	}
}

func hasVerb(verbs []string, v string) bool {
	for _, x := range verbs {
		if x == v {
			return true
		}
	}
	return false
}

// InventoryDiff is what changed between two inventories, by UID.
type InventoryDiff struct {
	Added   []Object // in after only: created since, and still there
	Removed []Object // in before only: deleted since
}

// Empty reports whether the two inventories hold the same objects.
func (d InventoryDiff) Empty() bool { return len(d.Added)+len(d.Removed) == 0 }

// Diff compares before with after.
func Diff(before, after Inventory) InventoryDiff {
	var d InventoryDiff
	for uid, o := range after {
		if _, ok := before[uid]; !ok {
			d.Added = append(d.Added, o)
		}
	}
	for uid, o := range before {
		if _, ok := after[uid]; !ok {
			d.Removed = append(d.Removed, o)
		}
	}
	sortObjects(d.Added)
	sortObjects(d.Removed)
	return d
}

func sortObjects(os []Object) {
	sort.Slice(os, func(i, j int) bool { return os[i].String() < os[j].String() })
}

// Summary lists at most max objects of each side, one per line.
func (d InventoryDiff) Summary(max int) string {
	var b strings.Builder
	for _, side := range []struct {
		what string
		objs []Object
	}{{"left behind (created during the run)", d.Added}, {"gone (existed before the run)", d.Removed}} {
		if len(side.objs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%d %s:\n", len(side.objs), side.what)
		for i, o := range side.objs {
			if i == max {
				fmt.Fprintf(&b, "  ... and %d more\n", len(side.objs)-max)
				break
			}
			fmt.Fprintf(&b, "  %s\n", o)
		}
	}
	return b.String()
}
