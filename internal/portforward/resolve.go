package portforward

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// Kind is what a target names.
type Kind string

const (
	KindPod     Kind = "pod"
	KindService Kind = "svc"
)

// ParseTarget splits "pod/NAME" or "svc/NAME" (also "pods/", "po/", "service/", "services/").
func ParseTarget(target string) (Kind, string, error) {
	kind, name, ok := strings.Cut(target, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("port-forward target %q: want pod/NAME or svc/NAME", target)
	}
	var k Kind
	switch strings.ToLower(kind) {
	case "pod", "pods", "po":
		k = KindPod
	case "svc", "service", "services":
		k = KindService
	default:
		return "", "", fmt.Errorf("port-forward target %q: unknown kind %q (want pod/NAME or svc/NAME)", target, kind)
	}
	if strings.ContainsAny(name, " \t\n:?#%") || len(name) > 253 {
		return "", "", fmt.Errorf("port-forward target %q: invalid name %q", target, name)
	}
	return k, name, nil
}

// Target is what a port-forward connects to: a pod and a port of it.
type Target struct {
	Namespace string
	Pod       string
	PodUID    types.UID
	Port      int    // the pod's port
	Via       string // for a Service: "svc/NAME port N"; "" for a pod target
}

func (t Target) String() string {
	s := fmt.Sprintf("pod %s/%s port %d", t.Namespace, t.Pod, t.Port)
	if t.Via != "" {
		s = t.Via + " -> " + s
	}
	return s
}

// Resolve finds the pod and port for target ("pod/NAME" or "svc/NAME") and remotePort. For a
// pod, remotePort is the pod's port, and the pod must be Running and not terminating. For a
// Service, remotePort is one of the Service's (TCP) ports; Resolve picks a ready pod endpoint
// of it (EndpointSlices, else the Endpoints object), in name order, and maps the port to the
// endpoint's port (the Service's targetPort, named ports resolved against the pod).
func Resolve(ctx context.Context, cs kubernetes.Interface, namespace, target string, remotePort int) (*Target, error) {
	kind, name, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	if remotePort < 1 || remotePort > 65535 {
		return nil, fmt.Errorf("port-forward to %s: port %d out of range", target, remotePort)
	}
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	if kind == KindPod {
		pod, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("port-forward: pod %s/%s not found", namespace, name)
		}
		if err != nil {
			return nil, fmt.Errorf("port-forward: get pod %s/%s: %w", namespace, name, err)
		}
		if why := notUsable(pod); why != "" {
			return nil, fmt.Errorf("port-forward: pod %s/%s %s", namespace, name, why)
		}
		return &Target{Namespace: namespace, Pod: name, PodUID: pod.UID, Port: remotePort}, nil
	}
	return resolveService(ctx, cs, namespace, name, remotePort)
}

// notUsable says why a pod cannot be forwarded to, or "".
func notUsable(pod *corev1.Pod) string {
	switch {
	case pod.DeletionTimestamp != nil:
		return "is terminating"
	case pod.Status.Phase != corev1.PodRunning:
		return fmt.Sprintf("is %s, not Running", orUnknown(string(pod.Status.Phase)))
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "in no phase yet"
	}
	return s
}

type candidate struct {
	pod  string
	port int // from the endpoint; 0: map the Service's targetPort against the pod
}

func resolveService(ctx context.Context, cs kubernetes.Interface, ns, name string, port int) (*Target, error) {
	what := fmt.Sprintf("service %s/%s", ns, name)
	svc, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("port-forward: %s not found", what)
	}
	if err != nil {
		return nil, fmt.Errorf("port-forward: get %s: %w", what, err)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, fmt.Errorf("port-forward: %s is of type ExternalName: it has no pods", what)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if int(p.Port) == port && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
			sp = p
			break
		}
	}
	if sp == nil {
		return nil, fmt.Errorf("port-forward: %s has no TCP port %d (its ports: %s)", what, port, portList(svc.Spec.Ports))
	}

	ready, notReady, err := serviceEndpoints(ctx, cs, ns, name, sp.Name)
	if err != nil {
		return nil, fmt.Errorf("port-forward: %s: %w", what, err)
	}
	var skipped []string
	for _, c := range ready {
		pod, err := cs.CoreV1().Pods(ns).Get(ctx, c.pod, metav1.GetOptions{})
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (%v)", c.pod, err))
			continue
		}
		if why := notUsable(pod); why != "" {
			skipped = append(skipped, c.pod+" "+why)
			continue
		}
		p := c.port
		if p == 0 {
			if p, err = targetPort(sp, pod); err != nil {
				return nil, fmt.Errorf("port-forward: %s port %d: %w", what, port, err)
			}
		}
		return &Target{Namespace: ns, Pod: pod.Name, PodUID: pod.UID, Port: p, Via: fmt.Sprintf("svc/%s port %d", name, port)}, nil
	}
	msg := fmt.Sprintf("port-forward: %s has no ready pod behind port %d", what, port)
	if len(skipped) > 0 {
		msg += "; ready endpoints not usable: " + strings.Join(skipped, ", ")
	}
	if len(notReady) > 0 {
		msg += "; not ready: " + strings.Join(notReady, ", ")
	}
	if len(skipped) == 0 && len(notReady) == 0 {
		msg += " (no pod endpoints: no pod matches its selector, or none has an IP yet)"
	}
	return nil, fmt.Errorf("%s", msg)
}

// serviceEndpoints lists the pods behind a Service port: ready ones (sorted, deduplicated, with
// the endpoint's port number when known) and the names of not-ready ones. EndpointSlices first;
// the Endpoints object when there is no slice (or slices cannot be listed).
func serviceEndpoints(ctx context.Context, cs kubernetes.Interface, ns, name, portName string) ([]candidate, []string, error) {
	var ready []candidate
	var notReady []string
	slices, sliceErr := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if sliceErr == nil && len(slices.Items) > 0 {
		for _, s := range slices.Items {
			if s.AddressType == discoveryv1.AddressTypeFQDN {
				continue
			}
			port := 0
			for _, p := range s.Ports {
				if p.Port != nil && ptrStr(p.Name) == portName && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
					port = int(*p.Port)
				}
			}
			for _, ep := range s.Endpoints {
				if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
					continue
				}
				if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
					ready = append(ready, candidate{pod: ep.TargetRef.Name, port: port})
				} else {
					notReady = append(notReady, ep.TargetRef.Name)
				}
			}
		}
		return sortCandidates(ready), notReady, nil
	}
	eps, err := cs.CoreV1().Endpoints(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if sliceErr != nil {
			return nil, nil, fmt.Errorf("list its EndpointSlices: %w", sliceErr)
		}
		return nil, nil, nil
	}
	if err != nil {
		if sliceErr != nil {
			return nil, nil, fmt.Errorf("list its EndpointSlices: %v; get its Endpoints: %w", sliceErr, err)
		}
		return nil, nil, fmt.Errorf("get its Endpoints: %w", err)
	}
	for _, sub := range eps.Subsets {
		port := 0
		for _, p := range sub.Ports {
			if p.Name == portName && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
				port = int(p.Port)
			}
		}
		for _, a := range sub.Addresses {
			if a.TargetRef != nil && a.TargetRef.Kind == "Pod" {
				ready = append(ready, candidate{pod: a.TargetRef.Name, port: port})
			}
		}
		for _, a := range sub.NotReadyAddresses {
			if a.TargetRef != nil && a.TargetRef.Kind == "Pod" {
				notReady = append(notReady, a.TargetRef.Name)
			}
		}
	}
	return sortCandidates(ready), notReady, nil
}

func sortCandidates(c []candidate) []candidate {
	sort.SliceStable(c, func(i, j int) bool { return c[i].pod < c[j].pod })
	out := c[:0]
	for i, x := range c {
		if i > 0 && x.pod == c[i-1].pod {
			continue
		}
		out = append(out, x)
	}
	return out
}

// targetPort maps a Service port to the pod's port: a number as it is (unset: the Service port),
// a name to the container port of that name.
func targetPort(sp *corev1.ServicePort, pod *corev1.Pod) (int, error) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return int(sp.Port), nil
		}
		return int(tp.IntVal), nil
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == tp.StrVal && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
				return int(p.ContainerPort), nil
			}
		}
	}
	return 0, fmt.Errorf("targetPort %q: pod %s has no container port of that name", tp.StrVal, pod.Name)
}

func portList(ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return "none"
	}
	var s []string
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		e := fmt.Sprintf("%d/%s", p.Port, proto)
		if p.Name != "" {
			e += " (" + p.Name + ")"
		}
		s = append(s, e)
	}
	return strings.Join(s, ", ")
}

func ptrStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
