package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"candor/fly"
	"candor/processor/contract"
	"candor/store"
)

// RegionRE is what a region name looks like; the API and the dashboard
// check an interview's region with it too.
var RegionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,31}$`)

// Start moves a scheduled interview to running on a new machine and returns
// it with how clients reach its processor. For an interview already running
// it answers the current processor (start is idempotent while running).
// nearRegion is the region nearest the candidate ("" if unknown): the
// machine runs in the interview's own region if it has one, else in
// nearRegion, else in Config.DefaultRegion. A nearRegion that is not a
// region name is ignored: anyone can send the header it comes from.
//
// The launch runs without any lock: End or Cancel during it answer at
// once, and the launch is then abandoned and its machine destroyed.
func (s *Service) Start(ctx context.Context, tenantID, id, nearRegion string) (store.Interview, Access, error) {
	if s.machines == nil {
		return store.Interview{}, Access{}, ErrNoMachines
	}
	if s.stopping.Load() {
		return store.Interview{}, Access{}, ErrStopping
	}
	if !RegionRE.MatchString(nearRegion) || !slices.Contains(s.Regions(), nearRegion) {
		nearRegion = ""
	}
	// A start while another start's launch is in flight (a double click,
	// the candidate joining as the recruiter starts) waits for that
	// launch and answers its outcome: waiting holds no lock.
	if o := s.currentOp(id); o != nil && o.kind == opLaunch {
		select {
		case <-o.done:
		case <-ctx.Done():
			return store.Interview{}, Access{}, ctx.Err()
		}
	}
	machineID := store.NewID("mch_")
	token := s.processorToken(id, machineID)
	hash := TokenHash(token)

	unlock := s.locks.Lock(id)
	iv, err := s.db.Interview(ctx, tenantID, id)
	if err != nil {
		unlock()
		return store.Interview{}, Access{}, notFound(err)
	}
	switch {
	case iv.Status == store.StatusRunning && s.currentOp(id) == nil:
		unlock()
		m, err := s.db.CurrentMachine(ctx, tenantID, id)
		if err != nil {
			return store.Interview{}, Access{}, fmt.Errorf("current machine of running interview %s: %w", id, err)
		}
		return iv, s.access(m), nil
	case iv.Status == store.StatusScheduled, LaunchRetryable(iv):
	case iv.Status == store.StatusStarting || iv.Status == store.StatusRunning:
		unlock()
		return store.Interview{}, Access{}, refuse(Conflict, "the interview is starting already; retry in a moment")
	case iv.Status == store.StatusFailed:
		unlock()
		return store.Interview{}, Access{}, refuse(Conflict, "the interview failed after it had started, so it cannot be started again; schedule a new interview")
	default:
		unlock()
		return store.Interview{}, Access{}, refuse(Conflict, "the interview is %s; only a scheduled interview can be started", iv.Status)
	}
	if time.Now().After(iv.ExpiresAt) {
		unlock()
		return store.Interview{}, Access{}, refuse(Conflict, "the interview's invitation expired at %s; schedule a new interview", iv.ExpiresAt.UTC().Format(time.RFC3339))
	}
	// The launch must not die with the client's request (a closed tab
	// would leave the interview half-started) but ends with Close, or
	// with an End that abandons it.
	lctx, done := s.owned(s.cfg.LaunchTimeout)
	lctx, cancel := context.WithCancel(lctx)
	o, busy := s.beginOp(id, opLaunch, cancel)
	if busy != nil {
		unlock()
		cancel()
		done()
		return store.Interview{}, Access{}, refuse(Conflict, "the interview is busy (%s); retry in a moment", busy.kind)
	}
	event := "interview.starting"
	if iv.Status == store.StatusFailed {
		event = "interview.retried"
	}
	res, err := s.step(ctx, store.Step{
		TenantID: tenantID, InterviewID: id, From: []store.Status{iv.Status}, To: store.StatusStarting,
		Event: event, ProcessorTokenHash: &hash,
	})
	if err != nil {
		s.finishOp(id, o)
		unlock()
		cancel()
		done()
		if errors.Is(err, store.ErrConflict) {
			return store.Interview{}, Access{}, refuse(Conflict, "the interview changed state meanwhile; reload and retry")
		}
		return store.Interview{}, Access{}, fmt.Errorf("mark interview starting: %w", err)
	}
	unlock()

	defer done()
	defer cancel()
	fm, lerr := s.launch(lctx, res.Interview, nearRegion, token)
	return s.finishLaunch(context.WithoutCancel(ctx), o, res.Interview, machineID, fm, lerr)
}

// finishLaunch records the outcome of interview iv's launch (machine fm
// with row id machineID, or lerr), or undoes it if the launch was
// abandoned or the interview moved on meanwhile.
func (s *Service) finishLaunch(ctx context.Context, o *op, iv store.Interview, machineID string, fm fly.Machine, lerr error) (store.Interview, Access, error) {
	unlock := s.locks.Lock(iv.ID)
	abandoned := s.finishOp(iv.ID, o)
	if abandoned || lerr != nil {
		unlock()
		if fm.ID != "" {
			s.destroyAbandoned(fm)
		}
		if abandoned {
			s.metrics.launches.WithLabelValues("abandoned").Inc()
			return store.Interview{}, Access{}, refuse(Conflict, "the interview was ended before its machine was up")
		}
		s.metrics.launches.WithLabelValues("failed").Inc()
		return store.Interview{}, Access{}, s.failStart(ctx, iv, lerr)
	}
	defer unlock()
	cur, err := s.db.Interview(ctx, iv.TenantID, iv.ID)
	if err != nil {
		s.destroyAbandoned(fm)
		return store.Interview{}, Access{}, fmt.Errorf("reload interview %s: %w", iv.ID, err)
	}
	region := fm.Region
	if region == "" {
		region = iv.Region
	}
	m := store.Machine{
		ID: machineID, Provider: fm.Provider, ProviderID: fm.ID, App: fm.App, Region: region,
		State: store.MachineRunning, URL: fm.URL,
	}
	st := store.Step{
		TenantID: iv.TenantID, InterviewID: iv.ID, From: []store.Status{store.StatusStarting, store.StatusRunning},
		Event: "machine.launched", NewMachine: &m,
		EventData: map[string]any{
			"machine_id": m.ID, "provider": m.Provider, "provider_id": m.ProviderID,
			"app": m.App, "region": m.Region, "url": m.URL,
		},
	}
	m.InterviewID = iv.ID
	st.EventData.(map[string]any)["processor_url"] = s.ProcessorURL(m)
	if cur.Status == store.StatusStarting {
		st.To = store.StatusRunning
	}
	res, err := s.step(ctx, st)
	if err != nil {
		// The machine runs but is not on record (the interview ended or
		// failed meanwhile): destroy it rather than leak it.
		s.destroyAbandoned(fm)
		if errors.Is(err, store.ErrConflict) {
			return store.Interview{}, Access{}, refuse(Conflict, "the interview changed state while its machine started")
		}
		return store.Interview{}, Access{}, fmt.Errorf("record launched machine: %w", err)
	}
	s.metrics.launches.WithLabelValues("ok").Inc()
	s.recordPlacement(ctx, iv, res.Machine, fm)
	return res.Interview, s.access(res.Machine), nil
}

// ICETTL is how long an interview's TURN credentials stay valid: longer
// than any interview.
const ICETTL = 24 * time.Hour

// LaunchRetryable reports whether failed interview iv may be started again:
// it failed before it ever ran, i.e. no launch succeeded, which the store
// records as started_at still unset. Such an interview lost nothing, so
// its invite stays valid and start (API, dashboard Retry, the candidate's
// join) launches again. An interview that failed after running stays
// failed: part of it happened, and a second run would mix two
// conversations in one transcript.
func LaunchRetryable(iv store.Interview) bool {
	return iv.Status == store.StatusFailed && iv.StartedAt == nil
}

// regionFor is where iv's machine runs: the interview's own region, else
// near (the candidate's edge region, or the region of the machine being
// replaced), else the configured default.
func (s *Service) regionFor(iv store.Interview, near string) string {
	switch {
	case iv.Region != "":
		return iv.Region
	case near != "":
		return near
	}
	return s.cfg.DefaultRegion
}

// launch starts interview iv's processor (in regionFor(iv, near)) with
// bridge token token. It records nothing: the caller commits the outcome.
func (s *Service) launch(ctx context.Context, iv store.Interview, near, token string) (fly.Machine, error) {
	tenant, err := s.db.Tenant(ctx, iv.TenantID)
	if err != nil {
		return fly.Machine{}, fmt.Errorf("tenant: %w", err)
	}
	pos, err := s.db.Position(ctx, iv.TenantID, iv.PositionID)
	if err != nil {
		return fly.Machine{}, fmt.Errorf("position: %w", err)
	}
	secrets, platform, err := s.tenantProcessorEnv(ctx, iv.TenantID)
	if err != nil {
		return fly.Machine{}, err
	}
	plan, err := json.Marshal(newPlan(pos))
	if err != nil {
		return fly.Machine{}, fmt.Errorf("encode plan: %w", err)
	}
	env := maps.Clone(s.cfg.ProcessorEnv)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, platform)
	env[contract.EnvControlURL] = s.cfg.PublicURL
	if s.cfg.ICEServers != "" {
		ice, err := contract.ParseICEServers(s.cfg.ICEServers, s.cfg.TURNSecret, iv.ID, time.Now().Add(ICETTL))
		if err != nil {
			return fly.Machine{}, fmt.Errorf("CANDOR_ICE_SERVERS: %w", err)
		}
		env[contract.EnvICEServers] = contract.FormatICEServers(ice)
	}
	env[contract.EnvProcessorToken] = token
	env[contract.EnvClientToken] = s.ClientToken(iv.ID)
	return s.machines.Launch(ctx, fly.Spec{
		InterviewID: iv.ID, TenantID: iv.TenantID, TenantSlug: tenant.Slug,
		CandidateID: iv.CandidateID, PositionID: iv.PositionID,
		Region: s.regionFor(iv, near), Env: env, Plan: plan, Secrets: secrets,
	})
}

// failStart marks a start that could not launch its machine as failed, with
// an error event, and returns the error the client sees.
func (s *Service) failStart(ctx context.Context, iv store.Interview, cause error) error {
	msg := "the interview machine could not be launched: " + cause.Error()
	if errors.Is(cause, context.DeadlineExceeded) {
		msg = fmt.Sprintf("the interview machine did not become ready within %s", s.cfg.LaunchTimeout)
	}
	if errors.Is(cause, fly.ErrCapacity) {
		msg = "no machine capacity in region " + iv.Region + "; schedule the interview in another region or retry later"
	}
	if errors.Is(cause, fly.ErrProcessorExited) {
		if reason := s.processorStartError(ctx, iv); reason != "" {
			msg = "the interview processor could not start: " + reason
		}
	}
	unlock := s.locks.Lock(iv.ID)
	defer unlock()
	_, err := s.step(ctx, store.Step{
		TenantID: iv.TenantID, InterviewID: iv.ID, From: []store.Status{store.StatusStarting, store.StatusRunning},
		To: store.StatusFailed, Event: "error", EventData: map[string]string{"message": msg},
		OutboxData: map[string]any{"reason": msg},
	})
	if errors.Is(err, store.ErrConflict) {
		// Ended meanwhile: the end's outcome stands.
		return refuse(Conflict, "the interview was ended before its machine was up")
	}
	if err != nil {
		return fmt.Errorf("launch interview %s: %w", iv.ID, errors.Join(fmt.Errorf("mark interview failed: %w", err), cause))
	}
	return &Error{Kind: LaunchFailed, Message: msg, Cause: cause}
}

// recordPlacement records where machine m went, and why not where it was
// asked to (the backend's notes), as machine.placement events.
func (s *Service) recordPlacement(ctx context.Context, iv store.Interview, m store.Machine, fm fly.Machine) {
	for _, note := range fm.Notes {
		if err := s.Record(ctx, iv.TenantID, iv.ID, "machine.placement", map[string]string{"note": note, "region": m.Region}); err != nil {
			s.log.Warn("record machine placement", "interview", iv.ID, "err", err)
		}
	}
}

// processorStartError is the reason a processor posted to the bridge before
// exiting at start-up (processor.ReportStartError), if one arrived during
// this launch.
func (s *Service) processorStartError(ctx context.Context, iv store.Interview) string {
	evs, err := s.db.Events(ctx, iv.TenantID, iv.ID)
	if err != nil {
		return ""
	}
	since := time.Now().Add(-s.cfg.LaunchTimeout - time.Minute)
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if e.Type != "error" || e.At.Before(since) {
			continue
		}
		var d struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(e.Data, &d) == nil && strings.HasPrefix(d.Message, "processor configuration: ") {
			return strings.TrimPrefix(d.Message, "processor configuration: ")
		}
	}
	return ""
}

// destroyAbandoned destroys machine fm, which no live row accounts for, in
// the background; reconciliation catches it if this fails.
func (s *Service) destroyAbandoned(fm fly.Machine) {
	s.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.EndTimeout)
		defer cancel()
		if err := s.machines.Destroy(ctx, fm); err != nil {
			s.log.Warn("destroy abandoned machine", "machine", fm.ID, "interview", fm.InterviewID, "err", err)
		}
	})
}

// newPlan is the interview plan a processor receives.
func newPlan(p store.Position) contract.Plan {
	plan := contract.Plan{
		Position:  contract.PlanPosition{Title: p.Title, Description: p.Description},
		Questions: nonNil(p.Questions),
		Rubric:    []contract.PlanRubric{},
		// The processor fills the rest of the interviewer in (greeting
		// with this name, closing, voice default).
		Interviewer: contract.PlanInterviewer{Name: p.InterviewerName, Voice: p.Voice},
	}
	for _, r := range p.Rubric {
		plan.Rubric = append(plan.Rubric, contract.PlanRubric{Name: r.Name, Description: r.Description, Weight: r.Weight})
	}
	return plan
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// notFound turns the store's ErrNotFound into a client-facing refusal.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return refuse(NotFound, "no such interview")
	}
	return err
}

func (k opKind) String() string {
	switch k {
	case opLaunch:
		return "launching its machine"
	case opEnd:
		return "ending"
	case opReplace:
		return "replacing its machine"
	}
	return "busy"
}
