package portforward

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
)

func TestParseTarget(t *testing.T) {
	good := map[string]struct {
		kind Kind
		name string
	}{
		"pod/vault-0":      {KindPod, "vault-0"},
		"pods/vault-0":     {KindPod, "vault-0"},
		"po/x":             {KindPod, "x"},
		"svc/vault":        {KindService, "vault"},
		"service/vault":    {KindService, "vault"},
		"services/a.b":     {KindService, "a.b"},
		"SVC/vault-active": {KindService, "vault-active"},
	}
	for in, want := range good {
		k, n, err := ParseTarget(in)
		if err != nil || k != want.kind || n != want.name {
			t.Errorf("ParseTarget(%q) = %q, %q, %v; want %q, %q", in, k, n, err, want.kind, want.name)
		}
	}
	for _, in := range []string{"", "vault-0", "pod/", "/x", "deploy/vault", "pod/a/b", "svc/a b", "svc/a:80"} {
		if _, _, err := ParseTarget(in); err == nil {
			t.Errorf("ParseTarget(%q): want an error", in)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func pod(name, uid string, phase corev1.PodPhase, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(uid)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func podRef(name string) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: name}
}

func slice(name, svc string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
		Endpoints:   eps,
	}
}

func ep(pod string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{"10.244.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready)}, TargetRef: podRef(pod)}
}

func service(name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: corev1.ServiceSpec{Ports: ports}}
}

func fixture() *fake.Clientset {
	httpPort := corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}
	objs := []runtime.Object{
		pod("web-1", "uid-web-1", corev1.PodRunning, httpPort),
		pod("web-0", "uid-web-0", corev1.PodRunning, httpPort),
		pod("aaa-pending", "uid-p", corev1.PodPending, httpPort),
		pod("done", "uid-done", corev1.PodSucceeded),
		pod("legacy-0", "uid-l", corev1.PodRunning),

		service("web",
			corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")},
			corev1.ServicePort{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9091)},
			corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)}),
		slice("web-abc", "web",
			[]discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080), Protocol: ptr(corev1.ProtocolTCP)}, {Name: ptr("metrics"), Port: ptr[int32](9091)}},
			ep("web-0", false), ep("web-1", true), ep("aaa-pending", true)),
		// A slice of another Service, which must be ignored.
		slice("other-xyz", "other", []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](1)}}, ep("done", true)),

		// The slice has no port list: the named targetPort is mapped against the pod.
		service("named", corev1.ServicePort{Name: "web", Port: 8000, TargetPort: intstr.FromString("http")}),
		slice("named-1", "named", nil, ep("web-1", true)),
		service("unset", corev1.ServicePort{Port: 7000}),
		slice("unset-1", "unset", nil, ep("web-1", true)),

		// No EndpointSlices: the Endpoints object.
		service("legacy", corev1.ServicePort{Name: "api", Port: 443, TargetPort: intstr.FromInt32(8443)}),
		&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "ns"}, Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "10.244.0.5", TargetRef: podRef("legacy-0")}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.244.0.6", TargetRef: podRef("web-0")}},
			Ports:             []corev1.EndpointPort{{Name: "api", Port: 8443, Protocol: corev1.ProtocolTCP}},
		}}},

		service("sealed", corev1.ServicePort{Port: 8200}),
		slice("sealed-1", "sealed", nil, ep("web-0", false)),
		service("empty", corev1.ServicePort{Port: 8200}),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "ns"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.invalid"}},
	}
	return fake.NewSimpleClientset(objs...)
}

func TestResolve(t *testing.T) {
	cs := fixture()
	ctx := context.Background()
	ok := []struct {
		target    string
		port      int
		pod       string
		podPort   int
		uid       string
		wantTrace string
	}{
		{"svc/web", 80, "web-1", 8080, "uid-web-1", "svc/web port 80 -> pod ns/web-1 port 8080"},
		{"svc/web", 9090, "web-1", 9091, "uid-web-1", ""},
		{"svc/named", 8000, "web-1", 8080, "uid-web-1", ""},
		{"svc/unset", 7000, "web-1", 7000, "uid-web-1", ""},
		{"svc/legacy", 443, "legacy-0", 8443, "uid-l", ""},
		{"pod/web-0", 1234, "web-0", 1234, "uid-web-0", "pod ns/web-0 port 1234"},
	}
	for _, c := range ok {
		got, err := Resolve(ctx, cs, "ns", c.target, c.port)
		if err != nil {
			t.Errorf("Resolve(%s, %d): %v", c.target, c.port, err)
			continue
		}
		if got.Pod != c.pod || got.Port != c.podPort || string(got.PodUID) != c.uid || got.Namespace != "ns" {
			t.Errorf("Resolve(%s, %d) = %+v; want pod %s port %d uid %s", c.target, c.port, got, c.pod, c.podPort, c.uid)
		}
		if c.wantTrace != "" && got.String() != c.wantTrace {
			t.Errorf("Target.String() = %q, want %q", got.String(), c.wantTrace)
		}
	}

	bad := []struct {
		target string
		port   int
		want   []string
	}{
		{"svc/web", 53, []string{"no TCP port 53", "80/TCP (http), 9090/TCP (metrics), 53/UDP (dns)"}},
		{"svc/web", 81, []string{"no TCP port 81"}},
		{"svc/sealed", 8200, []string{"no ready pod behind port 8200", "not ready: web-0"}},
		{"svc/empty", 8200, []string{"no pod endpoints"}},
		{"svc/ext", 80, []string{"ExternalName"}},
		{"svc/nope", 80, []string{"service ns/nope not found"}},
		{"pod/done", 80, []string{"pod ns/done is Succeeded, not Running"}},
		{"pod/aaa-pending", 80, []string{"is Pending"}},
		{"pod/nope", 80, []string{"pod ns/nope not found"}},
		{"pod/web-1", 0, []string{"out of range"}},
		{"deploy/web", 80, []string{"want pod/NAME or svc/NAME"}},
	}
	for _, c := range bad {
		_, err := Resolve(ctx, cs, "ns", c.target, c.port)
		if err == nil {
			t.Errorf("Resolve(%s, %d): want an error", c.target, c.port)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Resolve(%s, %d): error %q lacks %q", c.target, c.port, err, w)
			}
		}
	}

	// The only ready endpoint's pod is gone from the API: named in the error.
	if err := cs.CoreV1().Pods("ns").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Resolve(ctx, cs, "ns", "svc/named", 8000)
	if err == nil || !strings.Contains(err.Error(), "web-1") {
		t.Errorf("endpoint pod gone: %v", err)
	}
}

func TestTargetPortNamedMissing(t *testing.T) {
	sp := &corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("grpc")}
	if _, err := targetPort(sp, pod("p", "u", corev1.PodRunning, corev1.ContainerPort{Name: "http", ContainerPort: 8080})); err == nil || !strings.Contains(err.Error(), `"grpc"`) {
		t.Fatalf("missing named port: %v", err)
	}
}
