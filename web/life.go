package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"candor/realtime"
	"candor/store"
	"candor/web/lifecycle"
)

// The handlers of an interview's life: they call the lifecycle package
// (which owns start, end, cancel, replacement and reconciliation) and turn
// its answers into JSON. Its refusals become HTTP answers in handleError.

type processorJSON struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

type startJSON struct {
	Interview interviewJSON `json:"interview"`
	Processor processorJSON `json:"processor"`
}

// EventTypeRealtime is the realtime message type of an interview event.
const EventTypeRealtime = lifecycle.EventTypeRealtime

func (s *Server) handleStartInterview(c echo.Context) error {
	ctx := c.Request().Context()
	iv, acc, err := s.lc.Start(ctx, principalOf(c).TenantID, c.Param("id"), "")
	if err != nil {
		return err
	}
	m, err := s.db.CurrentMachine(ctx, iv.TenantID, iv.ID)
	if err != nil {
		return fmt.Errorf("machine of started interview %s: %w", iv.ID, err)
	}
	return c.JSON(http.StatusOK, startJSON{
		Interview: s.toInterviewJSON(iv, &m),
		Processor: processorJSON{URL: acc.URL, Token: acc.Token},
	})
}

func (s *Server) handleEndInterview(c echo.Context) error {
	iv, err := s.lc.End(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return err
	}
	m, err := s.latestMachine(c, iv)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.toInterviewJSON(iv, m))
}

func (s *Server) handleCancelInterview(c echo.Context) error {
	iv, err := s.lc.Cancel(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return err
	}
	m, err := s.latestMachine(c, iv)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.toInterviewJSON(iv, m))
}

// recordEvent appends an interview event and, once it is committed,
// publishes it on the interview's topic.
func (s *Server) recordEvent(ctx context.Context, tenantID, interviewID, typ string, data any) error {
	return s.lc.Record(ctx, tenantID, interviewID, typ, data)
}

// publishStatus tells the interview's and the tenant's subscribers about a
// status change. The lifecycle calls it after each committed change.
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
	acc, err := s.lc.Access(ctx, iv)
	if err != nil {
		return "", "", err
	}
	return acc.URL, acc.CandidateToken(iv.ID), nil
}

// lifecycleError is the client's view of a lifecycle refusal.
func lifecycleError(le *lifecycle.Error) *Error {
	switch le.Kind {
	case lifecycle.NotFound:
		return &Error{Code: CodeNotFound, Message: le.Message}
	case lifecycle.Conflict:
		return &Error{Code: CodeConflict, Message: le.Message}
	case lifecycle.NoMachines:
		return &Error{Code: CodeNotImplemented, Message: le.Message}
	case lifecycle.LaunchFailed:
		return &Error{Code: CodeBadGateway, Message: le.Message}
	case lifecycle.Unavailable:
		return &Error{Code: CodeServiceUnavailable, Message: le.Message}
	}
	return errInternal
}
