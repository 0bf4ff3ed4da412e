package embedded

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/lab"
)

// secretKey matches Secret keys whose values are masked in workload logs.
var secretKey = regexp.MustCompile(`(?i)pass|secret|token|dsn|key|cred`)

// RunWorkload implements lab.Lab: the workload runs as a host process whose environment is
// the Secret's data (as envFrom would give a container), plus spec.Env, plus PORT when it
// serves. The Secret is read once, at start, as a container reads its env.
func (l *Lab) RunWorkload(ctx context.Context, spec lab.WorkloadSpec) (lab.Workload, error) {
	if len(spec.Command) == 0 {
		return nil, fmt.Errorf("workload %s: no command", spec.Name)
	}
	sec, err := l.kube.CoreV1().Secrets(spec.Namespace).Get(ctx, spec.Secret, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("workload %s: read Secret %s/%s: %w", spec.Name, spec.Namespace, spec.Secret, err)
	}
	var env []string
	keys := make([]string, 0, len(sec.Data))
	for k := range sec.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+string(sec.Data[k]))
		if secretKey.MatchString(k) {
			l.secrets.Add(string(sec.Data[k]))
		}
	}
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	w := &workload{}
	if spec.Port != 0 {
		port, err := proc.FreePort()
		if err != nil {
			return nil, err
		}
		w.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		env = append(env, "PORT="+strconv.Itoa(port), "LISTEN_ADDR="+w.addr)
	}
	w.p, err = proc.Start(proc.Spec{
		Name: spec.Namespace + "-" + spec.Name, Path: spec.Command[0], Args: spec.Command[1:],
		Env: env, LogDir: l.artifacts, Redact: l.secrets, Dir: l.workDir,
	})
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", spec.Name, err)
	}
	l.workloads.Add(w.p)
	if w.addr != "" {
		err := proc.WaitFor(ctx, fmt.Sprintf("workload %s to listen on %s", spec.Name, w.addr), time.Minute, 100*time.Millisecond, w.p,
			func(context.Context) (bool, error) { return proc.PortInUseAddr(w.addr), nil })
		if err != nil {
			_ = w.p.Stop(lab.StopGrace)
			return nil, err
		}
	}
	return w, nil
}

type workload struct {
	p    *proc.Process
	addr string
}

func (w *workload) URL() string {
	if w.addr == "" {
		return ""
	}
	return "http://" + w.addr
}

func (w *workload) Wait(ctx context.Context) error {
	select {
	case <-w.p.Done():
		if err := w.p.Result(); err != nil {
			return fmt.Errorf("%w (log: %s)", err, w.p.LogPath)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for workload %s: %w", w.p.Name, ctx.Err())
	}
}

func (w *workload) Stop(context.Context) error { return w.p.Stop(lab.StopGrace) }
