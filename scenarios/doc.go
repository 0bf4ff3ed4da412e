// Package scenarios turns the chapters' hands-on steps into checks that run unattended on
// any lab backend. A scenario is a named sequence of checks with stable ids SCENARIO.CHECK;
// a check that never ran is reported unknown, never passed.
//
// One file per scenario:
//
//	baseline.go      the bookstore runs on the demo Secret (ch05 step 0)
//	vault_config.go  Kubernetes auth, least-privilege policy, role, KV v2 value (ch05 step 1)
//	swap.go          the demo Secret replaced by an ExternalSecret, byte-identical (ch05 step 3)
//	revert.go        back to the demo Secret (ch05 step 5)
//	dynamic.go       dynamic Postgres credentials, directly and through ESO (ch05 step 4)
//	rotation.go      a KV change reaches the Secret on a forced sync
//	break_glass.go   ch15.05: a CronJob's break-glass copy starts a new catalog through a full Vault outage
//	bootstrap.go     ch15.05 steps 1-3: a non-root platform admin onboards a tenant, kept to its names
//	tenants.go       ch15.05: two tenants on one Vault, each kept to its own value and audience
//	                 (its ESO half, per-tenant stores and ExternalSecrets, in tenants_eso.go)
//	audit.go         ch15.05: a file audit device on every node records the cross-tenant read
//	injector_psa.go  ch05: ESO injects nothing; the Vault Agent injector meets Pod Security (kind, cluster)
//	refresh_race.go  ch15.05: refreshInterval longer than the lease leaves a dead credential in the
//	                 Secret; <= lease/2 never does (scaled TTLs, generator route)
//	rollout_on_rotation.go  ch05/ch15.05: a rotated KV value reaches env-var consumers only by a
//	                 rollout: the `secret-rotation` bump, and an in-suite reloader (reloader.go)
//	failover.go      Vault HA: the active node dies, another takes over (ch15.05)
//	lease_storm.go   Vault HA: many leases across a full restart, none orphaned (ch15.05)
//	auto_unseal.go   Vault HA with seal "transit" (a KMS Vault): a full restart needs no unseal;
//	                 without the KMS a restarted node stays sealed and says why (ch15.05)
//	upgrade.go       ESO and Vault upgraded in place to UPGRADE_TO while the workload runs
//
// The engine is apart from them: runner.go (Scenario, Check, Result, Runner), env.go (Env,
// the State scenarios hand on, Timeouts, Requirements, Defer), helpers.go (fixtures applied
// to this lab, waits, logins), vault_checks.go (Vault writes read back, leases) and
// postgres_checks.go (refused logins, the roles Vault mints).
//
// To add a scenario: copy rotation.go to NAME.go, give it its Name, Needs (scenarios that
// must run first), Requires (e.g. VaultHA) and Checks; register every cleanup with e.Defer
// right after creating what it removes; add it to All() in all.go; then run
// `make conformance LABELS=scenario=NAME` (or `secretslab conformance --labels scenario=NAME`).
//
// A check that observes a claim of the chapters records it by its id in the claims ledger
// (claims/ledger.md): r.Claim("C05-05", holds, detail), holds computed from what the check saw.
// The ledger supplies the claim's text; claims_test.go fails on an id the ledger lacks.
package scenarios
