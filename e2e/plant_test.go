package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"sigs.k8s.io/e2e-framework/pkg/envconf"

	"github.com/secretslab/secretslab/internal/proc"
)

// plantEnv makes a run plant a failure its Finish steps must catch (TestFinishStepsFailTheRun
// runs this test binary as a child with it): "leak" prints a secret value once, "leftover"
// leaves a process that claims to be the lab's.
const plantEnv = "SECRETSLAB_E2E_PLANT"

// plantIfAsked is a Setup step that does nothing unless plantEnv is set.
func plantIfAsked(ctx context.Context, _ *envconf.Config) (context.Context, error) {
	switch os.Getenv(plantEnv) {
	case "":
		return ctx, nil
	case "leak":
		fmt.Println("planted leak:", labFrom(ctx).Vault().Token())
	case "leftover":
		cmd := exec.Command("sleep", plantedSleep)
		if err := cmd.Start(); err != nil {
			return ctx, err
		}
		r, err := proc.RecordOf("planted-leftover", cmd.Process.Pid)
		if err != nil {
			return ctx, err
		}
		labRecords = append(labRecords, r)
		fmt.Printf("planted leftover: pid %d start %d\n", r.PID, r.StartTime)
	default:
		return ctx, fmt.Errorf("%s=%q: want leak or leftover", plantEnv, os.Getenv(plantEnv))
	}
	return ctx, nil
}

const plantedSleep = "3599"
