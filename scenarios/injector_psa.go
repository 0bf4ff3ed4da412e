package scenarios

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/lab"
)

// injector-psa: chapter 05's "how it works": ESO injects nothing into the app's pods, so they
// stay Pod Security "restricted"; the Vault Agent injector would add containers to them, and
// in the restricted bookstore namespace such a pod is rejected. Every pod here is a
// server-side dry run of the catalog's own pod template: admission (the injector's webhook,
// then Pod Security) answers, and nothing runs.
func injectorPSA() Scenario {
	var restricted string // the bookstore namespace's enforce level, as read
	return Scenario{Name: "injector-psa", Title: "ch05: ESO injects nothing; the Vault Agent injector meets Pod Security restricted", Needs: []string{"baseline"},
		Requires: []Requirement{chartInjector}, Checks: []Check{
			{"catalog-admitted-unchanged", "the catalog pods run in the restricted namespace with exactly their template's containers (ESO injected nothing)", func(ctx context.Context, e *Env, r *Result) error {
				nsObj, err := e.Lab.Kube().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if restricted = nsObj.Labels["pod-security.kubernetes.io/enforce"]; restricted != "restricted" {
					return fmt.Errorf("namespace %s enforces Pod Security %q, want restricted (fixtures 00-namespace.yaml)", ns, restricted)
				}
				tmpl, err := catalogTemplate(ctx, e)
				if err != nil {
					return err
				}
				pods, err := e.Lab.Kube().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=catalog"})
				if err != nil {
					return err
				}
				if len(pods.Items) == 0 {
					return errors.New("no catalog pod runs")
				}
				want := containerNames(tmpl.Spec)
				for _, p := range pods.Items {
					if got := containerNames(p.Spec); got != want {
						return fmt.Errorf("pod %s has containers %s, its template %s", p.Name, got, want)
					}
				}
				r.Note("%d catalog pod(s) admitted under enforce=restricted with containers %s", len(pods.Items), want)
				r.Claim("C05-08", true, fmt.Sprintf("%d catalog pod(s) with exactly the template's containers %s, admitted under enforce=restricted", len(pods.Items), want))
				return nil
			}},
			{"annotation-inert", "with the chart's injector off (chapter 05's values), an annotated catalog pod is admitted and nothing is added to it", func(ctx context.Context, e *Env, r *Result) error {
				p, err := annotatedCatalogPod(ctx, e, ns)
				if err != nil {
					return err
				}
				got, err := dryRunPod(ctx, e, p)
				if err != nil {
					return fmt.Errorf("the annotated pod is refused with the injector off: %w", err)
				}
				if a, b := containerNames(got.Spec), containerNames(p.Spec); a != b {
					return fmt.Errorf("containers %s after admission, %s sent: something mutated the pod with the injector off", a, b)
				}
				r.Note("admitted unchanged: containers %s", containerNames(got.Spec))
				return nil
			}},
			{"injector-mutates", "with the chart's injector on, an annotated catalog pod in a namespace without Pod Security gets the agent's containers", func(ctx context.Context, e *Env, r *Result) error {
				inj := e.Lab.(lab.Injector)
				start := time.Now()
				if err := inj.SetVaultInjector(ctx, true); err != nil {
					return err
				}
				e.Defer("turn the Vault Agent injector off again", func(ctx context.Context) error { return inj.SetVaultInjector(ctx, false) })
				r.Figure("injector-ready-seconds", since(start))
				if err := e.probeNamespace(ctx); err != nil {
					return err
				}
				p, err := annotatedCatalogPod(ctx, e, injectorProbeNS)
				if err != nil {
					return err
				}
				// the webhook's failurePolicy is Ignore: until it serves, pods pass unmutated
				var got *corev1.Pod
				err = proc.WaitFor(ctx, "the injector's webhook to add the agent to an annotated pod", e.Timeouts.Sync, 2*time.Second, nil, func(ctx context.Context) (bool, error) {
					var err error
					if got, err = dryRunPod(ctx, e, p); err != nil {
						return false, proc.Permanent(err) // admission's answer, not a webhook still starting
					}
					return injected(got) != "", fmt.Errorf("containers %s: not mutated yet", containerNames(got.Spec))
				})
				if err != nil {
					return err
				}
				r.Note("the injector added %s; containers now %s", injected(got), containerNames(got.Spec))
				return nil
			}},
			{"restricted-rejects-injected-pod", "the same annotated pod in the restricted bookstore namespace: Pod Security admission rejects it, naming the fields", func(ctx context.Context, e *Env, r *Result) error {
				p, err := annotatedCatalogPod(ctx, e, ns)
				if err != nil {
					return err
				}
				got, err := dryRunPod(ctx, e, p)
				switch {
				case err == nil && injected(got) == "":
					return fmt.Errorf("admitted without the agent (containers %s): the injector did not act, so Pod Security was not put to the test", containerNames(got.Spec))
				case err == nil:
					r.Note("admitted with the agent (%s): the injected containers pass restricted: %s", injected(got), agentSecurity(got))
					r.Claim("C05-20", false, "admitted under enforce="+restricted+" with "+injected(got)+" injected ("+agentSecurity(got)+")")
					return nil
				case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity"):
					return fmt.Errorf("refused, but not by Pod Security: %w", err)
				}
				fields := violatedFields(err.Error())
				r.Note("Pod Security rejected it: %s", strings.Join(fields, "; "))
				r.Claim("C05-20", true, "rejected by PodSecurity "+restricted+": "+strings.Join(fields, "; "))
				return nil
			}},
			{"injector-off-again", "the injector turned off again: the annotation is inert once more", func(ctx context.Context, e *Env, r *Result) error {
				if err := e.Lab.(lab.Injector).SetVaultInjector(ctx, false); err != nil {
					return err
				}
				p, err := annotatedCatalogPod(ctx, e, injectorProbeNS)
				if err != nil {
					return err
				}
				got, err := dryRunPod(ctx, e, p)
				if err != nil {
					return err
				}
				if injected(got) != "" {
					return fmt.Errorf("still mutated after the injector was turned off: %s", injected(got))
				}
				return nil
			}},
		}}
}

// injectorProbeNS has no Pod Security labels: what the injector does, unjudged.
const injectorProbeNS = "bookstore-injector-probe"

// chartInjector is what injector-psa requires: pods and the Vault chart.
var chartInjector = Requirement{
	Name: "the Vault chart's injector",
	Met:  func(e *Env) bool { _, ok := e.Lab.(lab.Injector); return ok },
	Why:  "the embedded backend runs no pods and no Vault chart; run on BACKEND=kind or cluster",
}

// probeNamespace creates injectorProbeNS (removed in teardown).
func (e *Env) probeNamespace(ctx context.Context) error {
	k := e.Lab.Kube().CoreV1()
	_, err := k.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: injectorProbeNS}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", injectorProbeNS, err)
	}
	// the catalog's ServiceAccount, which the probe pod names
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: injectorProbeNS}}
	if _, err := k.ServiceAccounts(injectorProbeNS).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ServiceAccount %s/catalog: %w", injectorProbeNS, err)
	}
	e.Defer("delete namespace "+injectorProbeNS, func(ctx context.Context) error {
		if err := k.Namespaces().Delete(ctx, injectorProbeNS, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return proc.WaitFor(ctx, "namespace "+injectorProbeNS+" to be deleted", e.Timeouts.Gone, time.Second, nil, func(ctx context.Context) (bool, error) {
			_, err := k.Namespaces().Get(ctx, injectorProbeNS, metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		})
	})
	return nil
}

// catalogTemplate is the running catalog Deployment's pod template.
func catalogTemplate(ctx context.Context, e *Env) (corev1.PodTemplateSpec, error) {
	d, err := e.Lab.Kube().AppsV1().Deployments(ns).Get(ctx, "catalog", metav1.GetOptions{})
	if err != nil {
		return corev1.PodTemplateSpec{}, fmt.Errorf("the catalog Deployment: %w", err)
	}
	return d.Spec.Template, nil
}

// annotatedCatalogPod is the catalog's pod annotated for the Vault Agent injector as the
// injector's documentation shows (role, one secret to render), in namespace. The injector
// needs the pod's ServiceAccount token, which the catalog does not mount: the probe mounts
// it, as a pod meant for the injector would.
func annotatedCatalogPod(ctx context.Context, e *Env, namespace string) (*corev1.Pod, error) {
	t, err := catalogTemplate(ctx, e)
	if err != nil {
		return nil, err
	}
	mount := true
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "catalog-injector-probe", Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/name": "catalog-injector-probe"},
		Annotations: map[string]string{
			"vault.hashicorp.com/agent-inject":           "true",
			"vault.hashicorp.com/role":                   "bookstore-app",
			"vault.hashicorp.com/agent-inject-secret-db": "secret/data/bookstore/db",
		}}, Spec: *t.Spec.DeepCopy()}
	p.Spec.AutomountServiceAccountToken = &mount
	return p, nil
}

// dryRunPod creates p server-side with dryRun=All: admission runs, nothing is stored.
func dryRunPod(ctx context.Context, e *Env, p *corev1.Pod) (*corev1.Pod, error) {
	return e.Lab.Kube().CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

func containerNames(s corev1.PodSpec) string {
	var names []string
	for _, c := range s.InitContainers {
		names = append(names, "init:"+c.Name)
	}
	for _, c := range s.Containers {
		names = append(names, c.Name)
	}
	return "[" + strings.Join(names, " ") + "]"
}

// injected names the Vault Agent containers in p ("" when none).
func injected(p *corev1.Pod) string {
	var names []string
	for _, c := range slices.Concat(p.Spec.InitContainers, p.Spec.Containers) {
		if strings.HasPrefix(c.Name, "vault-agent") {
			names = append(names, c.Name)
		}
	}
	return strings.Join(names, ", ")
}

// agentSecurity summarises the injected containers' security context.
func agentSecurity(p *corev1.Pod) string {
	var out []string
	for _, c := range slices.Concat(p.Spec.InitContainers, p.Spec.Containers) {
		if !strings.HasPrefix(c.Name, "vault-agent") || c.SecurityContext == nil {
			continue
		}
		sc := c.SecurityContext
		s := c.Name + ":"
		if sc.AllowPrivilegeEscalation != nil {
			s += fmt.Sprintf(" allowPrivilegeEscalation=%t", *sc.AllowPrivilegeEscalation)
		}
		if sc.RunAsNonRoot != nil {
			s += fmt.Sprintf(" runAsNonRoot=%t", *sc.RunAsNonRoot)
		}
		if sc.Capabilities != nil {
			s += fmt.Sprintf(" drop=%v", sc.Capabilities.Drop)
		}
		if sc.SeccompProfile != nil {
			s += " seccomp=" + string(sc.SeccompProfile.Type)
		} else if p.Spec.SecurityContext != nil && p.Spec.SecurityContext.SeccompProfile != nil {
			s += " seccomp=" + string(p.Spec.SecurityContext.SeccompProfile.Type) + " (the pod's)"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// violatedFields lists the checks Pod Security names in a rejection, each with its fields:
// the answer ends `violates PodSecurity "restricted:latest": CHECK (DETAIL), CHECK (DETAIL)`.
func violatedFields(msg string) []string {
	_, list, ok := strings.Cut(msg, "\": ")
	if !ok {
		return []string{msg}
	}
	var out []string
	depth, start := 0, 0
	for i, c := range list {
		switch {
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, violationItem(list[start:i]))
			start = i + 1
		}
	}
	return append(out, violationItem(list[start:]))
}

// violationItem turns `CHECK (DETAIL)` into `CHECK: DETAIL`.
func violationItem(s string) string {
	check, detail, ok := strings.Cut(strings.TrimSpace(s), " (")
	if !ok {
		return strings.TrimSpace(s)
	}
	return check + ": " + strings.TrimSuffix(detail, ")")
}
