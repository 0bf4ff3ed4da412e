// Package vaultops bootstraps and observes Vault servers through their HTTP API only:
// init, unseal, Raft join, and waits for "unsealed", "one active node" and "n voters".
// It does not care where the servers run (host processes, pods behind port-forwards).
package vaultops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretslab/secretslab/internal/proc"
	"github.com/secretslab/secretslab/internal/redact"
)

// pollInterval is how often the waits ask again.
const pollInterval = 250 * time.Millisecond

// probeTimeout bounds one status request of a wait, so a hung node cannot stall it.
const probeTimeout = 3 * time.Second

// NewClient returns a client for addr with token ("" for none). Unlike api.NewClient alone it
// ignores VAULT_TOKEN and VAULT_NAMESPACE from the environment, and it does not retry, so
// that waits see each answer (or refusal) at once.
func NewClient(addr, token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client config: %w", cfg.Error)
	}
	cfg.Address = addr
	cfg.MaxRetries = 0
	cfg.Timeout = 30 * time.Second
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", addr, err)
	}
	c.ClearNamespace()
	if token == "" {
		c.ClearToken()
	} else {
		c.SetToken(token)
	}
	return c, nil
}

// Init initializes a Vault with a Shamir seal split into shares keys, threshold of which
// unseal it. The root token and the keys (hex and base64) are added to secrets before Init
// returns, so no log written afterwards can show them.
func Init(ctx context.Context, c *api.Client, shares, threshold int, secrets *redact.Set) (*KeyFile, error) {
	resp, err := c.Sys().InitWithContext(ctx, &api.InitRequest{SecretShares: shares, SecretThreshold: threshold})
	if resp != nil {
		secrets.Add(resp.RootToken)
		secrets.Add(resp.Keys...)
		secrets.Add(resp.KeysB64...)
	}
	if err != nil {
		return nil, fmt.Errorf("init vault at %s: %w", c.Address(), err)
	}
	if resp.RootToken == "" || len(resp.KeysB64) != shares {
		return nil, fmt.Errorf("init vault at %s: answer has no root token or %d keys instead of %d", c.Address(), len(resp.KeysB64), shares)
	}
	return &KeyFile{RootToken: resp.RootToken, UnsealKeys: resp.KeysB64, Shares: shares, Threshold: threshold}, nil
}

// InitRecovery initialises an auto-unsealed Vault (a seal stanza such as "transit" in its
// configuration): the seal protects the root key, so Vault returns no unseal keys, only shares
// recovery keys (threshold of which authorise generate-root and rekey; they cannot unseal).
// The node unseals itself once initialised. The root token and the recovery keys are added to
// secrets before InitRecovery returns.
func InitRecovery(ctx context.Context, c *api.Client, shares, threshold int, secrets *redact.Set) (*KeyFile, error) {
	resp, err := c.Sys().InitWithContext(ctx, &api.InitRequest{RecoveryShares: shares, RecoveryThreshold: threshold})
	if resp != nil {
		secrets.Add(resp.RootToken)
		secrets.Add(resp.Keys...)
		secrets.Add(resp.KeysB64...)
		secrets.Add(resp.RecoveryKeys...)
		secrets.Add(resp.RecoveryKeysB64...)
	}
	if err != nil {
		return nil, fmt.Errorf("init vault at %s with recovery keys: %w", c.Address(), err)
	}
	if resp.RootToken == "" || len(resp.RecoveryKeysB64) != shares {
		return nil, fmt.Errorf("init vault at %s: answer has no root token or %d recovery keys instead of %d", c.Address(), len(resp.RecoveryKeysB64), shares)
	}
	if len(resp.KeysB64) != 0 {
		return nil, fmt.Errorf("init vault at %s: an auto-unsealed Vault answered with %d unseal keys (is its seal Shamir?)", c.Address(), len(resp.KeysB64))
	}
	return &KeyFile{RootToken: resp.RootToken, RecoveryKeys: resp.RecoveryKeysB64, Shares: shares, Threshold: threshold}, nil
}

// unsealRequests counts the sys/unseal requests this process sent, by Vault address.
var unsealRequests = struct {
	sync.Mutex
	by map[string]int
}{by: map[string]int{}}

// UnsealRequests is how many sys/unseal requests (key submissions) Unseal has sent to the
// given addresses since the process started; with no address, to every address. It lets a
// check prove that a Vault unsealed itself: no request left this process for it.
func UnsealRequests(addrs ...string) int {
	unsealRequests.Lock()
	defer unsealRequests.Unlock()
	n := 0
	if len(addrs) == 0 {
		for _, v := range unsealRequests.by {
			n += v
		}
		return n
	}
	for _, a := range addrs {
		n += unsealRequests.by[a]
	}
	return n
}

func countUnsealRequest(addr string) {
	unsealRequests.Lock()
	unsealRequests.by[addr]++
	unsealRequests.Unlock()
}

// Unseal submits keys until the node reports unsealed or the threshold of keys has been
// given. A node that is joining a Raft cluster still reports sealed at that point and
// finishes in the background: call WaitUnsealed after Unseal.
func Unseal(ctx context.Context, c *api.Client, keys []string) error {
	st, err := c.Sys().SealStatusWithContext(ctx)
	if err != nil {
		return fmt.Errorf("unseal %s: read seal status: %w", c.Address(), err)
	}
	if !st.Sealed {
		return nil
	}
	if len(keys) < st.T {
		return fmt.Errorf("unseal %s: need %d keys, have %d", c.Address(), st.T, len(keys))
	}
	// drop the progress of an earlier attempt, which may already hold one of these keys
	if st.Progress > 0 {
		countUnsealRequest(c.Address())
		if _, err := c.Sys().ResetUnsealProcessWithContext(ctx); err != nil {
			return fmt.Errorf("unseal %s: reset earlier progress: %w", c.Address(), err)
		}
	}
	for i := 0; i < st.T; i++ {
		// the api error never contains the key; do not add it
		countUnsealRequest(c.Address())
		res, err := c.Sys().UnsealWithContext(ctx, keys[i])
		if err != nil {
			return fmt.Errorf("unseal %s: submit key %d of %d: %w", c.Address(), i+1, st.T, err)
		}
		if !res.Sealed {
			return nil
		}
	}
	return nil
}

// JoinRaft makes the uninitialized node behind c join the Raft cluster led by leaderAPIAddr
// (e.g. "http://127.0.0.1:8200"). The node then needs the unseal keys.
func JoinRaft(ctx context.Context, c *api.Client, leaderAPIAddr string) error {
	resp, err := c.Sys().RaftJoinWithContext(ctx, &api.RaftJoinRequest{LeaderAPIAddr: leaderAPIAddr})
	if err != nil {
		return fmt.Errorf("raft join %s -> %s: %w", c.Address(), leaderAPIAddr, err)
	}
	if !resp.Joined {
		return fmt.Errorf("raft join %s -> %s: vault answered joined=false", c.Address(), leaderAPIAddr)
	}
	return nil
}

// WaitAnswering waits until the server answers sys/seal-status (in any state) and returns
// that answer.
func WaitAnswering(ctx context.Context, c *api.Client, timeout time.Duration) (*api.SealStatusResponse, error) {
	var last *api.SealStatusResponse
	err := proc.WaitFor(ctx, "vault at "+c.Address()+" to answer sys/seal-status", timeout, pollInterval, nil,
		func(ctx context.Context) (bool, error) {
			st, err := sealStatus(ctx, c)
			if err != nil {
				return false, err
			}
			last = st
			return true, nil
		})
	return last, err
}

// WaitUnsealed waits until the node reports unsealed and returns its last seal status.
func WaitUnsealed(ctx context.Context, c *api.Client, timeout time.Duration) (*api.SealStatusResponse, error) {
	var last *api.SealStatusResponse
	err := proc.WaitFor(ctx, "vault at "+c.Address()+" to be unsealed", timeout, pollInterval, nil,
		func(ctx context.Context) (bool, error) {
			st, err := sealStatus(ctx, c)
			if err != nil {
				return false, err
			}
			last = st
			return !st.Sealed, nil
		})
	if err != nil && last != nil {
		err = fmt.Errorf("%w (last seal status: initialized=%t sealed=%t progress=%d/%d)", err, last.Initialized, last.Sealed, last.Progress, last.T)
	}
	return last, err
}

func sealStatus(ctx context.Context, c *api.Client) (*api.SealStatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return c.Sys().SealStatusWithContext(ctx)
}

// NodeState is what one node said about itself.
type NodeState struct {
	Address string
	Err     error // unreachable or refused
	Health  *api.HealthResponse
	Leader  *api.LeaderResponse // nil when sealed or unreachable
}

// Active reports whether the node serves as the active node.
func (s NodeState) Active() bool {
	return s.Err == nil && s.Health.Initialized && !s.Health.Sealed && !s.Health.Standby &&
		(s.Leader == nil || s.Leader.IsSelf || !s.Leader.HAEnabled)
}

func (s NodeState) String() string {
	switch {
	case s.Err != nil:
		return s.Address + ": unreachable"
	case !s.Health.Initialized:
		return s.Address + ": uninitialized"
	case s.Health.Sealed:
		return s.Address + ": sealed"
	case s.Active():
		return s.Address + ": active"
	case s.Leader != nil:
		return s.Address + ": standby (leader " + s.Leader.LeaderAddress + ")"
	default:
		return s.Address + ": standby"
	}
}

// Observe asks every node for sys/health and, when unsealed, sys/leader.
func Observe(ctx context.Context, clients []*api.Client) []NodeState {
	out := make([]NodeState, len(clients))
	for i, c := range clients {
		out[i] = observe(ctx, c)
	}
	return out
}

func observe(ctx context.Context, c *api.Client) NodeState {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	s := NodeState{Address: c.Address()}
	// HealthWithContext asks Vault to answer 200 in every state and reports it in the body
	// (the status codes otherwise used are 200 active, 429 standby, 503 sealed, 501 uninit).
	s.Health, s.Err = c.Sys().HealthWithContext(ctx)
	if s.Err != nil || !s.Health.Initialized || s.Health.Sealed {
		return s
	}
	if l, err := c.Sys().LeaderWithContext(ctx); err == nil {
		s.Leader = l
	}
	return s
}

// WaitOneActive waits until exactly one node is active and every other unsealed node names
// that node as its leader, and returns the active node's index. Unreachable and sealed
// nodes are allowed (a killed node is both). The error lists the last observed states.
func WaitOneActive(ctx context.Context, clients []*api.Client, timeout time.Duration) (int, error) {
	active := -1
	var last []NodeState
	err := proc.WaitFor(ctx, fmt.Sprintf("exactly one active vault node among %d", len(clients)), timeout, pollInterval, nil,
		func(ctx context.Context) (bool, error) {
			last = Observe(ctx, clients)
			active = -1
			for i, s := range last {
				if s.Active() {
					if active >= 0 {
						return false, nil
					}
					active = i
				}
			}
			if active < 0 {
				return false, nil
			}
			if leader := last[active].Leader; leader != nil && leader.HAEnabled {
				for i, s := range last {
					if i != active && s.Leader != nil && s.Leader.LeaderAddress != leader.LeaderAddress {
						return false, nil // a standby still names the old leader
					}
				}
			}
			return true, nil
		})
	if err != nil {
		return -1, fmt.Errorf("%w (last states: %s)", err, describe(last))
	}
	return active, nil
}

func describe(states []NodeState) string {
	parts := make([]string, len(states))
	for i, s := range states {
		parts[i] = s.String()
	}
	return strings.Join(parts, "; ")
}

// RaftServer is one entry of sys/storage/raft/configuration.
type RaftServer struct {
	NodeID  string `mapstructure:"node_id"`
	Address string `mapstructure:"address"`
	Leader  bool   `mapstructure:"leader"`
	Voter   bool   `mapstructure:"voter"`
}

// RaftConfig is the Raft configuration as the active node sees it.
type RaftConfig struct {
	Servers []RaftServer
}

// Voters returns the node IDs of the voters, sorted.
func (rc *RaftConfig) Voters() []string {
	var out []string
	for _, s := range rc.Servers {
		if s.Voter {
			out = append(out, s.NodeID)
		}
	}
	sort.Strings(out)
	return out
}

// Leader returns the node ID of the leader, or "".
func (rc *RaftConfig) Leader() string {
	for _, s := range rc.Servers {
		if s.Leader {
			return s.NodeID
		}
	}
	return ""
}

func (rc *RaftConfig) String() string {
	parts := make([]string, len(rc.Servers))
	for i, s := range rc.Servers {
		role := "non-voter"
		if s.Voter {
			role = "voter"
		}
		if s.Leader {
			role += ",leader"
		}
		parts[i] = s.NodeID + "(" + role + ")"
	}
	return strings.Join(parts, " ")
}

// RaftConfiguration reads sys/storage/raft/configuration (needs a token; a standby forwards).
func RaftConfiguration(ctx context.Context, c *api.Client) (*RaftConfig, error) {
	sec, err := c.Logical().ReadWithContext(ctx, "sys/storage/raft/configuration")
	if err != nil {
		return nil, fmt.Errorf("read raft configuration from %s: %w", c.Address(), err)
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("read raft configuration from %s: empty answer", c.Address())
	}
	cfg, _ := sec.Data["config"].(map[string]any)
	raw, _ := cfg["servers"].([]any)
	out := &RaftConfig{}
	for _, r := range raw {
		m, _ := r.(map[string]any)
		s := RaftServer{}
		s.NodeID, _ = m["node_id"].(string)
		s.Address, _ = m["address"].(string)
		s.Leader, _ = m["leader"].(bool)
		s.Voter, _ = m["voter"].(bool)
		out.Servers = append(out.Servers, s)
	}
	if len(out.Servers) == 0 {
		return nil, fmt.Errorf("read raft configuration from %s: no servers listed", c.Address())
	}
	return out, nil
}

// SetServerStabilizationTime lowers autopilot's server_stabilization_time (default 10s),
// the time a joined non-voter must stay healthy before autopilot promotes it to voter.
// Labs lower it to a few seconds only to reach n voters sooner; promotion still goes
// through autopilot, exactly as in production.
func SetServerStabilizationTime(ctx context.Context, c *api.Client, d time.Duration) error {
	_, err := c.Logical().WriteWithContext(ctx, "sys/storage/raft/autopilot/configuration",
		map[string]any{"server_stabilization_time": d.String()})
	if err != nil {
		return fmt.Errorf("set autopilot server_stabilization_time on %s: %w", c.Address(), err)
	}
	return nil
}

// WaitVoters waits until the Raft configuration lists n voters and returns the last
// configuration read. Joined nodes start as non-voters; autopilot promotes them once they
// have been healthy for server_stabilization_time (see SetServerStabilizationTime).
func WaitVoters(ctx context.Context, c *api.Client, n int, timeout time.Duration) (*RaftConfig, error) {
	var last *RaftConfig
	err := proc.WaitFor(ctx, fmt.Sprintf("%d raft voters", n), timeout, pollInterval, nil,
		func(ctx context.Context) (bool, error) {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			rc, err := RaftConfiguration(ctx, c)
			if err != nil {
				return false, err
			}
			last = rc
			return len(rc.Voters()) == n, nil
		})
	if err != nil && last != nil {
		err = fmt.Errorf("%w (last configuration: %s)", err, last)
	}
	return last, err
}

// WaitHealthyVoters waits until autopilot reports n healthy voters (the leader counts) and
// returns its last state. Unlike the Raft configuration, which keeps listing a killed voter,
// autopilot health shows whether a node is really back and keeping up.
func WaitHealthyVoters(ctx context.Context, c *api.Client, n int, timeout time.Duration) (*api.AutopilotState, error) {
	var last *api.AutopilotState
	err := proc.WaitFor(ctx, fmt.Sprintf("%d healthy raft voters (autopilot)", n), timeout, pollInterval, nil,
		func(ctx context.Context) (bool, error) {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			st, err := c.Sys().RaftAutopilotStateWithContext(ctx)
			if err != nil {
				return false, err
			}
			if st == nil {
				return false, proc.Permanent(errors.New("autopilot state not available (not raft storage?)"))
			}
			last = st
			return HealthyVoters(st) == n, nil
		})
	if err != nil && last != nil {
		err = fmt.Errorf("%w (last autopilot state: %s)", err, autopilotSummary(last))
	}
	return last, err
}

// HealthyVoters counts the healthy voters (leader included) in an autopilot state.
func HealthyVoters(st *api.AutopilotState) int {
	n := 0
	for _, s := range st.Servers {
		if s.Healthy && (s.Status == "voter" || s.Status == "leader") {
			n++
		}
	}
	return n
}

func autopilotSummary(st *api.AutopilotState) string {
	var parts []string
	for _, s := range st.Servers {
		parts = append(parts, fmt.Sprintf("%s(%s,healthy=%t)", s.ID, s.Status, s.Healthy))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
