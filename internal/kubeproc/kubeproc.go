// Package kubeproc runs a Kubernetes control plane as host processes on 127.0.0.1:
// etcd, kube-apiserver (with a ServiceAccount issuer, so TokenRequest and TokenReview
// work) and kube-controller-manager (garbage collector and namespace controller).
// There are no nodes and no pods: workloads run elsewhere.
package kubeproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/secretslab/secretslab/internal/pki"
	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/redact"
)

// Issuer is the ServiceAccount token issuer, as in a kubeadm cluster.
const Issuer = "https://kubernetes.default.svc.cluster.local"

// Options configures Start.
type Options struct {
	EtcdBin, APIServerBin, ControllerManagerBin string
	WorkDir                                     string // certificates, etcd data, kubeconfigs
	LogDir                                      string // etcd.log, kube-apiserver.log, kube-controller-manager.log
	Redact                                      *redact.Set
}

// ControlPlane is a running etcd + kube-apiserver + kube-controller-manager.
type ControlPlane struct {
	opts      Options
	procs     proc.Group
	etcdURL   string
	serverURL string
	ca        *pki.CA
	admin     *rest.Config
}

// Start brings etcd and the API server up and waits until the API server is ready.
// StartControllers follows, once CRDs are in place: the garbage collector builds its
// REST mapping at start and backs off for minutes on owners whose kind it cannot map.
func Start(ctx context.Context, opts Options) (cp *ControlPlane, err error) {
	cp = &ControlPlane{opts: opts}
	defer func() {
		if err != nil {
			_ = cp.Stop(5 * time.Second)
		}
	}()
	ports, err := proc.FreePorts(3)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	cp.etcdURL = "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	cp.serverURL = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	certDir := filepath.Join(opts.WorkDir, "pki")
	if err := cp.makeCerts(certDir); err != nil {
		return nil, err
	}
	if err := cp.startEtcd(ctx, etcdPort, peerPort); err != nil {
		return nil, err
	}
	if err := cp.startAPIServer(ctx, certDir, apiPort); err != nil {
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) makeCerts(dir string) error {
	ca, err := pki.NewCA("secretslab-ca")
	if err != nil {
		return err
	}
	cp.ca = ca
	serving, err := ca.Serving("kube-apiserver",
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")})
	if err != nil {
		return err
	}
	admin, err := ca.Client("secretslab-admin", "system:masters")
	if err != nil {
		return err
	}
	kcm, err := ca.Client("system:kube-controller-manager")
	if err != nil {
		return err
	}
	saPriv, saPub, err := pki.ServiceAccountKey()
	if err != nil {
		return err
	}
	if err := pki.WriteFiles(dir, map[string][]byte{
		"ca.crt": ca.CertPEM(), "apiserver.crt": serving.CertPEM, "apiserver.key": serving.KeyPEM,
		"sa.key": saPriv, "sa.pub": saPub,
	}); err != nil {
		return err
	}
	cp.admin = &rest.Config{
		Host:            cp.serverURL,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca.CertPEM(), CertData: admin.CertPEM, KeyData: admin.KeyPEM},
		QPS:             50, Burst: 100,
	}
	if err := cp.writeKubeconfig(filepath.Join(cp.opts.WorkDir, "admin.kubeconfig"), "secretslab-admin", admin); err != nil {
		return err
	}
	return cp.writeKubeconfig(filepath.Join(cp.opts.WorkDir, "kube-controller-manager.kubeconfig"), "system:kube-controller-manager", kcm)
}

func (cp *ControlPlane) writeKubeconfig(path, user string, pair pki.Pair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["secretslab"] = &clientcmdapi.Cluster{Server: cp.serverURL, CertificateAuthorityData: cp.ca.CertPEM()}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: pair.CertPEM, ClientKeyData: pair.KeyPEM}
	cfg.Contexts["secretslab"] = &clientcmdapi.Context{Cluster: "secretslab", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "secretslab"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}

func (cp *ControlPlane) start(spec proc.Spec) (*proc.Process, error) {
	spec.LogDir, spec.Redact = cp.opts.LogDir, cp.opts.Redact
	p, err := proc.Start(spec)
	if err != nil {
		return nil, err
	}
	cp.procs.Add(p)
	return p, nil
}

func (cp *ControlPlane) startEtcd(ctx context.Context, port, peerPort int) error {
	peer := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	p, err := cp.start(proc.Spec{Name: "etcd", Path: cp.opts.EtcdBin, Args: []string{
		"--name=secretslab",
		"--data-dir=" + filepath.Join(cp.opts.WorkDir, "etcd"),
		"--listen-client-urls=" + cp.etcdURL, "--advertise-client-urls=" + cp.etcdURL,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=secretslab=" + peer,
		"--unsafe-no-fsync", // a throw-away lab: durability is not the point, speed on small disks is
		"--log-level=warn",
	}})
	if err != nil {
		return err
	}
	return proc.WaitFor(ctx, "etcd to report healthy on "+cp.etcdURL, time.Minute, 200*time.Millisecond, p,
		func(ctx context.Context) (bool, error) {
			var h struct{ Health string }
			if err := getJSON(ctx, http.DefaultClient, cp.etcdURL+"/health", &h); err != nil {
				return false, err
			}
			return h.Health == "true", nil
		})
}

func (cp *ControlPlane) startAPIServer(ctx context.Context, certDir string, port int) error {
	f := func(name string) string { return filepath.Join(certDir, name) }
	p, err := cp.start(proc.Spec{Name: "kube-apiserver", Path: cp.opts.APIServerBin, Args: []string{
		"--etcd-servers=" + cp.etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + certDir,
		"--tls-cert-file=" + f("apiserver.crt"), "--tls-private-key-file=" + f("apiserver.key"),
		"--client-ca-file=" + f("ca.crt"),
		"--service-account-issuer=" + Issuer,
		"--service-account-key-file=" + f("sa.pub"),
		"--service-account-signing-key-file=" + f("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=1",
	}})
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(cp.admin)
	if err != nil {
		return err
	}
	return proc.WaitFor(ctx, "kube-apiserver to be ready (/readyz) on "+cp.serverURL, 2*time.Minute, 500*time.Millisecond, p,
		func(ctx context.Context) (bool, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cp.serverURL+"/readyz", nil)
			resp, err := hc.Do(req)
			if err != nil {
				return false, err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return false, fmt.Errorf("/readyz: %s: %s", resp.Status, body)
			}
			return true, nil
		})
}

// StartControllers starts kube-controller-manager.
func (cp *ControlPlane) StartControllers() error {
	certDir := filepath.Join(cp.opts.WorkDir, "pki")
	_, err := cp.start(proc.Spec{Name: "kube-controller-manager", Path: cp.opts.ControllerManagerBin, Args: []string{
		"--kubeconfig=" + filepath.Join(cp.opts.WorkDir, "kube-controller-manager.kubeconfig"),
		// garbagecollector: deletes a Secret whose owning ExternalSecret is gone;
		// namespace: finishes namespace deletion; serviceaccount: the default SA per namespace.
		"--controllers=garbagecollector,namespace,serviceaccount",
		// each controller as its own ServiceAccount with its bootstrap role, as kubeadm runs
		// it: the garbage collector may then read any owner (system:controller:generic-
		// garbage-collector), not only what system:kube-controller-manager may
		"--use-service-account-credentials=true",
		"--leader-elect=false",
		"--secure-port=0",
		"--root-ca-file=" + filepath.Join(certDir, "ca.crt"),
		"--v=1",
	}})
	return err
}

// RESTConfig is an admin (system:masters) client config.
func (cp *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(cp.admin) }

// ServerURL is the API server's address.
func (cp *ControlPlane) ServerURL() string { return cp.serverURL }

// CACert is the cluster CA, PEM-encoded.
func (cp *ControlPlane) CACert() []byte { return cp.ca.CertPEM() }

// AdminKubeconfig is the path of an admin kubeconfig.
func (cp *ControlPlane) AdminKubeconfig() string {
	return filepath.Join(cp.opts.WorkDir, "admin.kubeconfig")
}

// EtcdVersion reads the running etcd's version.
func (cp *ControlPlane) EtcdVersion(ctx context.Context) (string, error) {
	var v struct{ Etcdserver string }
	if err := getJSON(ctx, http.DefaultClient, cp.etcdURL+"/version", &v); err != nil {
		return "", fmt.Errorf("etcd version: %w", err)
	}
	return "v" + v.Etcdserver, nil
}

// KubernetesVersion reads the API server's version.
func (cp *ControlPlane) KubernetesVersion() (string, error) {
	cs, err := kubernetes.NewForConfig(cp.admin)
	if err != nil {
		return "", err
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return "", fmt.Errorf("kubernetes version: %w", err)
	}
	return v.GitVersion, nil
}

// Records lists the processes, for a state file.
func (cp *ControlPlane) Records() []proc.Record { return cp.procs.Records() }

// Healthy returns the first component that has exited.
func (cp *ControlPlane) Healthy() error {
	var errs []error
	for _, r := range cp.procs.Records() {
		if !r.Alive() {
			errs = append(errs, fmt.Errorf("%s (pid %d) is not running (log: %s)", r.Name, r.PID, r.LogPath))
		}
	}
	return errors.Join(errs...)
}

// Stop stops the control plane, newest process first.
func (cp *ControlPlane) Stop(grace time.Duration) error { return cp.procs.StopAll(grace) }

func getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
