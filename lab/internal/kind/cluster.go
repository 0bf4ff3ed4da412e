package kind

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/secretslab/secretslab/internal/charts"
	"github.com/secretslab/secretslab/internal/docker"
	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/lab/kindcluster"
)

// The cluster backend runs on a cluster someone else owns (a staging cluster, a kind cluster
// made outside the suite). It installs the charts into namespaces named for the run
// (RUN-vault, RUN-eso), and the bookstore into the chapters' namespaces (bookstore, the
// tenants' bookstore-platform-*), which must not exist yet: it never takes over what it did
// not create. Close removes what the run created, in reverse order, then takes a second
// inventory of the cluster and fails when any object is left behind or any object that was
// there before is gone.

// RunLabel marks the namespaces a run created (value: the run's name).
const RunLabel = "secretslab.dev/run"

// appNamespacePrefix begins every namespace the scenarios create (bookstore,
// bookstore-platform-TENANT).
const appNamespacePrefix = "bookstore"

// clusterRun is one run on the cluster backend.
type clusterRun struct {
	name       string
	before     kube.Inventory      // every object of the cluster before the run created anything
	kubeconfig clientcmdapi.Config // as loaded
}

const (
	answerTimeout = 20 * time.Second // the API server's first answer
	removeTimeout = 5 * time.Minute  // each removal step
)

var runName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$`)

// attach connects to the cluster in opts.Kubeconfig (else KUBECONFIG, else ~/.kube/config),
// current context, names the run and takes the inventory.
func (l *Lab) attach(ctx context.Context) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if l.opts.Kubeconfig != "" {
		rules.ExplicitPath = l.opts.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	raw, err := cc.RawConfig()
	if err != nil {
		return fmt.Errorf("backend cluster: read the kubeconfig (%s): %w", strings.Join(rules.Precedence, ":"), err)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fmt.Errorf("backend cluster: no usable cluster in the kubeconfig (%s; set KUBECONFIG or --kubeconfig): %w", strings.Join(rules.Precedence, ":"), err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Timeout = answerTimeout
	if l.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	sv, err := l.kube.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("backend cluster: the cluster of context %q (%s) does not answer: %w", raw.CurrentContext, cfg.Host, err)
	}
	cfg.Timeout = 0
	if l.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if l.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	if l.k, err = kube.New(cfg); err != nil {
		return err
	}
	l.cfg = cfg
	// a kind cluster gets the images loaded, as the kind backend does; any other pulls them
	l.name = ""
	if name, ok := strings.CutPrefix(raw.CurrentContext, "kind-"); ok && docker.Ping(ctx) == nil {
		if exists, err := kindcluster.New().WithName(name).(*kindcluster.Cluster).Exists(); err == nil && exists {
			l.name = name
		}
	}
	run := l.opts.RunName
	if run == "" {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		run = "secretslab-" + hex.EncodeToString(b)
	}
	if !runName.MatchString(run) {
		return fmt.Errorf("backend cluster: run name %q: want lower-case letters, digits and '-', at most 42 characters (it names namespaces)", run)
	}
	l.vaultNS, l.esoNS = run+"-vault", run+"-eso"
	l.say("cluster of context %q (%s, Kubernetes %s): run %s; taking the inventory of its objects", raw.CurrentContext, cfg.Host, sv.GitVersion, run)
	start := time.Now()
	before, err := kube.TakeInventory(ctx, cfg)
	if err != nil {
		return fmt.Errorf("backend cluster: %w", err)
	}
	l.say("inventory: %d objects in %s", len(before), time.Since(start).Round(time.Millisecond))
	l.run = &clusterRun{name: run, before: before, kubeconfig: raw}
	return nil
}

// claimNamespaces refuses a cluster where the run would take over something (an ESO already
// installed, a namespace of the run's names), then writes the run's kubeconfig (the current
// context only, for Helm and the user) and creates the run's namespaces.
func (l *Lab) claimNamespaces(ctx context.Context) error {
	var taken []string
	for _, o := range l.run.before {
		switch {
		case o.Resource == "customresourcedefinitions.apiextensions.k8s.io" && strings.HasSuffix(o.Name, "external-secrets.io"):
			taken = append(taken, "CRD "+o.Name+" (an External Secrets Operator is installed: the run installs its own and cannot share its CRDs)")
		case o.Resource == "namespaces" && (o.Name == l.vaultNS || o.Name == l.esoNS || strings.HasPrefix(o.Name, appNamespacePrefix)):
			taken = append(taken, "namespace "+o.Name)
		}
	}
	if len(taken) > 0 {
		sort.Strings(taken)
		return fmt.Errorf("backend cluster: the run creates and later removes namespaces %s, %s, %s and %s-platform-* and ESO's CRDs, and never takes over existing ones; this cluster already has: %s. Remove them, or use another cluster or --run-name",
			l.vaultNS, l.esoNS, appNamespacePrefix, appNamespacePrefix, strings.Join(taken, "; "))
	}
	cur, err := currentContextOnly(l.run.kubeconfig)
	if err != nil {
		return fmt.Errorf("backend cluster: kubeconfig: %w", err)
	}
	l.kubeconfig = filepath.Join(l.workDir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cur, l.kubeconfig); err != nil {
		return err
	}
	for _, ns := range []string{l.vaultNS, l.esoNS, appNamespacePrefix} {
		o := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{RunLabel: l.run.name}}}
		if _, err := l.kube.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("backend cluster: create namespace %s: %w", ns, err)
		}
	}
	return nil
}

// removeRun removes what the run created, newest first, each step within removeTimeout and
// each attempted whatever the one before did: the app namespaces (while ESO still runs to
// finalize its objects), ESO (release, then CRDs it applied), Vault, the run's namespaces
// and the volumes their claims had. Then the second inventory must equal the first.
func (l *Lab) removeRun(ctx context.Context) error {
	var errs []error
	step := func(what string, fn func(ctx context.Context) error) {
		sctx, cancel := context.WithTimeout(ctx, removeTimeout)
		defer cancel()
		start := time.Now()
		if err := fn(sctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			l.say("cleanup: %s: FAILED after %s: %v", what, time.Since(start).Round(time.Second), err)
			return
		}
		l.say("cleanup: %s (%s)", what, time.Since(start).Round(time.Second))
	}
	step("delete the app namespaces the run created", func(ctx context.Context) error {
		return l.deleteNamespaces(ctx, func(ns corev1.Namespace) bool {
			return strings.HasPrefix(ns.Name, appNamespacePrefix) && l.createdByRun(ns)
		})
	})
	if l.kubeconfig != "" {
		step("uninstall external-secrets from "+l.esoNS, func(ctx context.Context) error {
			return charts.Uninstall(ctx, l.kubeconfig, "external-secrets", l.esoNS)
		})
	}
	step("delete the ESO CRDs the run applied", l.deleteRunCRDs)
	if l.kubeconfig != "" {
		step("uninstall vault from "+l.vaultNS, func(ctx context.Context) error {
			return charts.Uninstall(ctx, l.kubeconfig, "vault", l.vaultNS)
		})
	}
	ours := map[string]bool{}
	step("delete the run's namespaces", func(ctx context.Context) error {
		return l.deleteNamespaces(ctx, func(ns corev1.Namespace) bool {
			if ns.Labels[RunLabel] == l.run.name && l.createdByRun(ns) {
				ours[ns.Name] = true
				return true
			}
			return false
		})
	})
	step("wait for the volumes of the run's claims to be released", func(ctx context.Context) error {
		return proc.WaitFor(ctx, "the persistent volumes of the run's claims to be deleted", removeTimeout, 2*time.Second, nil, func(ctx context.Context) (bool, error) {
			pvs, err := l.kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			var left []string
			for _, pv := range pvs.Items {
				if c := pv.Spec.ClaimRef; c != nil && (ours[c.Namespace] || strings.HasPrefix(c.Namespace, appNamespacePrefix)) && l.createdByRunUID(string(pv.UID)) {
					left = append(left, pv.Name)
				}
			}
			if len(left) > 0 {
				return false, fmt.Errorf("%d volume(s) left: %s (reclaim policy Retain keeps them: kubectl delete pv %s)", len(left), strings.Join(left, ", "), strings.Join(left, " "))
			}
			return true, nil
		})
	})
	step("compare the cluster's objects with the inventory taken before the run", l.checkInventory)
	return errors.Join(errs...)
}

// checkInventory fails when the cluster does not hold exactly the objects it held before.
func (l *Lab) checkInventory(ctx context.Context) error {
	after, err := kube.TakeInventory(ctx, l.cfg)
	if err != nil {
		return err
	}
	d := kube.Diff(l.run.before, after)
	if !d.Empty() {
		return fmt.Errorf("the cluster is not as the run found it (objects by UID, events aside):\n%s", d.Summary(30))
	}
	l.say("the cluster holds the same %d objects (by UID) as before the run", len(after))
	return nil
}

func (l *Lab) createdByRun(ns corev1.Namespace) bool { return l.createdByRunUID(string(ns.UID)) }

func (l *Lab) createdByRunUID(uid string) bool {
	_, before := l.run.before[types.UID(uid)]
	return !before
}

// deleteNamespaces deletes the namespaces pick chooses and waits until they are gone.
func (l *Lab) deleteNamespaces(ctx context.Context, pick func(corev1.Namespace) bool) error {
	list, err := l.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var names []string
	for _, ns := range list.Items {
		if !pick(ns) {
			continue
		}
		names = append(names, ns.Name)
		if err := l.kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete namespace %s: %w", ns.Name, err)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return proc.WaitFor(ctx, "namespaces "+strings.Join(names, ", ")+" to be deleted", removeTimeout, 2*time.Second, nil, func(ctx context.Context) (bool, error) {
		var left []string
		for _, n := range names {
			_, err := l.kube.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return false, err
			}
			left = append(left, n)
		}
		if len(left) > 0 {
			return false, fmt.Errorf("still terminating: %s (kubectl get ns %s -o yaml shows what holds them)", strings.Join(left, ", "), strings.Join(left, " "))
		}
		return true, nil
	})
}

// deleteRunCRDs deletes the external-secrets.io CRDs created during the run that the chart
// did not remove (those applied from --eso-crds).
func (l *Lab) deleteRunCRDs(ctx context.Context) error {
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	list, err := l.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, crd := range list.Items {
		if !strings.HasSuffix(crd.GetName(), "external-secrets.io") || !l.createdByRunUID(string(crd.GetUID())) {
			continue
		}
		if err := l.dyn.Resource(gvr).Delete(ctx, crd.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete CRD %s: %w", crd.GetName(), err)
		}
	}
	return nil
}

// RunName is the run's name on the cluster backend ("" on kind).
func (l *Lab) RunName() string {
	if l.run == nil {
		return ""
	}
	return l.run.name
}

// LeftoverHelp says how to remove by hand what a cluster-backend run named run created, for
// when the process that should have removed it is gone.
func LeftoverHelp(run string) string {
	return fmt.Sprintf("helm -n %[1]s-eso uninstall external-secrets && helm -n %[1]s-vault uninstall vault && kubectl delete ns -l %[2]s=%[1]s "+
		"(and, if the run applied ESO's CRDs from a file: kubectl get crd -o name | grep external-secrets.io)", run, RunLabel)
}

// currentContextOnly is raw reduced to its current context, certificates inlined.
func currentContextOnly(raw clientcmdapi.Config) (*clientcmdapi.Config, error) {
	c := raw.DeepCopy()
	if err := clientcmdapi.FlattenConfig(c); err != nil {
		return nil, err
	}
	if err := clientcmdapi.MinifyConfig(c); err != nil {
		return nil, err
	}
	return c, nil
}

// exportsNamespace says whether the logs of ns go into the artifacts: on kind every namespace
// but kind's own, on someone else's cluster only the run's.
func (l *Lab) exportsNamespace(ns string) bool {
	if l.run == nil {
		return !systemNamespaces[ns]
	}
	if ns == l.vaultNS || ns == l.esoNS {
		return true
	}
	return strings.HasPrefix(ns, appNamespacePrefix)
}
