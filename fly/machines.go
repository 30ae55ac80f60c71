// Package fly runs one isolated processor per interview behind the Machines
// interface: as a local child process (the default) or as a Fly Machine.
package fly

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"candor/processor/contract"
)

// Spec describes the processor an interview needs.
type Spec struct {
	InterviewID, TenantID, TenantSlug, CandidateID, PositionID string
	Region                                                     string            // "" → backend default
	Env                                                        map[string]string // CANDOR_CONTROL_URL, CANDOR_PROCESSOR_TOKEN, and anything else for the processor
	Plan                                                       []byte            // JSON interview plan, delivered as a file; path in env CANDOR_PLAN_FILE
	Secrets                                                    map[string]string // tenant secrets (OPENAI_API_KEY ...): Fly app secrets / local child env
	// Attempt numbers the launches of one interview (1, 2, … for
	// replacements); Fly names the machine interview-<id>-<attempt>. 0 is 1.
	Attempt int
}

// Machine is a running processor as the control plane sees it.
type Machine struct {
	ID, Provider, App, Region, State string
	URL                              string            // base URL the control plane uses to reach the processor
	Headers                          map[string]string // headers to add when proxying to it (e.g. fly-force-instance-id)
	InterviewID, TenantID            string            // from metadata (List)
	// Notes say how the launch went where it did (a region without
	// capacity, skipped): the caller records them in the interview's events.
	Notes []string
}

// Machines launches and destroys processors.
type Machines interface {
	Launch(ctx context.Context, s Spec) (Machine, error) // returns when /healthz of the processor answers 200
	Destroy(ctx context.Context, m Machine) error        // idempotent
	List(ctx context.Context) ([]Machine, error)         // machines this backend knows/owns (for reconciliation)
	Close() error                                        // stop pool/children
}

// ErrCapacity reports that the provider has no room for a machine in the
// requested region; trying another region (or later) may succeed.
var ErrCapacity = errors.New("no machine capacity")

// ErrProcessorExited reports a processor whose machine stopped (or whose
// process exited) before it was healthy: it will not get healthy, so the
// launch fails at once. The processor posts its own reason to the bridge
// before exiting.
var ErrProcessorExited = errors.New("processor exited before it was healthy")

// ErrClosed is returned by Launch after Close.
var ErrClosed = errors.New("machines closed")

// Processor env names set by the backends (their home is package contract).
const (
	envSessionID   = contract.EnvSessionID
	envTenantID    = contract.EnvTenantID
	envCandidateID = contract.EnvCandidateID
	envPositionID  = contract.EnvPositionID
	envPort        = contract.EnvPort
	envAddr        = contract.EnvAddr
	envData        = contract.EnvData
	envPlanFile    = contract.EnvPlanFile
	envPoolToken   = contract.EnvPoolToken
	envRole        = contract.EnvRole
	// envMachineID lets a restarted control plane tell a leftover child of ours from an
	// unrelated process that reused its pid.
	envMachineID = contract.EnvMachineID

	// WebRTC media settings of a Fly machine with direct UDP.
	envWebRTCUDPPort  = contract.EnvWebRTCUDPPort
	envWebRTCTCPPort  = contract.EnvWebRTCTCPPort
	envWebRTCBindHost = contract.EnvWebRTCBindHost
	envPublicIPs      = contract.EnvPublicIPs
)

// processorEnv is the env every processor gets for s, whatever the backend:
// s.Env, then the tenant secrets of an allowed name (contract.TenantSecrets:
// never a platform variable), then the interview identity (which wins).
func processorEnv(s Spec) map[string]string {
	env := make(map[string]string, len(s.Env)+len(s.Secrets)+4)
	for k, v := range s.Env {
		env[k] = v
	}
	for k, v := range contract.TenantSecrets(s.Secrets) {
		env[k] = v
	}
	env[envSessionID] = s.InterviewID
	env[envTenantID] = s.TenantID
	env[envCandidateID] = s.CandidateID
	env[envPositionID] = s.PositionID
	return env
}

func validateSpec(s Spec) error {
	if s.InterviewID == "" || s.TenantID == "" {
		return errors.New("fly: spec needs InterviewID and TenantID")
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// waitHealthy polls url+"/healthz" until it answers 200, ctx ends or
// exited (may be nil) is closed. With needSession, a processor that
// answers {"state":"idle"} is not ready yet: /healthz answers as soon as it
// listens, but it serves an interview only once its session started
// (resume state read from the bridge, speech engine up), and Launch's
// caller hands its URL out at once. Polling starts at 2 ms and backs off to
// maxStep so a local child is seen ready within a few ms of binding its port.
func waitHealthy(ctx context.Context, client *http.Client, url string, headers map[string]string, maxStep time.Duration, exited <-chan struct{}, needSession bool) error {
	step := 2 * time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("processor not healthy: %w (last: %v)", ctx.Err(), last)
			}
			return fmt.Errorf("processor not healthy: %w", ctx.Err())
		case <-exited:
			return ErrProcessorExited
		case <-timer.C:
		}
		last = probeHealth(ctx, client, url, headers, needSession)
		if last == nil {
			return nil
		}
		timer.Reset(step)
		if step < maxStep {
			step = min(step*2, maxStep)
		}
	}
}

func probeHealth(ctx context.Context, client *http.Client, url string, headers map[string]string, needSession bool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
	if err != nil {
		return err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d", resp.StatusCode)
	}
	if needSession {
		var h struct {
			State string `json:"state"`
		}
		if json.Unmarshal(body, &h) == nil && h.State == "idle" {
			return errors.New("processor is up but has not started its interview yet")
		}
	}
	return nil
}
