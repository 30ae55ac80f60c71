package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"candor/fly"
	"candor/processor/contract"
	"candor/realtime"
	"candor/store"
)

// Interview life cycle: start launches the interview's machine, end flushes
// and destroys it. Both serialize per interview (interviewLocks) so a
// double click cannot launch two machines; across control-plane restarts
// the status guard in the store (SetInterviewStatus from …) holds.

var errNoMachines = errorf(CodeNotImplemented, "this control plane has no machine provisioner configured, so interviews cannot be started or ended")

// interviewLocks serializes start/end of the same interview in this process.
type interviewLocks struct {
	stripes [64]sync.Mutex
}

func (l *interviewLocks) lock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &l.stripes[h.Sum32()%uint32(len(l.stripes))]
	m.Lock()
	return m.Unlock
}

// exactLocks serializes work on the same interview, and only on the same
// one. The bridge holds its lock across a group commit; striped locks made
// every interview sharing a stripe wait behind that commit.
type exactLocks struct {
	mu    sync.Mutex
	locks map[string]*exactLock
}

// exactLock lives in exactLocks.locks while anyone holds or waits for it.
type exactLock struct {
	sync.Mutex
	users int // guarded by exactLocks.mu
}

// lock locks interview id and returns its unlock.
func (l *exactLocks) lock(id string) func() {
	l.mu.Lock()
	m := l.locks[id]
	if m == nil {
		if l.locks == nil {
			l.locks = make(map[string]*exactLock)
		}
		m = &exactLock{}
		l.locks[id] = m
	}
	m.users++
	l.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		l.mu.Lock()
		if m.users--; m.users == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}

type processorJSON struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

type startJSON struct {
	Interview interviewJSON `json:"interview"`
	Processor processorJSON `json:"processor"`
}

func (s *Server) handleStartInterview(c echo.Context) error {
	if s.machines == nil {
		return errNoMachines
	}
	p := principalOf(c)
	iv, m, err := s.startInterview(c.Request().Context(), p.TenantID, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, startJSON{
		Interview: s.toInterviewJSON(iv, &m),
		Processor: processorJSON{URL: s.processorURL(m), Token: s.processorToken(iv.ID, m.ID)},
	})
}

// startInterview moves a scheduled interview to running on a new machine
// and returns it with that machine. For an interview already running it
// returns the current machine (start is idempotent while running).
func (s *Server) startInterview(ctx context.Context, tenantID, id string) (store.Interview, store.Machine, error) {
	return s.startInterviewIn(ctx, tenantID, id, "")
}

// startInterviewIn is startInterview with the region nearest the candidate
// (the Fly-Region header of their join request; "" if unknown). The
// machine runs in the interview's own region if it has one, else in
// nearRegion, else in Config.DefaultRegion. A nearRegion that is not a
// region name is ignored: anyone can send that header.
func (s *Server) startInterviewIn(ctx context.Context, tenantID, id, nearRegion string) (store.Interview, store.Machine, error) {
	if !regionRE.MatchString(nearRegion) || (len(s.cfg.Regions) > 0 && !slices.Contains(s.cfg.Regions, nearRegion)) {
		nearRegion = ""
	}
	unlock := s.locks.lock(id)
	defer unlock()

	iv, err := s.db.Interview(ctx, tenantID, id)
	if err != nil {
		return store.Interview{}, store.Machine{}, notFound(err, "interview")
	}
	switch iv.Status {
	case store.StatusRunning:
		m, err := s.db.CurrentMachine(ctx, tenantID, id)
		if err != nil {
			return store.Interview{}, store.Machine{}, fmt.Errorf("current machine of running interview %s: %w", id, err)
		}
		return iv, m, nil
	case store.StatusScheduled:
	case store.StatusStarting:
		return store.Interview{}, store.Machine{}, errorf(CodeConflict, "the interview is starting already; retry in a moment")
	case store.StatusFailed:
		if !launchRetryable(iv) {
			return store.Interview{}, store.Machine{}, errorf(CodeConflict, "the interview failed after it had started, so it cannot be started again; schedule a new interview")
		}
	default:
		return store.Interview{}, store.Machine{}, errorf(CodeConflict, "the interview is %s; only a scheduled interview can be started", iv.Status)
	}
	if time.Now().After(iv.ExpiresAt) {
		return store.Interview{}, store.Machine{}, errorf(CodeConflict, "the interview's invitation expired at %s; schedule a new interview", iv.ExpiresAt.UTC().Format(time.RFC3339))
	}

	retry := iv.Status == store.StatusFailed
	iv, err = s.db.SetInterviewStatus(ctx, tenantID, id, store.StatusStarting, iv.Status)
	if errors.Is(err, store.ErrConflict) {
		return store.Interview{}, store.Machine{}, errorf(CodeConflict, "the interview changed state meanwhile; reload and retry")
	}
	if err != nil {
		return store.Interview{}, store.Machine{}, fmt.Errorf("mark interview starting: %w", err)
	}
	if retry {
		if err := s.recordEvent(ctx, tenantID, id, "interview.retried", nil); err != nil {
			return store.Interview{}, store.Machine{}, err
		}
	}
	s.publishStatus(iv)

	// The launch must not die with the client's request (a closed tab
	// would leave the interview half-started) but must end with the server.
	lctx, done := s.owned(s.cfg.LaunchTimeout)
	defer done()
	m, err := s.launch(lctx, iv, nearRegion)
	if err != nil {
		s.metrics.launches.WithLabelValues("failed").Inc()
		return store.Interview{}, store.Machine{}, s.failStart(context.WithoutCancel(ctx), iv, err)
	}
	s.metrics.launches.WithLabelValues("ok").Inc()

	iv, err = s.db.SetInterviewStatus(lctx, tenantID, id, store.StatusRunning, store.StatusStarting, store.StatusRunning)
	if err != nil {
		return store.Interview{}, store.Machine{}, fmt.Errorf("mark interview running: %w", err)
	}
	s.publishStatus(iv)
	return iv, m, nil
}

// launchRetryable reports whether failed interview iv may be started again:
// it failed before it ever ran, i.e. no launch succeeded, which the store
// records as started_at still unset (it is set when an interview first
// enters running, and startInterview enters running only once its machine
// is up). Such an interview lost nothing, so its invite stays valid and
// start (API, dashboard Retry, the candidate's join) launches again. An
// interview that failed after running (its processor was lost and could
// not be replaced) stays failed: part of it happened, and a second run
// would mix two conversations in one transcript.
func launchRetryable(iv store.Interview) bool {
	return iv.Status == store.StatusFailed && iv.StartedAt == nil
}

// regionFor is where iv's machine runs: the interview's own region, else
// near (the candidate's edge region, or the region of the machine being
// replaced), else the configured default.
func (s *Server) regionFor(iv store.Interview, near string) string {
	switch {
	case iv.Region != "":
		return iv.Region
	case near != "":
		return near
	}
	return s.cfg.DefaultRegion
}

// launch starts the interview's processor (in regionFor(iv, near)) and
// records its machine.
func (s *Server) launch(ctx context.Context, iv store.Interview, near string) (store.Machine, error) {
	tenant, err := s.db.Tenant(ctx, iv.TenantID)
	if err != nil {
		return store.Machine{}, fmt.Errorf("tenant: %w", err)
	}
	pos, err := s.db.Position(ctx, iv.TenantID, iv.PositionID)
	if err != nil {
		return store.Machine{}, fmt.Errorf("position: %w", err)
	}
	secrets, platform, err := s.tenantProcessorEnv(ctx, iv.TenantID)
	if err != nil {
		return store.Machine{}, err
	}
	plan, err := json.Marshal(newPlan(pos))
	if err != nil {
		return store.Machine{}, fmt.Errorf("encode plan: %w", err)
	}
	region := s.regionFor(iv, near)
	// The machine row is written once the launch succeeded (its provider
	// is known only then), but its id is chosen now: the processor token
	// is derived from it.
	machineID := store.NewID("mch_")
	token := s.processorToken(iv.ID, machineID)
	if err := s.db.SetProcessorTokenHash(ctx, iv.TenantID, iv.ID, tokenHash(token)); err != nil {
		return store.Machine{}, fmt.Errorf("store processor token: %w", err)
	}

	env := maps.Clone(s.cfg.ProcessorEnv)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, platform)
	env[contract.EnvControlURL] = s.cfg.PublicURL
	if s.cfg.ICEServers != "" {
		ice, err := s.iceServers(iv.ID)
		if err != nil {
			return store.Machine{}, err
		}
		env[contract.EnvICEServers] = contract.FormatICEServers(ice)
	}
	env[contract.EnvProcessorToken] = token
	fm, err := s.machines.Launch(ctx, fly.Spec{
		InterviewID: iv.ID, TenantID: iv.TenantID, TenantSlug: tenant.Slug,
		CandidateID: iv.CandidateID, PositionID: iv.PositionID,
		Region: region, Env: env, Plan: plan, Secrets: secrets,
	})
	if err != nil {
		return store.Machine{}, err
	}
	if fm.Region != "" {
		region = fm.Region
	}
	row, err := s.db.CreateMachine(ctx, store.Machine{
		ID: machineID, TenantID: iv.TenantID, InterviewID: iv.ID,
		Provider: fm.Provider, ProviderID: fm.ID, App: fm.App, Region: region,
		State: store.MachineRunning, URL: fm.URL,
	})
	if err != nil {
		// The machine runs but is not on record: destroy it rather than
		// leak it.
		derr := s.machines.Destroy(context.WithoutCancel(ctx), fm)
		return store.Machine{}, errors.Join(fmt.Errorf("record launched machine: %w", err), derr)
	}
	if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "machine.launched", map[string]any{
		"machine_id": row.ID, "provider": row.Provider, "provider_id": row.ProviderID,
		"app": row.App, "region": row.Region, "url": row.URL, "processor_url": s.processorURL(row),
	}); err != nil {
		return row, err
	}
	for _, note := range fm.Notes {
		// Where the machine went, and why not where it was asked to.
		if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "machine.placement", map[string]string{"note": note, "region": row.Region}); err != nil {
			return row, err
		}
	}
	return row, nil
}

// processorStartError is the reason a processor posted to the bridge before
// exiting at start-up (processor.ReportStartError), if one arrived during
// this launch.
func (s *Server) processorStartError(ctx context.Context, iv store.Interview) string {
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

// failStart marks a start that could not launch its machine as failed, with
// an error event, and returns the error the client sees.
func (s *Server) failStart(ctx context.Context, iv store.Interview, cause error) error {
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
	var errs []error
	if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "error", map[string]string{"message": msg}); err != nil {
		errs = append(errs, fmt.Errorf("record launch error: %w", err))
	}
	failed, err := s.db.SetInterviewStatus(ctx, iv.TenantID, iv.ID, store.StatusFailed, store.StatusStarting, store.StatusRunning)
	if err != nil {
		errs = append(errs, fmt.Errorf("mark interview failed: %w", err))
	} else {
		s.publishStatus(failed)
	}
	if len(errs) > 0 {
		return fmt.Errorf("launch interview %s: %w", iv.ID, errors.Join(append(errs, cause)...))
	}
	return &launchError{public: errorf(CodeBadGateway, "%s", msg), cause: cause}
}

// launchError is the client-facing launch failure (public), keeping the
// cause for the log.
type launchError struct {
	public *Error
	cause  error
}

func (e *launchError) Error() string   { return e.public.Error() }
func (e *launchError) Unwrap() []error { return []error{e.public, e.cause} }

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

// processorURL is where browsers reach an interview's processor: its own
// address with the local provisioner; a control-plane route (/p/<id>) for
// machines only the control plane can reach.
func (s *Server) processorURL(m store.Machine) string {
	if m.Provider == fly.ProviderLocal || m.Provider == "" {
		return m.URL
	}
	return s.cfg.PublicURL + "/p/" + m.InterviewID
}

func (s *Server) handleEndInterview(c echo.Context) error {
	if s.machines == nil {
		return errNoMachines
	}
	iv, err := s.endInterview(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return err
	}
	m, err := s.latestMachine(c, iv)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.toInterviewJSON(iv, m))
}

// endInterview asks the processor to flush everything it holds (so the
// transcript is complete when this returns), destroys its machine, and
// marks the interview completed. Ending a completed interview is a no-op.
func (s *Server) endInterview(ctx context.Context, tenantID, id string) (store.Interview, error) {
	unlock := s.locks.lock(id)
	defer unlock()

	iv, err := s.db.Interview(ctx, tenantID, id)
	if err != nil {
		return store.Interview{}, notFound(err, "interview")
	}
	switch iv.Status {
	case store.StatusCompleted:
		return iv, nil
	case store.StatusStarting, store.StatusRunning:
	default:
		return store.Interview{}, errorf(CodeConflict, "the interview is %s; only a started interview can be ended", iv.Status)
	}

	ectx, done := s.owned(s.cfg.EndTimeout + time.Minute)
	defer done()
	flushed := -1
	m, err := s.db.CurrentMachine(ectx, tenantID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// No live machine (its launch failed or it was already destroyed).
	case err != nil:
		return store.Interview{}, fmt.Errorf("current machine: %w", err)
	default:
		if m.URL != "" {
			n, err := s.flushProcessor(ectx, m)
			if err != nil {
				// The recording of what was said is what matters most,
				// but a processor that cannot flush must not keep the
				// machine alive: note it and go on.
				if eerr := s.recordEvent(ectx, tenantID, id, "error", map[string]string{
					"message": "the processor did not confirm its final flush: " + err.Error(),
				}); eerr != nil {
					return store.Interview{}, fmt.Errorf("record flush error: %w", eerr)
				}
			}
			flushed = n
		}
		if err := s.destroy(ectx, m); err != nil {
			return store.Interview{}, errorf(CodeBadGateway, "the interview machine could not be destroyed (%v); retry ending the interview", err)
		}
	}

	iv, err = s.db.SetInterviewStatus(ectx, tenantID, id, store.StatusCompleted, store.StatusStarting, store.StatusRunning)
	if errors.Is(err, store.ErrConflict) {
		// Raced with something else ending it: answer the current state.
		return s.db.Interview(ectx, tenantID, id)
	}
	if err != nil {
		return store.Interview{}, fmt.Errorf("mark interview completed: %w", err)
	}
	data := map[string]any{"machine_id": m.ID}
	if flushed >= 0 {
		data["flushed_entries"] = flushed
	}
	if err := s.recordEvent(ectx, tenantID, id, "interview.ended", data); err != nil {
		return store.Interview{}, fmt.Errorf("record interview.ended: %w", err)
	}
	s.metrics.interviewsEnded.Inc()
	s.publishStatus(iv)
	return iv, nil
}

func (s *Server) handleCancelInterview(c echo.Context) error {
	iv, err := s.cancelInterview(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return err
	}
	m, err := s.latestMachine(c, iv)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.toInterviewJSON(iv, m))
}

// cancelInterview calls off an interview that has not started: a scheduled
// one, or one whose launch failed before it ever ran (launchRetryable), so
// its invite link stops working. It needs no machine provisioner: there is
// no machine to stop. Cancelling a cancelled interview is a no-op; a
// started one is ended instead (409).
func (s *Server) cancelInterview(ctx context.Context, tenantID, id string) (store.Interview, error) {
	unlock := s.locks.lock(id)
	defer unlock()

	iv, err := s.db.Interview(ctx, tenantID, id)
	if err != nil {
		return store.Interview{}, notFound(err, "interview")
	}
	switch {
	case iv.Status == store.StatusCancelled:
		return iv, nil
	case iv.Status == store.StatusScheduled, launchRetryable(iv):
	case iv.Status == store.StatusStarting || iv.Status == store.StatusRunning:
		return store.Interview{}, errorf(CodeConflict, "the interview is %s; end it instead of cancelling it", iv.Status)
	default:
		return store.Interview{}, errorf(CodeConflict, "the interview is %s; only a scheduled interview can be cancelled", iv.Status)
	}
	from := iv.Status
	iv, err = s.db.SetInterviewStatus(ctx, tenantID, id, store.StatusCancelled, from)
	if errors.Is(err, store.ErrConflict) {
		return store.Interview{}, errorf(CodeConflict, "the interview changed state meanwhile; reload and retry")
	}
	if err != nil {
		return store.Interview{}, fmt.Errorf("mark interview cancelled: %w", err)
	}
	if err := s.recordEvent(ctx, tenantID, id, "interview.cancelled", map[string]string{"from": string(from)}); err != nil {
		return store.Interview{}, err
	}
	s.publishStatus(iv)
	return iv, nil
}

// flushProcessor calls the processor's POST /end and returns how many
// entries it delivered; bounded by Config.EndTimeout.
func (s *Server) flushProcessor(ctx context.Context, m store.Machine) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.EndTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(m.URL, "/")+"/end", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.processorToken(m.InterviewID, m.ID))
	for k, v := range machineHeaders(m) {
		req.Header.Set(k, v)
	}
	res, err := s.processorClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST /end answered %d: %s", res.StatusCode, strings.TrimSpace(string(body)))
	}
	var out struct {
		Entries int `json:"entries"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, fmt.Errorf("POST /end answered 200 with a body that is not {\"entries\":n}: %w", err)
	}
	return out.Entries, nil
}

// machineHeaders are the headers that route a request to exactly this
// machine (Fly's proxy needs fly-force-instance-id).
func machineHeaders(m store.Machine) map[string]string {
	if m.Provider == fly.ProviderFly && m.ProviderID != "" {
		return map[string]string{"fly-force-instance-id": m.ProviderID}
	}
	return nil
}

// destroy destroys the machine and records it destroyed with its billed
// seconds (creation to destruction).
func (s *Server) destroy(ctx context.Context, m store.Machine) error {
	m.State = store.MachineStopping
	if err := s.db.UpdateMachine(ctx, m); err != nil {
		return fmt.Errorf("mark machine stopping: %w", err)
	}
	fm := flyMachine(m)
	if err := s.machines.Destroy(ctx, fm); err != nil {
		return err
	}
	return s.retire(ctx, m, store.MachineDestroyed, time.Now().UTC())
}

// flyMachine is the backend's view of machine row m.
func flyMachine(m store.Machine) fly.Machine {
	return fly.Machine{
		ID: m.ProviderID, Provider: m.Provider, App: m.App, Region: m.Region, State: m.State,
		URL: m.URL, Headers: machineHeaders(m), InterviewID: m.InterviewID, TenantID: m.TenantID,
	}
}

// publishStatus tells the interview's and the tenant's subscribers about a
// status change. Call it only after the change is committed.
func (s *Server) publishStatus(iv store.Interview) {
	data := statusJSON{ID: iv.ID, Status: iv.Status, Interview: s.toInterviewJSON(iv, nil)}
	s.hub.Publish("interview:"+iv.ID, realtime.TypeInterviewStatus, 0, data)
	s.hub.Publish("tenant:"+iv.TenantID, realtime.TypeInterviewStatus, 0, data)
}

// interviewByInvite returns the interview an invite token opens. Unknown
// tokens and expired invites answer 404 (an *Error), so the candidate page
// can show the message as is.
func (s *Server) interviewByInvite(ctx context.Context, token string) (store.Interview, error) {
	iv, err := s.db.InterviewByInviteHash(ctx, tokenHash(token))
	if errors.Is(err, store.ErrNotFound) {
		return store.Interview{}, errorf(CodeNotFound, "this invite link is not valid; ask the recruiter for a new one")
	}
	if err != nil {
		return store.Interview{}, fmt.Errorf("interview by invite: %w", err)
	}
	if iv.Status == store.StatusScheduled && time.Now().After(iv.ExpiresAt) {
		return store.Interview{}, errorf(CodeNotFound, "this invite link expired on %s; ask the recruiter for a new one", iv.ExpiresAt.UTC().Format("2 January 2006"))
	}
	return iv, nil
}

// candidateAccess is what the candidate page needs to talk to the
// interview's processor: its URL and the candidate token (never the
// processor token itself). ErrNotFound when no machine is live.
func (s *Server) candidateAccess(ctx context.Context, iv store.Interview) (processorURL, token string, err error) {
	m, err := s.db.CurrentMachine(ctx, iv.TenantID, iv.ID)
	if err != nil {
		return "", "", err
	}
	return s.processorURL(m), contract.CandidateToken(s.processorToken(iv.ID, m.ID), iv.ID), nil
}
