package web

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"candor/processor/contract"
	"candor/realtime"
	"candor/store"
)

// The bridge API: how a processor reports to the control plane (DESIGN §5;
// the wire types are package contract's). Every call carries the interview's processor token, which
// is valid for that one interview only, and only while it is starting or
// running.

const (
	maxBridgeEntries = 500
	bridgeBodyLimit  = 8 << 20
	maxEntryTextLen  = 20000
	maxEventMessage  = 4000
	// bridgeEventLimit caps an event's body: a type, a media clock, a
	// message of maxEventMessage and a little data.
	bridgeEventLimit = 8 << 10
	// storedEventsPerMinute caps the events (not heartbeats) an
	// interview's processor may store per minute.
	storedEventsPerMinute = 60
	bridgeCredentialsKey  = "candor.bridge.credentials"
	bridgeIVKey           = "candor.bridge.interview"
	bridgeRetiredKey      = "candor.bridge.retired"
	recordingsDir         = "recordings"
)

var (
	errBadProcessorToken = errorf(CodeUnauthorized, "the processor token is not valid for this interview")
)

// bridgeAuth admits a request only with a processor token of the
// interview in the path, while that interview is starting or running: the
// current epoch's, or a retired epoch's that may still drain (then the
// request is marked retired, and the handlers let it deliver only what it
// heard before the hand-over). Wrong token, token of another interview and
// unknown interview all answer the same 401, so the bridge reveals
// nothing. It checks the store's cached credentials, so the entries hot
// path reads no SQL; routes that need the interview itself add
// withBridgeInterview.
func (s *Server) bridgeAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok, ok := bearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			return errBadProcessorToken
		}
		id := c.Param("id")
		pc, err := s.db.ProcessorCredentials(c.Request().Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return errBadProcessorToken
		}
		if err != nil {
			return fmt.Errorf("interview %s of a processor token: %w", id, err)
		}
		h := []byte(tokenHash(tok))
		var retired *store.RetiredProcessor
		if pc.TokenHash == "" || subtle.ConstantTimeCompare(h, []byte(pc.TokenHash)) != 1 {
			now := time.Now()
			for i, r := range pc.Retired {
				if subtle.ConstantTimeCompare(h, []byte(r.TokenHash)) == 1 && now.Before(r.DrainUntil) {
					retired = &pc.Retired[i]
				}
			}
			if retired == nil {
				return errBadProcessorToken
			}
		}
		if err := bridgeOpen(pc.Status); err != nil {
			return err
		}
		c.Set(bridgeCredentialsKey, pc)
		if retired != nil {
			c.Set(bridgeRetiredKey, retired)
		}
		return next(c)
	}
}

// bridgeRetired is the retired epoch of the request's processor, nil when
// it is the current one (after bridgeAuth).
func bridgeRetired(c echo.Context) *store.RetiredProcessor {
	r, _ := c.Get(bridgeRetiredKey).(*store.RetiredProcessor)
	return r
}

func bridgeOpen(st store.Status) error {
	if st != store.StatusStarting && st != store.StatusRunning {
		return errorf(CodeConflict, "the interview is %s; the bridge accepts nothing more for it", st)
	}
	return nil
}

// bridgeCredentials is the authenticated processor's interview (after
// bridgeAuth).
func bridgeCredentials(c echo.Context) store.ProcessorCredentials {
	return c.Get(bridgeCredentialsKey).(store.ProcessorCredentials)
}

// withBridgeInterview loads the interview row, for bridge routes that need
// more than whose it is (its status, media clock, ...), and checks again
// that it is open.
func (s *Server) withBridgeInterview(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		pc := bridgeCredentials(c)
		iv, err := s.db.Interview(c.Request().Context(), pc.TenantID, pc.InterviewID)
		if errors.Is(err, store.ErrNotFound) {
			return errBadProcessorToken
		}
		if err != nil {
			return fmt.Errorf("interview %s of a processor token: %w", pc.InterviewID, err)
		}
		if err := bridgeOpen(iv.Status); err != nil {
			return err
		}
		c.Set(bridgeIVKey, iv)
		return next(c)
	}
}

func bridgeInterview(c echo.Context) store.Interview {
	return c.Get(bridgeIVKey).(store.Interview)
}

// validateEntries checks every entry and returns them as store entries;
// any invalid entry rejects the batch with a message naming it. How far a
// seq may reach past the last stored one is the store's to check, in the
// same transaction that appends.
func validateEntries(in []contract.Entry, interviewID string) ([]store.Entry, error) {
	if in == nil {
		return nil, invalid("entries", "is required")
	}
	if len(in) > maxBridgeEntries {
		return nil, invalid("entries", "holds %d entries; at most %d per batch", len(in), maxBridgeEntries)
	}
	seen := make(map[int64]int, len(in))
	out := make([]store.Entry, 0, len(in))
	for i, e := range in {
		field := func(name string) string { return fmt.Sprintf("entries[%d].%s", i, name) }
		switch {
		case e.Seq < 1:
			return nil, invalid(field("seq"), "must be at least 1, not %d", e.Seq)
		case e.Speaker != store.SpeakerCandidate && e.Speaker != store.SpeakerInterviewer:
			return nil, invalid(field("speaker"), "must be \"candidate\" or \"interviewer\", not %q", e.Speaker)
		case strings.TrimSpace(e.Text) == "":
			return nil, invalid(field("text"), "is empty")
		case len(e.Text) > maxEntryTextLen:
			return nil, invalid(field("text"), "is longer than %d bytes", maxEntryTextLen)
		case e.StartMS < 0:
			return nil, invalid(field("start_ms"), "must not be negative")
		case e.EndMS < e.StartMS:
			return nil, invalid(field("end_ms"), "%d is before start_ms %d", e.EndMS, e.StartMS)
		case math.IsNaN(e.Confidence) || e.Confidence < 0 || e.Confidence > 1:
			return nil, invalid(field("confidence"), "must be between 0 and 1")
		}
		if j, dup := seen[e.Seq]; dup {
			return nil, invalid(field("seq"), "%d appears also in entries[%d]", e.Seq, j)
		}
		seen[e.Seq] = i
		out = append(out, store.Entry{
			InterviewID: interviewID, Seq: e.Seq, Speaker: e.Speaker, Text: strings.TrimSpace(e.Text),
			StartMS: e.StartMS, EndMS: e.EndMS, Confidence: e.Confidence,
		})
	}
	return out, nil
}

// handleBridgeEntries stores a batch of transcript entries under the
// seqs the store assigns. Entries the processor's epoch delivered before
// are skipped (a retried batch answers 200 and changes nothing); only
// newly stored entries are published, after the commit. A retired
// processor's entries that start at or after the hand-over are not stored
// (its replacement heard that part) and counted in past_handover.
func (s *Server) handleBridgeEntries(c echo.Context) error {
	var in contract.EntriesRequest
	if err := decodeLimit(c, &in, bridgeBodyLimit); err != nil {
		return err
	}
	ctx := c.Request().Context()
	iv := bridgeCredentials(c)
	es, err := validateEntries(in.Entries, iv.InterviewID)
	if err != nil {
		return err
	}
	epoch, answer := iv.Epoch, contract.EntriesAnswer{Received: len(es)}
	if r := bridgeRetired(c); r != nil {
		epoch, answer.Retired = r.Epoch, true
		kept := es[:0]
		for _, e := range es {
			if e.StartMS < r.HandoverMediaMS {
				kept = append(kept, e)
			}
		}
		answer.PastHandover = len(es) - len(kept)
		es = kept
	}
	defer s.entryLocks.Lock(iv.InterviewID)()
	inserted, err := s.db.Deliver(ctx, iv.TenantID, iv.InterviewID, epoch, es)
	if errors.Is(err, store.ErrInvalid) {
		// The store refuses a seq too far past the last stored one.
		return errorf(CodeBadRequest, "entries: %s", strings.TrimSuffix(err.Error(), ": "+store.ErrInvalid.Error()))
	}
	if err != nil {
		return fmt.Errorf("append entries: %w", err)
	}
	s.metrics.entries.Add(float64(len(inserted)))
	slices.SortFunc(inserted, func(a, b store.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, e := range inserted {
		s.hub.Publish("interview:"+iv.InterviewID, realtime.TypeTranscriptEntry, e.Seq, toEntryJSON(e))
	}
	answer.Inserted = len(inserted)
	return c.JSON(http.StatusOK, answer)
}

func (s *Server) handleBridgeEvents(c echo.Context) error {
	var in contract.Event
	if err := decodeLimit(c, &in, bridgeEventLimit); err != nil {
		return err
	}
	if in.MediaMS != nil && *in.MediaMS < 0 {
		return invalid("media_ms", "must not be negative")
	}
	if len(in.Message) > maxEventMessage {
		return invalid("message", "is longer than %d bytes", maxEventMessage)
	}
	ctx := c.Request().Context()
	iv := bridgeInterview(c)
	if r := bridgeRetired(c); r != nil {
		return s.retiredEvent(c, iv, r, in)
	}
	switch in.Type {
	case contract.EventReady, contract.EventEnded, contract.EventError, contract.EventFinished:
		// Stored events: at most storedEventsPerMinute per interview.
		// Heartbeats are not stored, so they never count and are never
		// refused.
		if !s.eventLimit.reserve(iv.ID) {
			return errorf(CodeTooManyRequests, "more than %d events a minute for this interview; events past that are refused", storedEventsPerMinute)
		}
	}
	data := map[string]any{}
	if in.MediaMS != nil {
		data["media_ms"] = *in.MediaMS
	}
	if in.Message != "" {
		data["message"] = in.Message
	}
	if len(in.Data) > 0 {
		data["data"] = in.Data
	}
	switch in.Type {
	case contract.EventReady:
		if err := s.lc.ProcessorReady(ctx, iv, data); err != nil {
			return err
		}
	case contract.EventHeartbeat:
		if in.MediaMS == nil {
			return invalid("media_ms", "is required for a heartbeat")
		}
		if err := s.db.RecordHeartbeat(ctx, iv.TenantID, iv.ID, *in.MediaMS, time.Now().UTC()); err != nil {
			return fmt.Errorf("record heartbeat: %w", err)
		}
	case contract.EventEnded:
		// The processor has delivered everything; the control plane
		// completes the interview in POST …/end (or supervision does).
		if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "processor.ended", data); err != nil {
			return fmt.Errorf("record processor.ended: %w", err)
		}
	case contract.EventError:
		if in.Message == "" {
			return invalid("message", "is required for an error event")
		}
		if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "error", data); err != nil {
			return fmt.Errorf("record error event: %w", err)
		}
	case contract.EventFinished:
		// The interviewer closed and the candidate stayed silent: end the
		// interview as a recruiter's end would. Not in this request: the
		// end asks this same processor to flush (POST /end), and the
		// processor is waiting for this answer.
		if iv.Status != store.StatusRunning && iv.Status != store.StatusStarting {
			break
		}
		if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "processor.finished", data); err != nil {
			return fmt.Errorf("record processor.finished: %w", err)
		}
		ectx, done := s.owned(2 * time.Minute)
		go func() {
			defer done()
			if _, err := s.lc.End(ectx, iv.TenantID, iv.ID); err != nil {
				s.log.Error("end after the closing line", "interview", iv.ID, "err", err)
			}
		}()
	case contract.EventDrained:
		// Only a retired processor drains; the current one has nothing
		// to say with it.
		return errorf(CodeConflict, "this processor is the interview's current one; only a replaced one drains")
	case "":
		return invalid("type", "is required")
	default:
		return invalid("type", "must be ready, heartbeat, ended, finished, error or drained, not %q", in.Type)
	}
	return c.JSON(http.StatusOK, contract.EventAnswer{OK: true})
}

// retiredEvent answers an event of a retired processor: every answer says
// it is retired, and none is acted on (a retired processor's ready, end or
// heartbeat must not move the interview or its clock) except drained,
// which ends its drain: its credential stops working, and its machine is
// destroyed.
func (s *Server) retiredEvent(c echo.Context, iv store.Interview, r *store.RetiredProcessor, in contract.Event) error {
	if in.Type != contract.EventDrained {
		return c.JSON(http.StatusOK, contract.EventAnswer{OK: true, Retired: true})
	}
	ctx := c.Request().Context()
	if _, err := s.db.MarkDrained(ctx, iv.TenantID, iv.ID, r.TokenHash); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("mark drained: %w", err)
	}
	data := map[string]any{"machine_id": r.MachineID, "epoch": r.Epoch, "handover_media_ms": r.HandoverMediaMS}
	if len(in.Data) > 0 {
		data["data"] = in.Data
	}
	if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "processor.drained", data); err != nil {
		return fmt.Errorf("record processor.drained: %w", err)
	}
	dctx, done := s.owned(2 * time.Minute)
	go func() {
		defer done()
		if err := s.lc.DestroyDrained(dctx, iv.TenantID, iv.ID, r.MachineID); err != nil {
			s.log.Warn("destroy a drained machine", "interview", iv.ID, "machine", r.MachineID, "err", err)
		}
	}()
	return c.JSON(http.StatusOK, contract.EventAnswer{OK: true, Retired: true})
}

// handleBridgeState tells a (replacement) processor where the interview
// stands: the seq and media clock to continue from (the later of the last
// heartbeat and the last entry's end), and what the interviewer has said
// so far.
func (s *Server) handleBridgeState(c echo.Context) error {
	iv := bridgeInterview(c)
	entries, err := s.db.Entries(c.Request().Context(), iv.TenantID, iv.ID, 0)
	if err != nil {
		return fmt.Errorf("entries: %w", err)
	}
	store.InMediaOrder(entries) // the interviewer's lines as they were said
	st := contract.State{MediaMS: iv.MediaMS, Status: string(iv.Status), InterviewerTexts: []string{},
		Epoch: bridgeCredentials(c).Epoch}
	if r := bridgeRetired(c); r != nil {
		st.Epoch, st.Retired = r.Epoch, true
	}
	for _, e := range entries {
		st.LastSeq = max(st.LastSeq, e.Seq)
		// The last heartbeat may predate the predecessor's last entries
		// (it beats once a second): the clock never goes back behind
		// what the transcript already holds.
		st.MediaMS = max(st.MediaMS, e.EndMS)
		if e.Speaker == store.SpeakerInterviewer {
			st.InterviewerTexts = append(st.InterviewerTexts, e.Text)
		}
	}
	st.InterviewerTurns = int64(len(st.InterviewerTexts))
	return c.JSON(http.StatusOK, st)
}
