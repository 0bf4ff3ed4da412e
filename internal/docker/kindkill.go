package docker

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/kind/pkg/cluster"
)

// KillInKind sends SIGKILL to the process of container containerID (a CRI id, with or without
// its "containerd://" prefix) from inside kind node nodeName of cluster clusterName, as a
// crash or the OOM killer would: no SIGTERM, no graceful shutdown. It runs containerd's
// `ctr tasks kill --signal SIGKILL` in the node container (kind's node commands: `docker exec`).
func KillInKind(ctx context.Context, clusterName, nodeName, containerID string) error {
	id := containerID
	if i := strings.Index(id, "://"); i >= 0 {
		id = id[i+3:]
	}
	if clusterName == "" || nodeName == "" || id == "" {
		return fmt.Errorf("kill a container in kind: cluster %q, node %q, container %q: none may be empty", clusterName, nodeName, containerID)
	}
	nodes, err := cluster.NewProvider(cluster.ProviderWithDocker()).ListInternalNodes(clusterName)
	if err != nil {
		return fmt.Errorf("kill container %.12s: list the nodes of kind cluster %q: %w", id, clusterName, err)
	}
	for _, n := range nodes {
		if n.String() != nodeName {
			continue
		}
		if err := n.CommandContext(ctx, "ctr", "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", id).Run(); err != nil {
			return fmt.Errorf("SIGKILL the task of container %.12s on node %s: %s", id, nodeName, nodeErr(err))
		}
		return nil
	}
	return fmt.Errorf("kill container %.12s: kind cluster %q has no node %q", id, clusterName, nodeName)
}
