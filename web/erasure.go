package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/lifecycle"
)

// actorOf is who the audit log says acted: the user, or the API key.
func actorOf(p *principal) store.Actor {
	if p.APIKeyID != "" {
		return store.Actor{Kind: "api_key", ID: p.APIKeyID}
	}
	return store.Actor{Kind: "user", ID: p.UserID}
}

func (s *Server) handleEraseInterview(c echo.Context) error {
	ctx := c.Request().Context()
	p := principalOf(c)
	iv, err := s.db.Interview(ctx, p.TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	if err := s.endBeforeErasure(ctx, iv); err != nil {
		return err
	}
	s.removeInterviewFiles(iv.TenantID, iv.ID, iv.RecordingPath, nil)
	erased, err := s.db.EraseInterview(ctx, p.TenantID, iv.ID, actorOf(p))
	if err != nil {
		return notFound(err, "interview")
	}
	s.removeErasedFiles(p.TenantID, erased)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleEraseCandidate(c echo.Context) error {
	ctx := c.Request().Context()
	p := principalOf(c)
	if _, err := s.db.Candidate(ctx, p.TenantID, c.Param("id")); err != nil {
		return notFound(err, "candidate")
	}
	ivs, err := s.db.ListInterviews(ctx, p.TenantID, store.InterviewFilter{})
	if err != nil {
		return err
	}
	for _, iv := range ivs {
		if iv.CandidateID != c.Param("id") {
			continue
		}
		if err := s.endBeforeErasure(ctx, iv); err != nil {
			return err
		}
		s.removeInterviewFiles(iv.TenantID, iv.ID, iv.RecordingPath, nil)
	}
	erased, err := s.db.EraseCandidate(ctx, p.TenantID, c.Param("id"), actorOf(p))
	if err != nil {
		return notFound(err, "candidate")
	}
	s.removeErasedFiles(p.TenantID, erased)
	return c.NoContent(http.StatusNoContent)
}

// endBeforeErasure ends a running interview through the lifecycle, so its
// processor stops and its machine is destroyed before its data goes.
func (s *Server) endBeforeErasure(ctx context.Context, iv store.Interview) error {
	if iv.Status != store.StatusRunning && iv.Status != store.StatusStarting {
		return nil
	}
	if !s.lc.HasMachines() {
		return nil // nothing can be running without a provisioner
	}
	if _, err := s.lc.End(ctx, iv.TenantID, iv.ID); err != nil {
		var e *lifecycle.Error
		if errors.As(err, &e) && (e.Kind == lifecycle.Conflict || e.Kind == lifecycle.NotFound) {
			return nil // it ended (or went) meanwhile
		}
		return fmt.Errorf("end interview %s before erasing it: %w", iv.ID, err)
	}
	return nil
}

// machineDirName is what a local processor's working directory may be
// called (fly/local.go: DataDir/processors/<id>).
var machineDirName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

func (s *Server) removeErasedFiles(tenantID string, e store.Erased) {
	for i, id := range e.InterviewIDs {
		rec := ""
		if i < len(e.RecordingPaths) {
			rec = e.RecordingPaths[i]
		}
		s.removeInterviewFiles(tenantID, id, rec, nil)
	}
	// Any recording path (the list is not aligned with the IDs when an
	// interview had none).
	for _, rec := range e.RecordingPaths {
		s.removeDataFile(rec)
	}
	for _, m := range e.MachineIDs {
		if !machineDirName.MatchString(m) {
			continue
		}
		procs := filepath.Join(s.cfg.DataDir, "processors")
		for _, p := range []string{filepath.Join(procs, m), filepath.Join(procs, m+".log"), filepath.Join(procs, m+".pid")} {
			if err := os.RemoveAll(p); err != nil {
				s.log.Error("erase processor files", "machine", m, "err", err)
			}
		}
	}
}

// removeInterviewFiles removes everything under the data dir that holds the
// interview's media: its recording segments, the legacy single recording
// and the video.
func (s *Server) removeInterviewFiles(tenantID, interviewID, recordingPath string, _ []string) {
	if !machineDirName.MatchString(tenantID) || !machineDirName.MatchString(interviewID) {
		return
	}
	dir := filepath.Join(s.cfg.DataDir, recordingsDir, tenantID)
	if err := os.RemoveAll(filepath.Join(dir, interviewID)); err != nil {
		s.log.Error("erase recordings", "interview", interviewID, "err", err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, interviewID+".*"))
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("erase recording", "interview", interviewID, "err", err)
		}
	}
	s.removeDataFile(recordingPath)
}

// removeDataFile removes rel (relative to the data dir) if it stays inside
// the recordings folder.
func (s *Server) removeDataFile(rel string) {
	if rel == "" {
		return
	}
	clean := filepath.Clean(filepath.FromSlash(rel))
	if !strings.HasPrefix(clean, recordingsDir+string(filepath.Separator)) {
		return
	}
	if err := os.RemoveAll(filepath.Join(s.cfg.DataDir, clean)); err != nil {
		s.log.Error("erase recording", "err", err)
	}
}

type auditJSON struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Actor   store.Actor     `json:"actor"`
	Action  string          `json:"action"`
	Subject auditSubject    `json:"subject"`
	Data    json.RawMessage `json:"data"`
}

type auditSubject struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

func (s *Server) handleAudit(c echo.Context) error {
	es, err := s.db.AuditLog(c.Request().Context(), principalOf(c).TenantID, 500)
	if err != nil {
		return err
	}
	return listJSON(c, "entries", es, func(a store.AuditEntry) auditJSON {
		return auditJSON{ID: a.ID, At: a.At.UTC(), Actor: a.Actor, Action: a.Action,
			Subject: auditSubject{Kind: a.SubjectKind, ID: a.SubjectID}, Data: a.Data}
	})
}

// retentionJSON is the API's retention policy; null keeps forever.
type retentionJSON struct {
	RecordingsDays  *int       `json:"recordings_days"`
	TranscriptsDays *int       `json:"transcripts_days"`
	UpdatedAt       *time.Time `json:"updated_at,omitempty"`
}

const maxRetentionDays = 36500

func (in retentionJSON) validate() error {
	for field, v := range map[string]*int{"recordings_days": in.RecordingsDays, "transcripts_days": in.TranscriptsDays} {
		if v != nil && (*v < 1 || *v > maxRetentionDays) {
			return invalid(field, "must be null (keep forever) or a whole number of days from 1 to %d", maxRetentionDays)
		}
	}
	return nil
}

func toRetentionJSON(r store.Retention) retentionJSON {
	out := retentionJSON{RecordingsDays: r.RecordingsDays, TranscriptsDays: r.TranscriptsDays}
	if !r.UpdatedAt.IsZero() {
		u := r.UpdatedAt.UTC()
		out.UpdatedAt = &u
	}
	return out
}

func (s *Server) handleGetRetention(c echo.Context) error {
	r, err := s.db.Retention(c.Request().Context(), principalOf(c).TenantID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toRetentionJSON(r))
}

func (s *Server) handlePutRetention(c echo.Context) error {
	var in retentionJSON
	if err := s.decode(c, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	p := principalOf(c)
	r, err := s.db.SetRetention(c.Request().Context(), p.TenantID,
		store.Retention{RecordingsDays: in.RecordingsDays, TranscriptsDays: in.TranscriptsDays}, actorOf(p))
	if err != nil {
		return err
	}
	s.kickSweeper()
	return c.JSON(http.StatusOK, toRetentionJSON(r))
}

// startSweeper applies retention every RetentionInterval (and when a policy
// changes): recordings and transcripts of ended interviews past their
// tenant's age are deleted, each deletion in the audit log.
func (s *Server) startSweeper() {
	if s.cfg.RetentionInterval < 0 {
		return
	}
	s.sweepKick = make(chan struct{}, 1)
	ctx, done := s.owned(0)
	go func() {
		defer done()
		t := time.NewTicker(s.cfg.RetentionInterval)
		defer t.Stop()
		for {
			s.sweep(ctx, time.Now())
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-s.sweepKick:
			}
		}
	}()
}

func (s *Server) kickSweeper() {
	select {
	case s.sweepKick <- struct{}{}:
	default:
	}
}

// sweep applies every tenant's retention policy as of now.
func (s *Server) sweep(ctx context.Context, now time.Time) {
	due, err := s.db.RetentionDue(ctx, now, 500)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("retention sweep", "err", err)
		}
		return
	}
	for _, d := range due {
		pol, err := s.db.Retention(ctx, d.TenantID)
		if err != nil {
			continue
		}
		if d.Recording {
			s.removeInterviewFiles(d.TenantID, d.InterviewID, d.RecordingPath, nil)
			if err := s.db.SweepRecording(ctx, d.TenantID, d.InterviewID, derefInt(pol.RecordingsDays)); err != nil {
				s.log.Error("retention: recording", "interview", d.InterviewID, "err", err)
			}
		}
		if d.Transcript {
			if err := s.db.SweepTranscript(ctx, d.TenantID, d.InterviewID, derefInt(pol.TranscriptsDays)); err != nil {
				s.log.Error("retention: transcript", "interview", d.InterviewID, "err", err)
			}
		}
		s.log.Info("retention applied", "interview", d.InterviewID, "recording", d.Recording, "transcript", d.Transcript)
	}
	s.pruneOutbox(ctx, now)
}

// outboxKeep is how long an outbox event stays after every consumer (the
// scorer, webhook fan-out) has finished it: long enough to look into what
// happened, not forever.
const outboxKeep = 30 * 24 * time.Hour

// pruneOutbox deletes the outbox events every consumer has finished that
// are older than outboxKeep; without consumers running it keeps all.
func (s *Server) pruneOutbox(ctx context.Context, now time.Time) {
	if s.cfg.OutboxPoll < 0 {
		return
	}
	n, err := s.db.PruneOutbox(ctx, []string{scorerConsumer, webhookConsumer}, now.Add(-outboxKeep))
	if err != nil && ctx.Err() == nil {
		s.log.Error("prune outbox", "err", err)
	}
	if n > 0 {
		s.log.Info("outbox pruned", "events", n)
	}
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
