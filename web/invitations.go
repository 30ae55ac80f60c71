package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/lifecycle"
)

// maxWindow bounds how far ahead an interview's window may close.
const maxWindow = 366 * 24 * time.Hour

// scheduleInput is the scheduling part of a new interview: its window and
// whether the invitation goes by email.
type scheduleInput struct {
	AvailableFrom *time.Time `json:"available_from"`
	ExpiresAt     *time.Time `json:"expires_at"`
	// SendInvite defaults to true when email is configured.
	SendInvite *bool `json:"send_invite"`
}

// window checks the requested window against now and returns it: from is
// nil when the link works at once; until defaults to ttl after the window
// opens.
func (in scheduleInput) window(now time.Time, ttl time.Duration) (from *time.Time, until time.Time, err error) {
	opens := now
	if in.AvailableFrom != nil && in.AvailableFrom.After(now) {
		f := in.AvailableFrom.UTC()
		from, opens = &f, f
	}
	until = opens.Add(ttl)
	if in.ExpiresAt != nil {
		until = in.ExpiresAt.UTC()
		switch {
		case !until.After(now):
			return nil, time.Time{}, invalid("expires_at", "is in the past: the candidate could never join")
		case !until.After(opens):
			return nil, time.Time{}, invalid("expires_at", "must be after available_from")
		}
	}
	if until.Sub(now) > maxWindow {
		return nil, time.Time{}, invalid("expires_at", "is more than a year away")
	}
	return from, until, nil
}

// sendInvite resolves send_invite against whether email is on.
func (s *Server) sendInvite(in scheduleInput) (bool, error) {
	if in.SendInvite == nil {
		return s.emailOn(), nil
	}
	if *in.SendInvite && !s.emailOn() {
		return false, invalid("send_invite", "email is not configured on this server (the operator sets CANDOR_SMTP_URL and CANDOR_MAIL_FROM); send invite_url yourself, or pass \"send_invite\": false")
	}
	return *in.SendInvite, nil
}

// Interview events of invitation mail, for the recruiter's timeline.
const (
	eventInvitationSent = "invitation.sent"
	eventReminderSent   = "reminder.sent"
)

// emailInvitation sends the candidate their invitation (or, remind, the
// reminder) and records it. The interview must be open to joining.
func (s *Server) emailInvitation(ctx context.Context, iv store.Interview, remind bool) error {
	if iv.Status != store.StatusScheduled && !lifecycle.LaunchRetryable(iv) {
		return errorf(CodeConflict, "the interview is %s: invitations go only for a scheduled interview", iv.Status)
	}
	if !time.Now().Before(iv.ExpiresAt) {
		return errorf(CodeConflict, "the interview's window closed at %s: schedule a new interview", iv.ExpiresAt.UTC().Format(time.RFC3339))
	}
	cand, err := s.db.Candidate(ctx, iv.TenantID, iv.CandidateID)
	if err != nil {
		return fmt.Errorf("candidate of interview %s: %w", iv.ID, err)
	}
	if cand.Email == "" {
		return errorf(CodeConflict, "the candidate has no email address: add one, or send invite_url yourself")
	}
	pos, err := s.db.Position(ctx, iv.TenantID, iv.PositionID)
	if err != nil {
		return fmt.Errorf("position of interview %s: %w", iv.ID, err)
	}
	t, err := s.db.Tenant(ctx, iv.TenantID)
	if err != nil {
		return fmt.Errorf("tenant of interview %s: %w", iv.ID, err)
	}
	d := invitationData{
		Org: t.Name, CandidateName: cand.Name, Position: pos.Title, From: iv.AvailableFrom, Until: iv.ExpiresAt,
		Link: s.inviteURL(iv.ID), Minutes: max(5, len(pos.Questions)*minutesPerQuestion+2),
	}
	tmpl, event := invitationEmail, eventInvitationSent
	if remind {
		tmpl, event = reminderEmail, eventReminderSent
	}
	if err := s.sendMail(ctx, cand.Email, tmpl, d); err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) {
			return err
		}
		s.log.Error("interview email not sent", "interview", iv.ID, "kind", event, "err", err)
		return mailFailure(err)
	}
	now := time.Now().UTC()
	if remind {
		err = s.db.RecordReminder(ctx, iv.TenantID, iv.ID, now, event, map[string]string{"to": cand.Email})
	} else {
		err = s.db.MarkInvited(ctx, iv.TenantID, iv.ID, now, event, map[string]string{"to": cand.Email})
	}
	if err != nil {
		return fmt.Errorf("record %s: %w", event, err)
	}
	return nil
}

// resendEvery bounds how often one interview's invitation may be emailed
// again, so a stuck button or a script cannot flood a candidate's inbox.
const resendEvery = time.Minute

// tooSoon refuses a resend within resendEvery of the last invitation.
func tooSoon(iv store.Interview) error {
	if iv.InvitedAt != nil && time.Since(*iv.InvitedAt) < resendEvery {
		return errorf(CodeTooManyRequests, "the invitation was emailed less than a minute ago; wait a minute before sending it again")
	}
	return nil
}

// handleResendInvite is POST /api/v1/interviews/{id}/invite: the invitation
// email again (same link).
func (s *Server) handleResendInvite(c echo.Context) error {
	ctx := c.Request().Context()
	iv, err := s.db.Interview(ctx, principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	if !s.emailOn() {
		return errMailOff
	}
	if err := tooSoon(iv); err != nil {
		return err
	}
	if err := s.emailInvitation(ctx, iv, false); err != nil {
		return err
	}
	iv, err = s.db.Interview(ctx, iv.TenantID, iv.ID)
	if err != nil {
		return fmt.Errorf("reload interview: %w", err)
	}
	return c.JSON(http.StatusOK, s.toInterviewJSON(iv, nil))
}

// handleResendInviteForm is the interview page's "Resend invitation".
func (s *Server) handleResendInviteForm(c echo.Context) error {
	ctx := c.Request().Context()
	iv, err := s.db.Interview(ctx, principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return fmt.Errorf("load interview: %w", err)
	}
	err = tooSoon(iv)
	if err == nil {
		err = s.emailInvitation(ctx, iv, false)
	}
	var apiErr *Error
	switch {
	case errors.As(err, &apiErr):
		s.setFlash(c, "error", "The invitation was not sent: "+apiErr.Message+".")
	case err != nil:
		return err
	default:
		s.setFlash(c, "success", "The invitation was emailed again.")
	}
	return seeOther(c, "/interviews/"+iv.ID)
}

// SendDueReminders emails the reminder of every interview whose window
// closes within ReminderBefore of now, whose candidate was invited by email
// and has not joined. Each reminder is claimed in the database before it is
// sent, so it goes once even if two passes overlap; a failed send releases
// the claim for the next pass. The serve command calls it every minute.
func (s *Server) SendDueReminders(ctx context.Context, now time.Time) (sent int, err error) {
	if !s.emailOn() {
		return 0, nil
	}
	due, err := s.db.DueReminders(ctx, now, now.Add(s.cfg.ReminderBefore), 100)
	if err != nil {
		return 0, fmt.Errorf("due reminders: %w", err)
	}
	for _, iv := range due {
		// An invitation sent late in the window gets its reminder no
		// earlier than half-way to the close, not right after it.
		if iv.InvitedAt != nil && now.Before(iv.InvitedAt.Add(iv.ExpiresAt.Sub(*iv.InvitedAt)/2)) {
			continue
		}
		if err := s.db.ClaimReminder(ctx, iv.TenantID, iv.ID, now); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return sent, err
		}
		if err := s.emailInvitation(ctx, iv, true); err != nil {
			s.log.Warn("reminder not sent; will retry", "interview", iv.ID, "err", err)
			if err := s.db.ReleaseReminder(ctx, iv.TenantID, iv.ID); err != nil {
				return sent, fmt.Errorf("release reminder: %w", err)
			}
			continue
		}
		sent++
	}
	return sent, nil
}
