package kind

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/secretslab/secretslab/internal/redact"
)

// logsDir is where exportLogs writes, under the artifacts dir.
const logsDir = "kind-logs"

// exportTimeout bounds the whole export; logLimit one container's log.
const (
	exportTimeout = 2 * time.Minute
	logLimit      = 16 << 20
)

// systemNamespaces are kind's own; on a kind cluster every other namespace (vault,
// external-secrets, bookstore, the tests' own) is exported. On someone else's cluster only
// the run's namespaces are (Lab.ours).
var systemNamespaces = map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true, "local-path-storage": true}

// secretKey names Secret data keys whose values are registered with the export's redactor
// on top of the lab's own values (a password the lab never saw, a ServiceAccount token).
// Keys like POSTGRES_USER are not: masking "bookstore" would shred the logs.
var secretKey = regexp.MustCompile(`(?i)pass|token|secret|dsn|key|cred|auth`)

// exportLogs writes the logs of every container of every pod (the previous instance's too,
// after a restart), and the events, of the lab's namespaces into ArtifactsDir()/kind-logs,
// all through a redactor holding the lab's secret values. It runs once, on Close, before
// the cluster is deleted, whether the run passed or failed.
func (l *Lab) exportLogs() {
	if l.exported || l.kube == nil {
		return
	}
	l.exported = true
	ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
	defer cancel()
	set := &redact.Set{}
	set.Add(l.secrets.Values()...)
	dir := filepath.Join(l.artifacts, logsDir)
	start := time.Now()
	s, err := exportLogs(ctx, l.kube, set, dir, l.exportsNamespace)
	if err != nil {
		l.say("exporting the cluster's logs to %s: %v", dir, err)
		return
	}
	l.say("cluster logs exported to %s in %s (redacted): %s", dir, time.Since(start).Round(time.Millisecond), s)
}

// exportSummary counts what exportLogs wrote.
type exportSummary struct {
	Namespaces, Pods, Logs, Events, Failed int
}

func (s exportSummary) String() string {
	return fmt.Sprintf("%d namespaces, %d pods, %d container logs, %d events, %d logs unavailable (see index.txt)", s.Namespaces, s.Pods, s.Logs, s.Events, s.Failed)
}

// exportLogs writes into dir, for each namespace NS but kind's system ones:
//
//	NS/POD/CONTAINER.log           the container's log (at most 16 MiB, with timestamps)
//	NS/POD/CONTAINER.previous.log  the previous instance's, when the container restarted
//	NS/pods.txt                    each pod's phase, node, and containers' state and restarts
//	NS/events.txt                  the namespace's events, oldest first
//	index.txt                      what was written, and which logs could not be read
//
// Every byte goes through set, to which exportLogs first adds the values of the
// secret-looking keys (secretKey) of the namespaces' Secrets. Only errors that stop the
// whole export are returned; a log that cannot be read is listed in index.txt.
func exportLogs(ctx context.Context, kube kubernetes.Interface, set *redact.Set, dir string, export func(ns string) bool) (exportSummary, error) {
	var sum exportSummary
	namespaces, err := exportNamespaces(ctx, kube, export)
	if err != nil {
		return sum, err
	}
	for _, ns := range namespaces {
		registerSecrets(ctx, kube, ns, set)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sum, err
	}
	var index []string
	note := func(format string, args ...any) { index = append(index, fmt.Sprintf(format, args...)) }
	for _, ns := range namespaces {
		sum.Namespaces++
		nsDir := filepath.Join(dir, ns)
		if err := os.MkdirAll(nsDir, 0o755); err != nil {
			return sum, err
		}
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			note("%s: pods not listed: %v", ns, err)
		} else {
			sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
			var table strings.Builder
			for i := range pods.Items {
				p := &pods.Items[i]
				sum.Pods++
				describePod(&table, p)
				for _, c := range containersOf(p) {
					for _, previous := range []bool{false, true} {
						if previous && !c.restarted {
							continue
						}
						name := c.name + ".log"
						if previous {
							name = c.name + ".previous.log"
						}
						path := filepath.Join(nsDir, p.Name, name)
						if err := writeLog(ctx, kube, p, c.name, previous, set, path); err != nil {
							sum.Failed++
							note("%s/%s/%s: not read: %v", ns, p.Name, name, err)
							continue
						}
						sum.Logs++
						note("%s/%s/%s", ns, p.Name, name)
					}
				}
			}
			if err := writeRedacted(set, filepath.Join(nsDir, "pods.txt"), strings.NewReader(table.String())); err != nil {
				return sum, err
			}
		}
		events, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			note("%s: events not listed: %v", ns, err)
			continue
		}
		sum.Events += len(events.Items)
		if err := writeRedacted(set, filepath.Join(nsDir, "events.txt"), strings.NewReader(formatEvents(events.Items))); err != nil {
			return sum, err
		}
		note("%s/events.txt (%d events)", ns, len(events.Items))
	}
	head := fmt.Sprintf("cluster logs exported %s, every line redacted: %s\n\n", time.Now().UTC().Format(time.RFC3339), sum)
	return sum, writeRedacted(set, filepath.Join(dir, "index.txt"), strings.NewReader(head+strings.Join(index, "\n")+"\n"))
}

// exportNamespaces lists the namespaces to export, sorted.
func exportNamespaces(ctx context.Context, kube kubernetes.Interface, export func(ns string) bool) ([]string, error) {
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []string
	for _, ns := range list.Items {
		if export(ns.Name) {
			out = append(out, ns.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// registerSecrets adds the values of ns's Secrets under secret-looking keys to set (Helm's
// release records excepted: they hold the charts, not secrets of ours).
func registerSecrets(ctx context.Context, kube kubernetes.Interface, ns string, set *redact.Set) {
	secrets, err := kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, s := range secrets.Items {
		if s.Type == "helm.sh/release.v1" {
			continue
		}
		for k, v := range s.Data {
			if secretKey.MatchString(k) {
				set.Add(string(v))
			}
		}
	}
}

type container struct {
	name      string
	restarted bool // a previous instance's log may exist
}

// containersOf lists a pod's init, app and ephemeral containers.
func containersOf(p *corev1.Pod) []container {
	restarted := map[string]bool{}
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for _, st := range statuses {
			restarted[st.Name] = st.RestartCount > 0 || st.LastTerminationState.Terminated != nil
		}
	}
	var out []container
	for _, c := range p.Spec.InitContainers {
		out = append(out, container{c.Name, restarted[c.Name]})
	}
	for _, c := range p.Spec.Containers {
		out = append(out, container{c.Name, restarted[c.Name]})
	}
	for _, c := range p.Spec.EphemeralContainers {
		out = append(out, container{c.Name, restarted[c.Name]})
	}
	return out
}

// writeLog streams one container's log through set into path.
func writeLog(ctx context.Context, kube kubernetes.Interface, p *corev1.Pod, c string, previous bool, set *redact.Set, path string) error {
	limit := int64(logLimit)
	stream, err := kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{
		Container: c, Previous: previous, Timestamps: true, LimitBytes: &limit,
	}).Stream(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeRedacted(set, path, stream)
}

// writeRedacted copies r through set into path.
func writeRedacted(set *redact.Set, path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	w := set.Writer(f)
	_, err = io.Copy(w, r)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// describePod writes one line per pod and one per container, as `kubectl get pods` and
// the state part of `kubectl describe pod` would show them.
func describePod(b *strings.Builder, p *corev1.Pod) {
	fmt.Fprintf(b, "%s phase=%s node=%s", p.Name, p.Status.Phase, p.Spec.NodeName)
	if p.Status.Reason != "" {
		fmt.Fprintf(b, " reason=%s", p.Status.Reason)
	}
	b.WriteString("\n")
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, st := range statuses {
			fmt.Fprintf(b, "  %s image=%s ready=%t restarts=%d state=%s", st.Name, st.Image, st.Ready, st.RestartCount, containerState(st.State))
			if t := st.LastTerminationState.Terminated; t != nil {
				fmt.Fprintf(b, " last=%s", containerState(st.LastTerminationState))
			}
			b.WriteString("\n")
		}
	}
}

func containerState(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.UTC().Format(time.RFC3339)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting (%s: %s)", s.Waiting.Reason, s.Waiting.Message)
	case s.Terminated != nil:
		return fmt.Sprintf("terminated (exit %d, %s: %s)", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message)
	}
	return "unknown"
}

// formatEvents writes events oldest first, one a line, as `kubectl get events` shows them.
func formatEvents(events []corev1.Event) string {
	when := func(e *corev1.Event) time.Time {
		switch {
		case !e.LastTimestamp.IsZero():
			return e.LastTimestamp.Time
		case !e.EventTime.IsZero():
			return e.EventTime.Time
		case !e.FirstTimestamp.IsZero():
			return e.FirstTimestamp.Time
		}
		return e.CreationTimestamp.Time
	}
	sort.SliceStable(events, func(i, j int) bool { return when(&events[i]).Before(when(&events[j])) })
	var b strings.Builder
	for i := range events {
		e := &events[i]
		count := ""
		if e.Count > 1 {
			count = fmt.Sprintf(" (x%d)", e.Count)
		}
		fmt.Fprintf(&b, "%s %s %s %s/%s%s: %s\n", when(e).UTC().Format(time.RFC3339), e.Type, e.Reason,
			strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, count, strings.TrimSpace(e.Message))
	}
	return b.String()
}
