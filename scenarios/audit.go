package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretslab/secretslab/fixtures"
	"github.com/secretslab/secretslab/internal/kube"
	"github.com/secretslab/secretslab/internal/redact"
	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/lab"
)

// auditDevice is the path the scenario's file audit device is enabled at.
const auditDevice = "secretslab-file"

// auditArtifacts is where the teardown copies each node's audit log, under ArtifactsDir, so
// that the secret canary searches it too.
const auditArtifacts = "vault-audit"

// forcedSyncs is how many forced ExternalSecret syncs the audit-lines figure averages.
const forcedSyncs = 3

// audit: chapter 15.05's "audit every Vault read": a file audit device on every node; a
// cross-tenant read shows in it with the reading tenant's identity and "permission denied";
// values appear HMACed, never in plaintext; and how many audit lines one ExternalSecret sync
// writes. The scenario onboards its own two tenants, so it runs alone.
func audit() Scenario {
	names := []string{"acme-books", "blue-pages"}
	var onboarded map[string]fixtures.Platform
	var values map[string]string
	file := ""
	return Scenario{Name: "audit", Title: "ch15.05 audit: a file audit device on every node records the cross-tenant read, values HMACed", Needs: []string{"vault-config"}, Checks: []Check{
		{"device-enabled", "a file audit device is enabled (its config replicates to every node)", func(ctx context.Context, e *Env, r *Result) error {
			file = e.Lab.VaultAuditFile()
			// a reused kind cluster may keep an earlier run's file: start from an empty one
			for _, n := range e.Lab.VaultNodes() {
				if err := n.RemoveFile(ctx, file); err != nil {
					return err
				}
			}
			v := e.Lab.Vault()
			if err := v.Sys().EnableAuditWithOptionsWithContext(ctx, auditDevice, &vault.EnableAuditOptions{
				Type: "file", Description: "secretslab audit scenario", Options: map[string]string{"file_path": file},
			}); err != nil {
				return fmt.Errorf("enable audit device %s (file_path %s): %w", auditDevice, file, err)
			}
			e.Defer("disable audit device "+auditDevice+", copy each node's audit log to the artifacts, remove it", func(ctx context.Context) error {
				return e.removeAuditDevice(ctx, file)
			})
			list, err := v.Sys().ListAuditWithContext(ctx)
			if err != nil {
				return err
			}
			d, ok := list[auditDevice+"/"]
			if !ok || d.Type != "file" || d.Options["file_path"] != file {
				return fmt.Errorf("sys/audit does not list the file device %s at %s: %v", auditDevice, file, list)
			}
			r.Note("file audit device %s/ writing to %s on %d node(s)", auditDevice, file, len(e.Lab.VaultNodes()))
			return nil
		}},
		{"every-node-writes", "each node, once active, writes audit entries to its own file (HA: each node is made active in turn)", func(ctx context.Context, e *Env, r *Result) error {
			nodes := e.Lab.VaultNodes()
			var wrote []string
			for _, n := range nodes {
				took, err := e.makeActive(ctx, n)
				if err != nil {
					return err
				}
				marker := "secret/data/secretslab-audit-probe/" + n.Name() + "-" + fmt.Sprint(time.Now().UnixNano())
				if _, err := n.Client().Logical().ReadWithContext(ctx, marker); err != nil {
					return fmt.Errorf("%s: read %s: %w", n.Name(), marker, err)
				}
				if st := vaultops.Observe(ctx, []*vault.Client{n.Client()})[0]; !st.Active() {
					return fmt.Errorf("%s stopped being active during its probe (%s): try again", n.Name(), st)
				}
				log, err := n.ReadFile(ctx, file)
				if err != nil {
					return err
				}
				if !bytes.Contains(log, []byte(`"path":"`+marker+`"`)) {
					return fmt.Errorf("%s, active, served %s but its audit file %s (%d bytes) has no entry for it", n.Name(), marker, file, len(log))
				}
				wrote = append(wrote, fmt.Sprintf("%s (made active with %s)", n.Name(), took))
			}
			r.Note("audit entries written by %s", strings.Join(wrote, ", "))
			if e.Lab.Backend() == lab.BackendEmbedded && len(nodes) > 1 {
				r.Note("embedded: the nodes share one file; each probe was served while its node was active, and only the active node writes audit entries")
			}
			return nil
		}},
		{"tenants-onboarded", "the platform admin onboards " + names[0] + " and " + names[1] + " (as tenants.onboarded does)", func(ctx context.Context, e *Env, r *Result) error {
			var err error
			onboarded, values, err = e.onboardTenants(ctx, names...)
			return err
		}},
		{"cross-tenant-audited", "tenant " + names[0] + "'s read of " + names[1] + "'s path shows in the audit log with " + names[0] + "'s identity (role, ServiceAccount, namespace), the path and permission denied", func(ctx context.Context, e *Env, r *Result) error {
			a, b := onboarded[names[0]], onboarded[names[1]]
			mount, _, _, err := kvTarget()
			if err != nil {
				return err
			}
			start := time.Now()
			c, _, err := e.loginAs(ctx, tenantNS(a), tenantSA(a), a.TenantRole.Name, audiences(a))
			if err != nil {
				return err
			}
			_, err = c.KVv2(mount).Get(ctx, b.KVPath)
			if err == nil {
				return fmt.Errorf("%s read %s's value", names[0], names[1])
			}
			if !isPermissionDenied(err) {
				return fmt.Errorf("%s reading %s's path: want Vault's 403, got %s", names[0], names[1], vaultReason(e, err))
			}
			path := mount + "/data/" + b.KVPath
			entries, err := e.auditEntries(ctx, file)
			if err != nil {
				return err
			}
			var samePath int
			var found *auditEntry
			for i, en := range entries {
				if en.Request == nil || en.Request.Path != path || en.Time.Before(start.Add(-5*time.Second)) {
					continue
				}
				samePath++
				m := en.Auth.Metadata
				if strings.Contains(en.Error, "permission denied") && m["role"] == a.TenantRole.Name &&
					m["service_account_name"] == tenantSA(a) && m["service_account_namespace"] == tenantNS(a) {
					found = &entries[i]
					break
				}
			}
			r.Claim("C15-07", found != nil, "the audit log searched for the cross-tenant read with the reading tenant's identity and permission denied")
			if found == nil {
				return fmt.Errorf("no audit entry for %s with %s's identity and permission denied (%d entries for the path since the attempt, %d entries in all)", path, names[0], samePath, len(entries))
			}
			var keys []string
			for k := range found.Auth.Metadata {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			r.Note("%s entry: %s %s, display_name %s, role %s, ServiceAccount %s/%s, policies %v, error %q; auth metadata keys %v",
				found.Type, found.Request.Operation, path, found.Auth.DisplayName, found.Auth.Metadata["role"],
				found.Auth.Metadata["service_account_namespace"], found.Auth.Metadata["service_account_name"], found.Auth.Policies, strings.TrimSpace(found.Error), keys)
			return nil
		}},
		{"lines-per-sync", "audit lines one ExternalSecret sync writes (tenant " + names[0] + "'s store and ExternalSecret, forced syncs)", func(ctx context.Context, e *Env, r *Result) error {
			return e.auditLinesPerSync(ctx, r, onboarded[names[0]], file)
		}},
		{"values-hmaced", "the audit log holds no secret value in plaintext (every value the lab knows, in every encoded form) and carries the tenant's value HMACed", func(ctx context.Context, e *Env, r *Result) error {
			a := onboarded[names[0]]
			var logs [][]byte
			var size int
			seen := map[[32]byte]bool{} // a file the nodes share is searched once
			for _, n := range e.Lab.VaultNodes() {
				b, err := n.ReadFile(ctx, file)
				if err != nil {
					return err
				}
				if sum := sha256.Sum256(b); !seen[sum] {
					seen[sum] = true
					logs, size = append(logs, b), size+len(b)
				}
			}
			all := bytes.Join(logs, []byte("\n"))
			// positive control: Vault's own HMAC of the tenant's value is in the log (the synced
			// read's response), so the log did record the value, hashed
			h, err := e.Lab.Vault().Logical().WriteWithContext(ctx, "sys/audit-hash/"+auditDevice, map[string]any{"input": values[names[0]]})
			if err != nil {
				return fmt.Errorf("sys/audit-hash/%s: %w", auditDevice, err)
			}
			hash, _ := h.Data["hash"].(string)
			if !strings.HasPrefix(hash, "hmac-") {
				return fmt.Errorf("sys/audit-hash/%s returned no hmac", auditDevice)
			}
			hashed := bytes.Count(all, []byte(hash))
			if hashed == 0 {
				return fmt.Errorf("the HMAC of %s's value is nowhere in the audit log (%d bytes): the log did not record the synced read", a.TenantRole.Name, size)
			}
			vals := e.Lab.Secrets().Values()
			for _, v := range values {
				vals = append(vals, v)
			}
			var hits []string
			forms := 0
			for _, v := range vals {
				for _, f := range redact.Forms(v) {
					forms++
					if bytes.Contains(all, []byte(f.Text)) {
						hits = append(hits, f.Name+" of "+redact.Fingerprint([]byte(v)))
					}
				}
			}
			if len(hits) > 0 {
				return fmt.Errorf("the audit log holds %d secret value form(s) in plaintext: %v", len(hits), hits)
			}
			r.Figure("audit-bytes", float64(size))
			r.Note("%d bytes of audit log searched for %d values in %d forms: none found; %s's value appears %d time(s) as its HMAC", size, len(vals), forms, names[0], hashed)
			return nil
		}},
	}}
}

// auditEntry is the part of a Vault audit log line the scenario reads.
type auditEntry struct {
	Time  time.Time `json:"time"`
	Type  string    `json:"type"`
	Error string    `json:"error"`
	Auth  struct {
		DisplayName string            `json:"display_name"`
		Policies    []string          `json:"policies"`
		Metadata    map[string]string `json:"metadata"`
	} `json:"auth"`
	Request *struct {
		Operation string `json:"operation"`
		Path      string `json:"path"`
	} `json:"request"`
}

// auditEntries reads and parses every node's audit file (a file the nodes share is read
// once).
func (e *Env) auditEntries(ctx context.Context, file string) ([]auditEntry, error) {
	var out []auditEntry
	seen := map[[32]byte]bool{}
	for _, n := range e.Lab.VaultNodes() {
		b, err := n.ReadFile(ctx, file)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		if seen[sum] {
			continue
		}
		seen[sum] = true
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		for sc.Scan() {
			var en auditEntry
			if err := json.Unmarshal(sc.Bytes(), &en); err != nil {
				return nil, fmt.Errorf("%s: an audit line is not JSON: %w", n.Name(), err)
			}
			out = append(out, en)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name(), err)
		}
	}
	return out, nil
}

// makeActive makes n the active node: it steps the active node down (Raft hands leadership
// to the most up-to-date follower, so a step-down can keep missing n), and after
// stepDownTries step-downs that missed it kills the active node, which starts a randomised
// election, and brings it back (restart, unseal, 3 healthy voters); where Disruptive is not
// met it only steps down, more often. It returns what it took.
func (e *Env) makeActive(ctx context.Context, n lab.VaultNode) (string, error) {
	stepDownTries := 2
	mayKill, _ := Disruptive.met(e)
	if !mayKill { // someone else's cluster: step-downs only
		stepDownTries = 8
	}
	nodes := e.Lab.VaultNodes()
	clients := clientsOf(nodes)
	budget := 2 * e.Timeouts.Rejoin
	deadline := time.Now().Add(budget)
	stepDowns, kills := 0, 0
	took := func() string { return fmt.Sprintf("%d step-down(s), %d kill(s)", stepDowns, kills) }
	for {
		i, err := vaultops.WaitOneActive(ctx, clients, e.Timeouts.Failover)
		if err != nil {
			return took(), err
		}
		if nodes[i] == n {
			return took(), nil
		}
		if time.Now().After(deadline) {
			return took(), fmt.Errorf("%s did not become active within %s (%s; %s is active)", n.Name(), budget, took(), nodes[i].Name())
		}
		active := nodes[i]
		if stepDowns < stepDownTries {
			stepDowns++
			if err := active.Client().Sys().StepDownWithContext(ctx); err != nil {
				return took(), fmt.Errorf("step down %s: %w", active.Name(), err)
			}
			// the stepped-down node is not active any more before the next look
			if err := waitFor(ctx, active.Name()+" to leave the active role after its step-down", e.Timeouts.Failover, func(ctx context.Context) (bool, error) {
				return !vaultops.Observe(ctx, []*vault.Client{active.Client()})[0].Active(), nil
			}); err != nil {
				return took(), err
			}
			continue
		}
		if !mayKill {
			return took(), fmt.Errorf("%s did not become active after %s, and killing the active node needs --allow-disruptive here", n.Name(), took())
		}
		kills++
		if err := active.Kill(ctx); err != nil {
			return took(), err
		}
		e.Defer("bring "+active.Name()+" back if it is still down: restart, unseal, 3 healthy voters", func(ctx context.Context) error {
			return e.restoreVaultNodes(ctx, active)
		})
		var others []*vault.Client
		for _, o := range nodes {
			if o != active {
				others = append(others, o.Client())
			}
		}
		if _, err := vaultops.WaitOneActive(ctx, others, e.Timeouts.Failover); err != nil {
			return took(), fmt.Errorf("after killing %s: %w", active.Name(), err)
		}
		if err := e.restoreVaultNodes(ctx, active); err != nil {
			return took(), err
		}
	}
}

// auditLines counts the lines of node n's audit file.
func auditLines(ctx context.Context, n lab.VaultNode, file string) (int, []byte, error) {
	b, err := n.ReadFile(ctx, file)
	return bytes.Count(b, []byte("\n")), b, err
}

// auditLinesPerSync applies tenant t's SecretStore and ExternalSecret, forces forcedSyncs
// syncs and records the audit lines each added on the active node (which writes them all).
func (e *Env) auditLinesPerSync(ctx context.Context, r *Result, t fixtures.Platform, file string) error {
	x := &tenantsESO{}
	if err := x.audiencesField(ctx, e, &Result{}); err != nil {
		return err
	}
	s, err := e.tenantStore(ctx, t, "SecretStore", tenantStoreName, t.TenantRole.Name, x.storeAudiences(t))
	if err != nil {
		return err
	}
	es, err := e.tenantExternalSecret(ctx, tenantNS(t), tenantESName, "SecretStore", tenantStoreName, t.KVPath)
	if err != nil {
		return err
	}
	for _, o := range []*unstructured.Unstructured{s, es} { // the store Ready before the ExternalSecret
		if err := e.applyOwned(ctx, o); err != nil {
			return err
		}
		if _, err := e.Kube.WaitCondition(ctx, o, "Ready", e.Timeouts.Sync); err != nil {
			return err
		}
	}
	nodes := e.Lab.VaultNodes()
	i, err := vaultops.WaitOneActive(ctx, clientsOf(nodes), e.Timeouts.Failover)
	if err != nil {
		return err
	}
	active := nodes[i]
	var counts []int
	var last []byte
	for k := 0; k < forcedSyncs; k++ {
		before, _, err := auditLines(ctx, active, file)
		if err != nil {
			return err
		}
		if err := e.forceSync(ctx, es); err != nil {
			return err
		}
		// the sync's lines are written before Vault answers; ESO may revoke its token after
		// the status update: wait until the count holds still
		after, prev := before, -1
		var b []byte
		if err := waitFor(ctx, "the audit log of "+active.Name()+" to stop growing after the sync", e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
			n, content, err := auditLines(ctx, active, file)
			if err != nil {
				return false, err
			}
			stable := n == prev && n > before
			prev, after, b = n, n, content
			if !stable {
				time.Sleep(750 * time.Millisecond)
			}
			return stable, nil
		}); err != nil {
			return err
		}
		counts = append(counts, after-before)
		last = lastLines(b, after-before)
	}
	if j, err := vaultops.WaitOneActive(ctx, clientsOf(nodes), e.Timeouts.Failover); err != nil || nodes[j] != active {
		return fmt.Errorf("the active node changed while counting (was %s): %v", active.Name(), err)
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	r.Figure("audit-lines-per-sync", float64(total)/float64(len(counts)))
	r.Note("lines added per forced sync %v on %s; the last sync's lines: %s", counts, active.Name(), describeAuditLines(last))
	return nil
}

// forceSync annotates es with force-sync and waits until ESO has synced it again (its
// status.syncedResourceVersion changes and it is Ready).
func (e *Env) forceSync(ctx context.Context, es *unstructured.Unstructured) error {
	cur, err := e.Kube.Get(ctx, es)
	if err != nil {
		return err
	}
	was, _, _ := unstructured.NestedString(cur.Object, "status", "syncedResourceVersion")
	if err := e.requestSync(ctx, es); err != nil {
		return err
	}
	return waitFor(ctx, "ExternalSecret "+kube.Name(es)+" to sync again after force-sync", e.Timeouts.Sync, func(ctx context.Context) (bool, error) {
		cur, err := e.Kube.Get(ctx, es)
		if err != nil {
			return false, err
		}
		now, _, _ := unstructured.NestedString(cur.Object, "status", "syncedResourceVersion")
		c, _ := conditionOf(cur, "Ready")
		return now != was && c.Status == "True", nil
	})
}

// lastLines is the last n lines of b.
func lastLines(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if n > len(lines) {
		n = len(lines)
	}
	return bytes.Join(lines[len(lines)-n:], []byte("\n"))
}

// describeAuditLines summarises audit lines as "type operation path" (paths and operations
// only: no value is shown, and values are HMACed anyway).
func describeAuditLines(b []byte) string {
	var parts []string
	for _, l := range bytes.Split(b, []byte("\n")) {
		var en auditEntry
		if json.Unmarshal(l, &en) != nil || en.Request == nil {
			parts = append(parts, "?")
			continue
		}
		parts = append(parts, en.Type+" "+en.Request.Operation+" "+en.Request.Path)
	}
	return strings.Join(parts, "; ")
}

// removeAuditDevice disables the scenario's audit device, copies each node's audit file into
// ArtifactsDir/vault-audit (one copy of a file the nodes share) so the secret canary searches
// it, and removes the file from the node.
func (e *Env) removeAuditDevice(ctx context.Context, file string) error {
	if err := e.Lab.Vault().Sys().DisableAuditWithContext(ctx, auditDevice); err != nil {
		return fmt.Errorf("disable audit device %s: %w", auditDevice, err)
	}
	dir := filepath.Join(e.Lab.ArtifactsDir(), auditArtifacts)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	seen := map[[32]byte]bool{}
	for _, n := range e.Lab.VaultNodes() {
		b, err := n.ReadFile(ctx, file)
		if err != nil {
			return err
		}
		if sum := sha256.Sum256(b); len(b) > 0 && !seen[sum] {
			seen[sum] = true
			if err := os.WriteFile(filepath.Join(dir, n.Name()+".log"), b, 0o644); err != nil {
				return err
			}
		}
		if err := n.RemoveFile(ctx, file); err != nil {
			return err
		}
	}
	return nil
}
