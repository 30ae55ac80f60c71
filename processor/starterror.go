package processor

import (
	"context"
	"time"

	"candor/processor/contract"
)

// ReportStartError tells the control plane why this processor cannot start
// (a bad or missing setting), before it exits: its machine then stops, the
// launch fails at once, and the start answers with this reason instead of
// a timeout. It needs only the interview's identity from env; without it
// (a warm processor, say) there is no one to tell. Best effort, bounded.
func ReportStartError(ctx context.Context, env map[string]string, cause error) {
	control, id, token := env[contract.EnvControlURL], env[contract.EnvSessionID], env[contract.EnvProcessorToken]
	if control == "" || id == "" || token == "" || cause == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg := cause.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	_ = newBridge(control, id, token).PostEvent(ctx, contract.Event{Type: contract.EventError, Message: "processor configuration: " + msg})
}
