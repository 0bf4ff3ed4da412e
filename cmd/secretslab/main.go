// Command secretslab runs the Vault -> External Secrets Operator -> Kubernetes lab and
// conformance suite.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: secretslab COMMAND

  lab up       start a lab and leave it running (--backend embedded|kind|auto, --ha, --seal shamir|transit)
  lab down     stop everything "lab up" started
  lab status   show what runs and how to reach it
  conformance  bring a lab up, run the scenarios, write the report, bring it down
               (--backend, --ha, --seal, --labels scenario=NAME, --out DIR, --bookstore-binary);
               (--versions SET, --upgrade-to SET); HA: --failovers K, --leases N,
               --raft-performance-multiplier M; exits non-zero when a check failed
  upgrade-check --from SET --to SET [--out DIR] [-- conformance flags]
               fresh runs on FROM and TO, FROM upgraded in place to TO, the diffs
               against FROM and one summary page; exits non-zero on a failure or regression
  build        build the component binaries once into the cache (embedded backend)
  versions     print a version set (--versions SET, --backend) with its overrides
  report render FILE.json [--out DIR]
               re-render junit.xml, report.md and report.html from a report.json
  report diff BASELINE.json CANDIDATE.json [--out DIR] [--noise PCT]
               compare two runs into diff.json/.md/.html; exits non-zero on a regression
  report bench [--out DIR] RUN/report.json...
               one table (figure, min, median, max) of the bench runs: bench.md, bench.json

Run "secretslab COMMAND -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "secretslab:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "lab":
		if len(args) < 2 {
			return fmt.Errorf("lab: want up, down or status")
		}
		switch args[1] {
		case "up":
			return labUp(ctx, args[2:])
		case "down":
			return labDown(ctx, args[2:])
		case "status":
			return labStatus(ctx, args[2:])
		case "serve": // internal: the detached supervisor started by "lab up"
			return labServe(ctx, args[2:])
		}
		return fmt.Errorf("lab %s: unknown subcommand (want up, down or status)", args[1])
	case "conformance":
		return conformanceCmd(ctx, args[1:])
	case "upgrade-check":
		return upgradeCheckCmd(ctx, args[1:])
	case "build":
		return buildCmd(ctx, args[1:])
	case "versions":
		return versionsCmd(args[1:])
	case "report":
		return reportCmd(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
