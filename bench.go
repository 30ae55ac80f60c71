package main

import (
	"context"
	"errors"
	"io"

	"candor/bench"
)

// runBench serves `candor bench NAME`: performance figures measured on this
// machine, printed as they are taken.
func runBench(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: candor bench realtime|machines|backup [flags]")
	}
	switch args[0] {
	case "realtime":
		return bench.Realtime(ctx, args[1:], stdout, stderr)
	case "machines":
		return bench.Machines(ctx, args[1:], env, stdout, stderr)
	case "backup":
		return benchBackup(ctx, args[1:], stdout, stderr)
	default:
		return errors.New("unknown benchmark " + args[0] + ": use realtime, machines or backup")
	}
}
