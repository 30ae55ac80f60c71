package lifecycle

import "fmt"

// Kind says what sort of refusal an *Error is; web maps each to one HTTP
// status.
type Kind int

const (
	// NotFound: no such interview in the tenant.
	NotFound Kind = iota + 1
	// Conflict: the interview's state does not allow the operation.
	Conflict
	// NoMachines: this control plane has no machine provisioner.
	NoMachines
	// LaunchFailed: the interview's machine could not be launched (or
	// destroyed); the message says why.
	LaunchFailed
	// Unavailable: the control plane is stopping; retry in a moment.
	Unavailable
)

// Error is a refusal a client may see: Message is written for the client
// and leaks nothing internal; Cause (if any) is for the log.
type Error struct {
	Kind    Kind
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

func refuse(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// ErrNoMachines is what start and end answer without a provisioner.
var ErrNoMachines = refuse(NoMachines, "this control plane has no machine provisioner configured, so interviews cannot be started or ended")

// ErrStopping is what a start answers while the control plane stops.
var ErrStopping = refuse(Unavailable, "the control plane is restarting; try again in a moment")
