package embedded

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/tcpproxy"
	"github.com/secretslab/secretslab/lab"
)

// secretKey matches Secret keys whose values are masked in workload logs.
var secretKey = regexp.MustCompile(`(?i)pass|secret|token|dsn|key|cred`)

// services maps in-cluster addresses (name.ns.svc.cluster.local:port) to host addresses:
// the embedded stand-in for cluster DNS and Services, handed to the bookstore app as
// DIAL_OVERRIDES so the DSN bytes in its Secret stay exactly as the cluster would use them.
type services struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *services) add(name, ns string, port int, hostAddr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	for _, host := range []string{name + "." + ns + ".svc.cluster.local", name + "." + ns + ".svc", name + "." + ns} {
		s.m[host+":"+strconv.Itoa(port)] = hostAddr
	}
}

func (s *services) dialOverrides() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for from, to := range s.m {
		out = append(out, from+"="+to)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// podSpec is what Deploy needs of a workload manifest.
type podSpec struct {
	kind, name, namespace, serviceName string
	pod                                corev1.PodTemplateSpec
}

func parseWorkload(manifest []byte) (*podSpec, error) {
	objs, err := kube.Decode(manifest)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		ps := &podSpec{kind: o.GetKind(), name: o.GetName(), namespace: o.GetNamespace()}
		conv := runtime.DefaultUnstructuredConverter
		switch o.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			err = conv.FromUnstructured(o.Object, &d)
			ps.pod = d.Spec.Template
		case "StatefulSet":
			var s appsv1.StatefulSet
			err = conv.FromUnstructured(o.Object, &s)
			ps.pod, ps.serviceName = s.Spec.Template, s.Spec.ServiceName
		case "Job":
			var j batchv1.Job
			err = conv.FromUnstructured(o.Object, &j)
			ps.pod = j.Spec.Template
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		if len(ps.pod.Spec.Containers) == 0 {
			return nil, fmt.Errorf("%s %s has no container", ps.kind, ps.name)
		}
		if ps.serviceName == "" {
			ps.serviceName = ps.name
		}
		return ps, nil
	}
	return nil, fmt.Errorf("manifest holds no Deployment, StatefulSet or Job")
}

// env resolves a container's environment as the kubelet would (envFrom, then env).
func (l *Lab) env(ctx context.Context, ns string, c corev1.Container) (map[string]string, error) {
	out := map[string]string{}
	secret := func(name, key string, optional *bool) (string, bool, error) {
		s, err := l.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if optional != nil && *optional {
				return "", false, nil
			}
			return "", false, fmt.Errorf("Secret %s/%s: %w", ns, name, err)
		}
		v, ok := s.Data[key]
		if ok && secretKey.MatchString(key) {
			l.secrets.Add(string(v))
		}
		return string(v), ok, nil
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.SecretRef != nil:
			s, err := l.kube.CoreV1().Secrets(ns).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("envFrom Secret %s/%s: %w", ns, from.SecretRef.Name, err)
			}
			for k, v := range s.Data {
				out[from.Prefix+k] = string(v)
				if secretKey.MatchString(k) {
					l.secrets.Add(string(v))
				}
			}
		case from.ConfigMapRef != nil:
			cm, err := l.kube.CoreV1().ConfigMaps(ns).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("envFrom ConfigMap %s/%s: %w", ns, from.ConfigMapRef.Name, err)
			}
			for k, v := range cm.Data {
				out[from.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			v, ok, err := secret(r.Name, r.Key, r.Optional)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			if !ok && (r.Optional == nil || !*r.Optional) {
				return nil, fmt.Errorf("env %s: Secret %s/%s has no key %s", e.Name, ns, r.Name, r.Key)
			}
			if ok {
				out[e.Name] = v
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			cm, err := l.kube.CoreV1().ConfigMaps(ns).Get(ctx, r.Name, metav1.GetOptions{})
			if err != nil {
				if r.Optional != nil && *r.Optional {
					continue
				}
				return nil, fmt.Errorf("env %s: ConfigMap %s/%s: %w", e.Name, ns, r.Name, err)
			}
			if v, ok := cm.Data[r.Key]; ok {
				out[e.Name] = v
			}
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			out[e.Name] = ns
		}
	}
	return out, nil
}

// Deploy implements lab.Lab.
func (l *Lab) Deploy(ctx context.Context, manifest []byte) (lab.Workload, error) {
	ps, err := parseWorkload(manifest)
	if err != nil {
		return nil, err
	}
	c := ps.pod.Spec.Containers[0]
	switch {
	case strings.HasPrefix(c.Image, "postgres:") || strings.Contains(c.Image, "/postgres:"):
		return l.deployPostgres(ctx, ps, c)
	case l.opts.BookstoreImage != "" && c.Image == l.opts.BookstoreImage:
		if l.opts.BookstoreBinary == "" {
			return nil, fmt.Errorf("%s %s: no bookstore binary configured for the embedded backend", ps.kind, ps.name)
		}
		w := &appWorkload{l: l, spec: ps, c: c}
		if err := w.start(ctx); err != nil {
			return nil, err
		}
		if w.addr != "" {
			l.services.add(ps.serviceName, ps.namespace, int(c.Ports[0].ContainerPort), w.addr)
		}
		return w, nil
	}
	return nil, fmt.Errorf("%s %s: the embedded backend runs the postgres and bookstore (%s) images only, not %q", ps.kind, ps.name, l.opts.BookstoreImage, c.Image)
}

// deployPostgres gives the postgres image's env contract (POSTGRES_USER, POSTGRES_PASSWORD,
// POSTGRES_DB: a superuser and its database) on the lab's Postgres server.
func (l *Lab) deployPostgres(ctx context.Context, ps *podSpec, c corev1.Container) (lab.Workload, error) {
	env, err := l.env(ctx, ps.namespace, c)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", ps.kind, ps.name, err)
	}
	user, pass, db := env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
	if user == "" {
		user = "postgres"
	}
	if db == "" {
		db = user
	}
	if pass == "" {
		return nil, fmt.Errorf("%s %s: POSTGRES_PASSWORD is empty (the postgres image refuses to start)", ps.kind, ps.name)
	}
	l.secrets.Add(pass)
	conn, err := pgx.Connect(ctx, l.pg.AdminDSN("postgres"))
	if err != nil {
		return nil, fmt.Errorf("connect to the lab's Postgres: %s", l.secrets.String(err.Error()))
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{user}.Sanitize()
	literal := "'" + strings.ReplaceAll(pass, "'", "''") + "'"
	var exists bool
	if err := conn.QueryRow(ctx, "select exists(select 1 from pg_roles where rolname = $1)", user).Scan(&exists); err != nil {
		return nil, err
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	if _, err := conn.Exec(ctx, verb+" ROLE "+ident+" WITH SUPERUSER LOGIN PASSWORD "+literal); err != nil {
		return nil, fmt.Errorf("%s role %s: %s", strings.ToLower(verb), user, l.secrets.String(err.Error()))
	}
	if err := conn.QueryRow(ctx, "select exists(select 1 from pg_database where datname = $1)", db).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()+" OWNER "+ident); err != nil {
			return nil, fmt.Errorf("create database %s: %w", db, err)
		}
	}
	port := 5432
	if len(c.Ports) > 0 {
		port = int(c.Ports[0].ContainerPort)
	}
	l.services.add(ps.serviceName, ps.namespace, port, l.pg.Addr())
	return &pgWorkload{name: ps.name}, nil
}

type pgWorkload struct{ name string }

func (w *pgWorkload) Name() string                                     { return w.name }
func (w *pgWorkload) URL() string                                      { return "" }
func (w *pgWorkload) Restart(context.Context) error                    { return nil }
func (w *pgWorkload) Rollout(context.Context, map[string]string) error { return nil }
func (w *pgWorkload) Stop(context.Context) error                       { return nil }

// appWorkload is the bookstore app as host processes: one at a time, two during a rollout.
// A workload with a port is reached at addr, a loopback proxy (the Service's stand-in) that
// hands each new connection to the current process.
type appWorkload struct {
	l     *Lab
	spec  *podSpec
	c     corev1.Container
	addr  string          // the stable address ("" without a port)
	front *tcpproxy.Proxy // listens on addr

	mu      sync.Mutex
	p       *proc.Process // the current process
	backend string        // its LISTEN_ADDR
}

// endpointGrace is how long an old process keeps serving after the proxy moved to the new one,
// so that a connection handed to it just before the move is still accepted (Kubernetes: the
// time endpoints take to drop a terminating pod, usually covered by a preStop sleep).
const endpointGrace = time.Second

func (w *appWorkload) Name() string { return w.spec.name }

func (w *appWorkload) URL() string {
	if w.addr == "" {
		return ""
	}
	return "http://" + w.addr
}

// current is the address the proxy hands new connections to.
func (w *appWorkload) current(context.Context) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.backend == "" {
		return nil
	}
	return []string{w.backend}
}

// start runs the first process and, for a workload with a port, the proxy in front of it.
func (w *appWorkload) start(ctx context.Context) error {
	if len(w.c.Ports) > 0 && w.spec.kind != "Job" {
		f, err := tcpproxy.Start(w.current)
		if err != nil {
			return err
		}
		w.front, w.addr = f, f.Addr()
		w.l.addFront(f)
	}
	p, backend, err := w.launch(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.p, w.backend = p, backend
	w.mu.Unlock()
	return nil
}

// launch resolves the environment now (as a new pod would) and runs a process; a Job is
// waited for until it exits, anything else until its readiness probe (or port) answers.
func (w *appWorkload) launch(ctx context.Context) (*proc.Process, string, error) {
	env, err := w.l.env(ctx, w.spec.namespace, w.c)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", w.spec.kind, w.spec.name, err)
	}
	env["DIAL_OVERRIDES"] = w.l.services.dialOverrides()
	if err := w.l.podAPIEnv(ctx, w.spec, env); err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", w.spec.kind, w.spec.name, err)
	}
	addr := ""
	if w.front != nil {
		port, err := proc.FreePort()
		if err != nil {
			return nil, "", err
		}
		addr = "127.0.0.1:" + strconv.Itoa(port)
		env["LISTEN_ADDR"] = addr
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	p, err := proc.Start(proc.Spec{
		Name: w.spec.namespace + "-" + w.spec.name, Path: w.l.opts.BookstoreBinary, Args: w.c.Args,
		Env: list, LogDir: w.l.artifacts, Redact: w.l.secrets, Dir: w.l.workDir,
	})
	if err != nil {
		return nil, "", err
	}
	w.l.workloads.Add(p)
	if w.spec.kind == "Job" {
		return p, "", proc.WaitFor(ctx, fmt.Sprintf("Job %s/%s to complete", w.spec.namespace, w.spec.name), 3*time.Minute, 200*time.Millisecond, nil,
			func(context.Context) (bool, error) {
				if p.Running() {
					return false, nil
				}
				if err := p.Result(); err != nil {
					return false, proc.Permanent(fmt.Errorf("%w (log: %s)", err, p.LogPath))
				}
				return true, nil
			})
	}
	if addr == "" {
		return p, "", nil
	}
	path := ""
	if rp := w.c.ReadinessProbe; rp != nil && rp.HTTPGet != nil {
		path = rp.HTTPGet.Path
	}
	err = proc.WaitFor(ctx, fmt.Sprintf("%s %s/%s to be ready on %s%s", w.spec.kind, w.spec.namespace, w.spec.name, addr, path), 2*time.Minute, 200*time.Millisecond, p,
		func(ctx context.Context) (bool, error) {
			if path == "" {
				return proc.PortInUseAddr(addr), nil
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		})
	if err != nil {
		_ = p.Stop(lab.StopGrace) // a pod that never got ready; the old one keeps serving
		return nil, "", err
	}
	return p, addr, nil
}

// Restart implements lab.Workload: a rollout with kubectl's restartedAt annotation.
func (w *appWorkload) Restart(ctx context.Context) error {
	return w.Rollout(ctx, map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().Format(time.RFC3339Nano)})
}

// Rollout implements lab.Workload: the annotations go on the pod template, a new process
// starts with the environment resolved now, the proxy moves to it once it is ready, and the
// old one stops (SIGTERM: it finishes the requests it has) after endpointGrace.
func (w *appWorkload) Rollout(ctx context.Context, annotations map[string]string) error {
	if w.spec.kind == "Job" {
		return fmt.Errorf("Job %s/%s cannot be rolled out", w.spec.namespace, w.spec.name)
	}
	if w.spec.pod.Annotations == nil {
		w.spec.pod.Annotations = map[string]string{}
	}
	for k, v := range annotations {
		w.spec.pod.Annotations[k] = v
	}
	p, backend, err := w.launch(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	old := w.p
	w.p, w.backend = p, backend
	w.mu.Unlock()
	if old == nil {
		return nil
	}
	if w.front != nil {
		select {
		case <-ctx.Done():
		case <-time.After(endpointGrace):
		}
	}
	return old.Stop(lab.StopGrace)
}

func (w *appWorkload) Stop(context.Context) error {
	w.mu.Lock()
	p := w.p
	w.backend = "" // the proxy (closed with the lab) refuses new connections
	w.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stop(lab.StopGrace)
}

// podAPIEnv gives a host-process workload what the kubelet gives a pod for reaching the
// Kubernetes API: KUBERNETES_SERVICE_HOST and _PORT (always, as the kubelet sets them), and,
// when the pod mounts its ServiceAccount token (automountServiceAccountToken: the pod's,
// else the ServiceAccount's, else true), a token of that ServiceAccount (TokenRequest, 1h)
// with the cluster CA and the namespace in a private directory named by SERVICEACCOUNT_DIR,
// the stand-in for /var/run/secrets/kubernetes.io/serviceaccount.
func (l *Lab) podAPIEnv(ctx context.Context, ps *podSpec, env map[string]string) error {
	u, err := url.Parse(l.cp.ServerURL())
	if err != nil {
		return fmt.Errorf("the API server address: %w", err)
	}
	env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"] = u.Hostname(), u.Port()
	sa := ps.pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	mount := ps.pod.Spec.AutomountServiceAccountToken
	if mount == nil {
		obj, err := l.kube.CoreV1().ServiceAccounts(ps.namespace).Get(ctx, sa, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("ServiceAccount %s/%s: %w", ps.namespace, sa, err)
		}
		mount = obj.AutomountServiceAccountToken
	}
	if mount != nil && !*mount {
		return nil
	}
	expiry := int64(3600)
	tr, err := l.kube.CoreV1().ServiceAccounts(ps.namespace).CreateToken(ctx, sa,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for ServiceAccount %s/%s: %w", ps.namespace, sa, err)
	}
	l.secrets.Add(tr.Status.Token)
	dir := filepath.Join(l.workDir, "serviceaccount", ps.namespace+"-"+ps.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": l.cp.CACert(), "namespace": []byte(ps.namespace)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	env["SERVICEACCOUNT_DIR"] = dir
	return nil
}
