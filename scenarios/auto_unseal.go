package scenarios

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/secretslab/secretslab/internal/vaultops"
	"github.com/secretslab/secretslab/lab"
)

// autoUnsealProbe is the KV path the scenario writes to prove Vault serves after a restart.
const autoUnsealProbe = "secret/data/auto-unseal/probe"

// kmsDownWatch is how long a node restarted without its KMS is watched: it must not unseal
// (with Shamir keys withheld, nothing else could unseal it either; with the KMS gone, the
// transit seal cannot).
const kmsDownWatch = 20 * time.Second

// storedKeyLine is what Vault logs when its seal (not a human) unsealed it.
const storedKeyLine = "unsealed with stored key"

// autoUnseal: chapter 15.05's "KMS auto-unseal is the only safe pattern". A second, small Vault
// whose transit engine plays the cloud KMS (the chapter's seal "awskms" stand-in) holds the key
// that protects the HA cluster's root key; the cluster has recovery keys, no unseal keys. Every
// node is killed and restarted and serves again with no unseal request from the harness; with
// the KMS stopped a restarted node cannot unseal and says why; once the KMS returns it unseals
// itself.
func autoUnseal() Scenario {
	var victim lab.VaultNode
	var kmsBack time.Time
	return Scenario{Name: "auto-unseal", Title: "KMS auto-unseal (seal \"transit\", a second Vault as the KMS): a full restart needs no unseal; without the KMS a restarted node stays sealed and says why",
		Requires: []Requirement{VaultHA, TransitSeal, Disruptive}, Checks: []Check{
			{"transit-seal", "every node reports seal type transit with recovery keys, initialised and unsealed; the KMS Vault answers", func(ctx context.Context, e *Env, r *Result) error {
				kms := lab.KMSOf(e.Lab)
				ks, err := kms.Client().Sys().SealStatusWithContext(ctx)
				if err != nil {
					return fmt.Errorf("the KMS Vault %s: %w", kms.Name(), err)
				}
				if ks.Sealed {
					return fmt.Errorf("the KMS Vault %s is sealed", kms.Name())
				}
				for _, n := range e.Lab.VaultNodes() {
					st, err := n.Client().Sys().SealStatusWithContext(ctx)
					if err != nil {
						return fmt.Errorf("%s: %w", n.Name(), err)
					}
					if st.Type != "transit" || !st.RecoverySeal || !st.Initialized || st.Sealed {
						return fmt.Errorf("%s: seal type %q, recovery_seal %t, initialized %t, sealed %t; want transit, true, true, false",
							n.Name(), st.Type, st.RecoverySeal, st.Initialized, st.Sealed)
					}
				}
				r.Note("3 nodes: seal type transit with a recovery seal (recovery keys, no unseal keys); the KMS is %s, a Vault %s whose transit engine stands in for the chapter's seal \"awskms\" (a cloud KMS key)",
					kms.Name(), ks.Version)
				return nil
			}},
			{"full-restart", "every node is killed and restarted: each unseals itself (no unseal request), one is active, Vault serves", func(ctx context.Context, e *Env, r *Result) error {
				nodes := e.Lab.VaultNodes()
				// cleanups run newest first: the nodes are back before the probe is deleted
				e.Defer("delete the probe "+autoUnsealProbe, func(ctx context.Context) error {
					_, err := e.Lab.Vault().Logical().DeleteWithContext(ctx, strings.Replace(autoUnsealProbe, "/data/", "/metadata/", 1))
					return err
				})
				e.Defer("bring every Vault node back: restart, wait until it unseals itself, 3 healthy voters", func(ctx context.Context) error {
					return e.restoreVaultNodes(ctx, nodes...)
				})
				before := unsealRequestsTo(nodes)
				for _, n := range nodes {
					if err := n.Kill(ctx); err != nil {
						return err
					}
				}
				start := time.Now()
				for _, n := range nodes {
					if err := n.Restart(ctx); err != nil {
						return err
					}
				}
				var unsealedAt float64
				for _, n := range nodes {
					if _, err := vaultops.WaitUnsealed(ctx, n.Client(), e.Timeouts.Rejoin); err != nil {
						return fmt.Errorf("%s did not unseal itself: %w", n.Name(), err)
					}
					unsealedAt = since(start)
				}
				r.Figure("unsealed-seconds", unsealedAt)
				if _, err := vaultops.WaitOneActive(ctx, clientsOf(nodes), e.Timeouts.Rejoin); err != nil {
					return err
				}
				value := randomSecret("auto-unseal-")
				e.Lab.Secrets().Add(value)
				if err := waitServing(ctx, e, value); err != nil {
					return err
				}
				serving := since(start)
				r.Figure("serving-seconds", serving)
				requests := unsealRequestsTo(nodes) - before
				r.Figure("unseal-requests", float64(requests))
				var byLog []string
				for _, n := range nodes {
					l, ok := n.(lab.VaultNodeLog)
					if !ok {
						continue // this backend shows no log; seal-status and the request count stand
					}
					s, err := l.Log(ctx)
					if err != nil {
						return err
					}
					if !strings.Contains(s, storedKeyLine) {
						return fmt.Errorf("%s unsealed, but its log since the restart has no %q line", n.Name(), storedKeyLine)
					}
					byLog = append(byLog, n.Name())
				}
				holds := requests == 0
				detail := fmt.Sprintf("3 nodes killed and restarted; all unsealed after %.1fs, serving (KV write and read) after %.1fs, with %d unseal requests from the harness; KMS: a Vault transit key standing in for awskms", unsealedAt, serving, requests)
				r.Claim("C15-08", holds, detail)
				r.Note("%s", detail)
				if len(byLog) > 0 {
					r.Note("%q in the log of %s", storedKeyLine, strings.Join(byLog, ", "))
				}
				if !holds {
					return fmt.Errorf("the harness sent %d unseal requests to the cluster", requests)
				}
				return nil
			}},
			{"kms-down", "with the KMS Vault stopped a restarted node does not unseal, and its status or log says why; the running nodes keep serving", func(ctx context.Context, e *Env, r *Result) error {
				nodes := e.Lab.VaultNodes()
				kms := lab.KMSOf(e.Lab)
				active, err := vaultops.WaitOneActive(ctx, clientsOf(nodes), e.Timeouts.Failover)
				if err != nil {
					return err
				}
				victim = nodes[(active+1)%len(nodes)] // a standby: the cluster keeps its leader
				before := unsealRequestsTo(nodes)
				if err := kms.Kill(ctx); err != nil {
					return fmt.Errorf("stop the KMS Vault: %w", err)
				}
				e.Defer("bring the KMS Vault back: restart, unseal with its own keys", func(ctx context.Context) error {
					return restoreKMS(ctx, kms)
				})
				if err := victim.Kill(ctx); err != nil {
					return err
				}
				restartErr := victim.Restart(ctx)
				// watched for kmsDownWatch: it must never report unsealed
				var status string
				deadline := time.Now().Add(kmsDownWatch)
				for time.Now().Before(deadline) {
					pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
					st, err := victim.Client().Sys().SealStatusWithContext(pctx)
					cancel()
					switch {
					case err != nil:
						status = "no answer (the server is not running)"
					case !st.Sealed:
						return fmt.Errorf("%s unsealed while the KMS was stopped", victim.Name())
					default:
						status = fmt.Sprintf("sealed=true, seal type %s, initialized %t", st.Type, st.Initialized)
					}
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(time.Second):
					}
				}
				line, err := sealErrorLine(ctx, victim)
				if err != nil {
					return err
				}
				r.Note("%s restarted with the KMS down: restart %s; for %s its status: %s; its log: %q",
					victim.Name(), outcome(restartErr), kmsDownWatch, status, line)
				// the nodes that kept running hold the key in memory: they stay unsealed and serve
				var others []*vault.Client
				for _, n := range nodes {
					if n != victim {
						others = append(others, n.Client())
					}
				}
				if _, err := vaultops.WaitOneActive(ctx, others, e.Timeouts.Failover); err != nil {
					return fmt.Errorf("without the KMS, the nodes that kept running: %w", err)
				}
				value := randomSecret("auto-unseal-")
				e.Lab.Secrets().Add(value)
				if err := waitServing(ctx, e, value); err != nil {
					return fmt.Errorf("without the KMS, the nodes that kept running: %w", err)
				}
				r.Note("the 2 nodes that kept running stayed unsealed and served (the root key is in their memory)")
				if n := unsealRequestsTo(nodes) - before; n != 0 {
					return fmt.Errorf("the harness sent %d unseal requests to the cluster", n)
				}
				return nil
			}},
			{"kms-returns", "once the KMS Vault is back the node unseals itself (no unseal request) and is a healthy voter again", func(ctx context.Context, e *Env, r *Result) error {
				if victim == nil {
					return errors.New("no node was restarted without the KMS")
				}
				nodes := e.Lab.VaultNodes()
				before := unsealRequestsTo(nodes)
				if err := restoreKMS(ctx, lab.KMSOf(e.Lab)); err != nil {
					return err
				}
				kmsBack = time.Now()
				// a server that exited at start is started again, as its supervisor (the kubelet,
				// systemd) does; that is a restart, not an unseal
				if _, err := victim.Client().Sys().SealStatusWithContext(ctx); err != nil {
					if err := victim.Restart(ctx); err != nil {
						return fmt.Errorf("%s with the KMS back: %w", victim.Name(), err)
					}
					r.Note("%s was started again (it had exited)", victim.Name())
				}
				if _, err := vaultops.WaitUnsealed(ctx, victim.Client(), e.Timeouts.Rejoin); err != nil {
					return fmt.Errorf("%s did not unseal itself with the KMS back: %w", victim.Name(), err)
				}
				r.Figure("recover-seconds", since(kmsBack))
				if _, err := vaultops.WaitHealthyVoters(ctx, e.Lab.Vault(), 3, e.Timeouts.Rejoin); err != nil {
					return err
				}
				r.Figure("healthy-voters-seconds", since(kmsBack))
				if n := unsealRequestsTo(nodes) - before; n != 0 {
					return fmt.Errorf("the harness sent %d unseal requests to the cluster", n)
				}
				r.Note("%s unsealed itself %.1fs after the KMS was back, with no unseal request", victim.Name(), since(kmsBack))
				return nil
			}},
		}}
}

// waitServing writes value to the probe path and reads it back through the lab's client
// until that works: the cluster serves requests, not only answers health.
func waitServing(ctx context.Context, e *Env, value string) error {
	return waitFor(ctx, "Vault to serve a KV write and read at "+autoUnsealProbe, e.Timeouts.Rejoin, func(ctx context.Context) (bool, error) {
		c := e.Lab.Vault()
		if _, err := c.Logical().WriteWithContext(ctx, autoUnsealProbe, map[string]any{"data": map[string]any{"value": value}}); err != nil {
			return false, err
		}
		s, err := c.Logical().ReadWithContext(ctx, autoUnsealProbe)
		if err != nil || s == nil {
			return false, err
		}
		data, _ := s.Data["data"].(map[string]any)
		if data["value"] != value {
			return false, errors.New("the probe read back another value")
		}
		return true, nil
	})
}

// restoreKMS restarts the KMS Vault when it is down and unseals it with its own keys.
func restoreKMS(ctx context.Context, kms lab.VaultNode) error {
	if _, err := kms.Client().Sys().SealStatusWithContext(ctx); err != nil {
		if err := kms.Restart(ctx); err != nil {
			return fmt.Errorf("restart the KMS Vault: %w", err)
		}
	}
	if err := kms.Unseal(ctx); err != nil {
		return fmt.Errorf("unseal the KMS Vault: %w", err)
	}
	return nil
}

// unsealRequestsTo counts the sys/unseal requests this process sent to the nodes.
func unsealRequestsTo(nodes []lab.VaultNode) int {
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Address())
	}
	return vaultops.UnsealRequests(addrs...)
}

var (
	sealErrorRE = regexp.MustCompile(`(?i)seal.*(error|fail|refused|unable|cannot)|(error|fail|refused|unable|cannot).*seal`)
	// the lines of a Vault API error that follow its first line: "URL: ...", "Code: 503. Errors:", "* Vault is sealed"
	apiErrorDetail = regexp.MustCompile(`^(\S+Z )?(URL: |Code: |\* )`)
)

// sealErrorLine is the last line of n's log since its last start that speaks of the seal and
// of an error, with the URL, code and errors of a Vault API error that follow it.
func sealErrorLine(ctx context.Context, n lab.VaultNode) (string, error) {
	l, ok := n.(lab.VaultNodeLog)
	if !ok {
		return "", fmt.Errorf("%s: this backend does not show the node's log", n.Name())
	}
	s, err := l.Log(ctx)
	if err != nil {
		return "", err
	}
	lines := strings.Split(s, "\n")
	last := -1
	for i, line := range lines {
		if sealErrorRE.MatchString(line) {
			last = i
		}
	}
	if last < 0 {
		return "", fmt.Errorf("%s's log since the restart has no line naming the seal and an error", n.Name())
	}
	out := []string{strings.TrimSpace(lines[last])}
	for _, line := range lines[last+1 : min(last+8, len(lines))] {
		if m := apiErrorDetail.FindStringSubmatchIndex(line); m != nil {
			out = append(out, strings.TrimSpace(line[m[4]:])) // from "URL: ", "Code: " or "* ", the timestamp (group 1) dropped
		}
	}
	return strings.Join(out, " "), nil
}

func outcome(err error) string {
	if err == nil {
		return "succeeded (the server runs)"
	}
	return "failed: " + err.Error()
}
