package kind

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/portforward"
	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/lab"
)

const rolloutTimeout = 4 * time.Minute

// Deploy implements lab.Lab: apply the manifest and wait as `kubectl rollout status` (or
// `kubectl wait --for=condition=complete` for a Job) would.
func (l *Lab) Deploy(ctx context.Context, manifest []byte) (lab.Workload, error) {
	objs, err := kube.Decode(manifest)
	if err != nil {
		return nil, err
	}
	if err := l.k.Apply(ctx, objs...); err != nil {
		return nil, err
	}
	var obj *unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "StatefulSet", "Job":
			obj = o
		}
	}
	if obj == nil {
		return nil, fmt.Errorf("manifest holds no Deployment, StatefulSet or Job")
	}
	w := &workload{l: l, kind: obj.GetKind(), name: obj.GetName(), ns: obj.GetNamespace()}
	if err := w.waitReady(ctx); err != nil {
		return nil, err
	}
	if strings.Contains(podImage(obj), "postgres:") {
		if err := l.rememberPostgres(ctx, obj); err != nil {
			return nil, err
		}
	}
	if port := containerPort(obj); port != 0 && w.kind == "Deployment" {
		w.port = port
		if err := w.forward(ctx); err != nil {
			return nil, err
		}
	}
	l.workloads[w.name] = w
	return w, nil
}

type workload struct {
	l              *Lab
	kind, name, ns string
	port           int
	front          *serviceFront
}

func (w *workload) Name() string { return w.name }

func (w *workload) URL() string {
	if w.front == nil {
		return ""
	}
	return "http://" + w.front.Addr()
}

func (w *workload) forward(ctx context.Context) error {
	if w.front != nil {
		return nil
	}
	f, err := openServiceFront(w.l, w.ns, w.name, w.port)
	if err != nil {
		return fmt.Errorf("the harness's way into Service %s/%s: %w", w.ns, w.name, err)
	}
	w.front = f
	w.l.fronts = append(w.l.fronts, f)
	return nil
}

// Restart is `kubectl rollout restart`: a new pod template annotation, then the rollout.
func (w *workload) Restart(ctx context.Context) error {
	return w.Rollout(ctx, map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().Format(time.RFC3339Nano)})
}

// Rollout implements lab.Workload: the pod template's annotations patched, then the rollout
// waited for as `kubectl rollout status` does (the URL follows the ready pods meanwhile).
func (w *workload) Rollout(ctx context.Context, annotations map[string]string) error {
	body, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": annotations}}}})
	if err != nil {
		return err
	}
	patch := string(body)
	switch w.kind {
	case "Deployment":
		_, err = w.l.kube.AppsV1().Deployments(w.ns).Patch(ctx, w.name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	case "StatefulSet":
		_, err = w.l.kube.AppsV1().StatefulSets(w.ns).Patch(ctx, w.name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	default:
		return fmt.Errorf("%s %s cannot be restarted", w.kind, w.name)
	}
	if err != nil {
		return err
	}
	return w.waitReady(ctx)
}

func (w *workload) Stop(ctx context.Context) error {
	if w.front != nil {
		w.front.Close()
	}
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	var err error
	switch w.kind {
	case "Deployment":
		err = w.l.kube.AppsV1().Deployments(w.ns).Delete(ctx, w.name, opts)
	case "StatefulSet":
		err = w.l.kube.AppsV1().StatefulSets(w.ns).Delete(ctx, w.name, opts)
	case "Job":
		err = w.l.kube.BatchV1().Jobs(w.ns).Delete(ctx, w.name, opts)
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (w *workload) waitReady(ctx context.Context) error {
	what := fmt.Sprintf("%s %s/%s to be ready", w.kind, w.ns, w.name)
	if w.kind == "Job" {
		what = fmt.Sprintf("Job %s/%s to complete", w.ns, w.name)
	}
	return proc.WaitFor(ctx, what, rolloutTimeout, time.Second, nil, func(ctx context.Context) (bool, error) {
		switch w.kind {
		case "Deployment":
			d, err := w.l.kube.AppsV1().Deployments(w.ns).Get(ctx, w.name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return deploymentDone(d), fmt.Errorf("%d/%d updated and available", d.Status.UpdatedReplicas, replicas(d.Spec.Replicas))
		case "StatefulSet":
			s, err := w.l.kube.AppsV1().StatefulSets(w.ns).Get(ctx, w.name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			done := s.Status.ObservedGeneration >= s.Generation && s.Status.ReadyReplicas == replicas(s.Spec.Replicas) &&
				s.Status.UpdatedReplicas == replicas(s.Spec.Replicas)
			return done, fmt.Errorf("%d/%d ready", s.Status.ReadyReplicas, replicas(s.Spec.Replicas))
		default:
			j, err := w.l.kube.BatchV1().Jobs(w.ns).Get(ctx, w.name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
					return true, nil
				}
				if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
					return false, proc.Permanent(fmt.Errorf("Job %s failed: %s", w.name, c.Message))
				}
			}
			return false, fmt.Errorf("%d active, %d failed", j.Status.Active, j.Status.Failed)
		}
	})
}

func deploymentDone(d *appsv1.Deployment) bool {
	want := replicas(d.Spec.Replicas)
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.AvailableReplicas == want && d.Status.Replicas == want
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func podSpec(obj *unstructured.Unstructured) map[string]any {
	spec, _, _ := unstructured.NestedMap(obj.Object, "spec", "template", "spec")
	return spec
}

func firstContainer(obj *unstructured.Unstructured) map[string]any {
	cs, _ := podSpec(obj)["containers"].([]any)
	if len(cs) == 0 {
		return nil
	}
	c, _ := cs[0].(map[string]any)
	return c
}

func podImage(obj *unstructured.Unstructured) string {
	img, _ := firstContainer(obj)["image"].(string)
	return img
}

func containerPort(obj *unstructured.Unstructured) int {
	ports, _ := firstContainer(obj)["ports"].([]any)
	if len(ports) == 0 {
		return 0
	}
	p, _ := ports[0].(map[string]any)
	switch v := p["containerPort"].(type) {
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return 0
}

// rememberPostgres reads the superuser the postgres image was given (its env contract:
// POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, here from the Secret in envFrom).
func (l *Lab) rememberPostgres(ctx context.Context, obj *unstructured.Unstructured) error {
	env := map[string]string{}
	c := firstContainer(obj)
	from, _ := c["envFrom"].([]any)
	for _, f := range from {
		m, _ := f.(map[string]any)
		ref, _ := m["secretRef"].(map[string]any)
		name, _ := ref["name"].(string)
		if name == "" {
			continue
		}
		s, err := l.kube.CoreV1().Secrets(obj.GetNamespace()).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for k, v := range s.Data {
			env[k] = string(v)
		}
	}
	user, pass, db := env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
	if user == "" {
		user = "postgres"
	}
	if db == "" {
		db = user
	}
	l.secrets.Add(pass)
	l.pgAdmin = [3]string{user, pass, db}
	f, err := portforward.Open(ctx, l.cfg, obj.GetNamespace(), "svc/"+obj.GetName(), 5432)
	if err != nil {
		return fmt.Errorf("port-forward to postgres: %w", err)
	}
	l.pgForward = f
	l.forwards = append(l.forwards, f)
	return nil
}

// PostgresDSN implements lab.Lab, through the harness's port-forward to the bookstore's Postgres.
func (l *Lab) PostgresDSN(user, password, database string) string {
	if l.pgForward == nil {
		return ""
	}
	return (&url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: l.pgForward.Addr(), Path: "/" + database, RawQuery: "sslmode=disable"}).String()
}

// PostgresAdminDSN implements lab.Lab: on kind the Postgres is the bookstore's StatefulSet,
// so there is none before the baseline scenario deploys it ("").
func (l *Lab) PostgresAdminDSN() string {
	return l.PostgresDSN(l.pgAdmin[0], l.pgAdmin[1], l.pgAdmin[2])
}

// Versions implements lab.Lab: the server's version, Vault's own, the ESO image's tag, the
// chart versions of the releases, and Postgres's server_version once it runs.
func (l *Lab) Versions(ctx context.Context) (lab.Versions, error) {
	v := lab.Versions{Set: l.opts.Versions.Name}
	var errs []string
	if sv, err := l.kube.Discovery().ServerVersion(); err == nil {
		v.Kubernetes = sv.GitVersion
	} else {
		errs = append(errs, err.Error())
	}
	if c := l.Vault(); c != nil {
		if h, err := c.Sys().HealthWithContext(ctx); err == nil {
			v.Vault = h.Version
		} else {
			errs = append(errs, err.Error())
		}
	}
	if l.vaultRelease != nil {
		v.VaultChart = l.vaultRelease.ChartVersion
	}
	if l.esoRelease != nil {
		v.ESOChart = l.esoRelease.ChartVersion
	}
	if d, err := l.kube.AppsV1().Deployments(l.esoNS).Get(ctx, "external-secrets", metav1.GetOptions{}); err == nil && len(d.Spec.Template.Spec.Containers) > 0 {
		img := d.Spec.Template.Spec.Containers[0].Image
		v.ESO = img[strings.LastIndex(img, ":")+1:]
	} else if err != nil {
		errs = append(errs, err.Error())
	}
	if dsn := l.PostgresAdminDSN(); dsn != "" {
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			_ = conn.QueryRow(ctx, "show server_version").Scan(&v.Postgres)
			conn.Close(ctx)
		}
	}
	if len(errs) > 0 {
		return v, fmt.Errorf("versions: %s", strings.Join(errs, "; "))
	}
	return v, nil
}
