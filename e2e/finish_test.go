package e2e

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
)

// finishErrors collects what the Finish steps returned: e2e-framework (still in v0.7.0) only
// logs a Finish error (at klog V(2)), keeps the exit code of m.Run and skips the steps after it.
var finishErrors []string

// allOf is one Finish step that runs every step, even after one failed, and records each
// error for withFinishErrors.
func allOf(steps ...env.Func) env.Func {
	return func(ctx context.Context, cfg *envconf.Config) (context.Context, error) {
		for _, step := range steps {
			next, err := step(ctx, cfg)
			if next != nil {
				ctx = next
			}
			if err != nil {
				finishErrors = append(finishErrors, fmt.Sprintf("%s: %v", stepName(step), err))
			}
		}
		return ctx, nil
	}
}

// withFinishErrors turns recorded Finish errors into a failing exit code, naming each.
func withFinishErrors(code int) int {
	for _, e := range finishErrors {
		fmt.Fprintf(os.Stderr, "FAIL finish step %s\n", e)
	}
	if len(finishErrors) > 0 && code == 0 {
		return 1
	}
	return code
}

func stepName(f env.Func) string {
	name := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}
