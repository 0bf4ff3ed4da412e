package kind

import (
	"context"
	"sort"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretslab/secretslab/internal/portforward"
	"github.com/secretslab/secretslab/internal/tcpproxy"
)

// serviceFront is the harness's way into a Service: a loopback proxy whose backends are
// port-forwards to the Service's ready pods (its EndpointSlices), so a workload's URL keeps
// answering while a rollout replaces the pods, as the Service does inside the cluster. (A
// port-forward to svc/NAME picks one pod when it opens and dies with it.)
type serviceFront struct {
	l       *Lab
	ns, svc string
	port    int // the pods' container port
	proxy   *tcpproxy.Proxy

	mu   sync.Mutex
	fwds map[string]*portforward.Forward // by pod name
}

func openServiceFront(l *Lab, ns, svc string, port int) (*serviceFront, error) {
	f := &serviceFront{l: l, ns: ns, svc: svc, port: port, fwds: map[string]*portforward.Forward{}}
	p, err := tcpproxy.Start(f.pick)
	if err != nil {
		return nil, err
	}
	f.proxy = p
	return f, nil
}

// Addr is where the harness reaches the Service.
func (f *serviceFront) Addr() string { return f.proxy.Addr() }

// pick lists the Service's ready pods and returns a forward to each, opening the missing ones
// and closing those of pods no longer ready (a terminating pod leaves the endpoints first).
func (f *serviceFront) pick(ctx context.Context) []string {
	slices, err := f.l.kube.DiscoveryV1().EndpointSlices(f.ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + f.svc})
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil { // the API did not answer: what was ready a moment ago
		return f.addrs()
	}
	ready := map[string]bool{}
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" && ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				ready[ep.TargetRef.Name] = true
			}
		}
	}
	for pod, fw := range f.fwds {
		if !ready[pod] {
			fw.Close()
			delete(f.fwds, pod)
		}
	}
	for pod := range ready {
		if f.fwds[pod] != nil {
			continue
		}
		if fw, err := portforward.Open(ctx, f.l.cfg, f.ns, "pod/"+pod, f.port); err == nil {
			f.fwds[pod] = fw
		}
	}
	return f.addrs()
}

func (f *serviceFront) addrs() []string {
	var out []string
	for _, fw := range f.fwds {
		out = append(out, fw.Addr())
	}
	sort.Strings(out)
	return out
}

// Close stops the proxy and every forward.
func (f *serviceFront) Close() {
	f.proxy.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for pod, fw := range f.fwds {
		fw.Close()
		delete(f.fwds, pod)
	}
}
