//go:build !flyfake

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// benchFly is the Fly case of `candor bench machines`, which needs the Fly
// fake; the product binary does not link it.
func benchFly(_ context.Context, _ string, _ int, stdout io.Writer, _ *slog.Logger) error {
	fmt.Fprintln(stdout, "fly backend: skipped; this binary does not link the Fly fake (build with -tags flyfake: go run -tags flyfake . bench machines)")
	return nil
}
