package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"candor/store"
	"candor/web/lifecycle"
	"candor/web/views"
)

// interviewListLimit bounds the interviews page; filters narrow it.
const interviewListLimit = 500

func (s *Server) handleInterviewsPage(c echo.Context) error {
	filter := store.Status(c.QueryParam("status"))
	if filter != "" && !filter.Valid() {
		filter = ""
	}
	return s.renderInterviews(c, http.StatusOK, filter, views.InterviewForm{SendInvite: true}, nil)
}

// listQuery reads the interviews list's search, filters and order from the
// URL; values that do not parse are dropped (the list shows unfiltered
// rather than failing).
func listQuery(c echo.Context) (views.ListQuery, store.InterviewFilter) {
	q := views.ListQuery{
		Q:          strings.TrimSpace(c.QueryParam("q")),
		PositionID: strings.TrimSpace(c.QueryParam("position")),
		From:       c.QueryParam("from"),
		To:         c.QueryParam("to"),
		Sort:       c.QueryParam("sort"),
	}
	if len(q.Q) > 200 {
		q.Q = q.Q[:200]
	}
	f := store.InterviewFilter{Query: q.Q, PositionID: q.PositionID, Sort: q.Sort, Limit: interviewListLimit}
	if _, ok := store.InterviewSorts[q.Sort]; !ok {
		q.Sort, f.Sort = "", ""
	}
	if t, err := time.Parse(time.DateOnly, q.From); err == nil {
		f.From = t
	} else {
		q.From = ""
	}
	if t, err := time.Parse(time.DateOnly, q.To); err == nil {
		f.To = t.AddDate(0, 0, 1) // the whole day
	} else {
		q.To = ""
	}
	return q, f
}

func (s *Server) renderInterviews(c echo.Context, status int, filter store.Status, f views.InterviewForm, errs views.FormErrors) error {
	ctx := c.Request().Context()
	tenantID := principalOf(c).TenantID
	lq, lf := listQuery(c)
	lf.Status = filter
	ivs, err := s.db.ListInterviews(ctx, tenantID, lf)
	if err != nil {
		return fmt.Errorf("list interviews: %w", err)
	}
	positions, err := s.db.ListPositions(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("list positions: %w", err)
	}
	candidates, err := s.db.ListCandidates(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("list candidates: %w", err)
	}
	rows, err := s.interviewRows(ctx, tenantID, ivs, positions, candidates)
	if err != nil {
		return err
	}
	hideInvites(principalOf(c), rows)
	usage, err := s.usage(ctx, tenantID, time.Now())
	if err != nil {
		return err
	}
	d := views.Interviews{TenantID: tenantID, Filter: filter, Query: lq, Rows: rows, Regions: s.regions(), Positions: positions, Candidates: candidates, Form: f, Errors: errs, Usage: &usage, EmailOn: s.emailOn()}
	p, err := s.page(c, "Interviews", "interviews")
	if err != nil {
		return err
	}
	return render(c, status, views.InterviewsPage(p, d))
}

// hideInvites drops the invite links from rows unless p may see them.
func hideInvites(p *principal, rows []views.InterviewRow) {
	if p.seesInvites() {
		return
	}
	for i := range rows {
		rows[i].InviteURL = ""
	}
}

// interviewRows describes interviews for lists: who, for what, and which of
// the candidate's interviews it is.
func (s *Server) interviewRows(ctx context.Context, tenantID string, ivs []store.Interview, positions []store.Position, candidates []store.Candidate) ([]views.InterviewRow, error) {
	ordinals, err := s.db.InterviewOrdinals(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("interview ordinals: %w", err)
	}
	cards, err := s.db.Scorecards(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("scorecards: %w", err)
	}
	titles := make(map[string]string, len(positions))
	for _, p := range positions {
		titles[p.ID] = p.Title
	}
	people := make(map[string]store.Candidate, len(candidates))
	for _, c := range candidates {
		people[c.ID] = c
	}
	rows := make([]views.InterviewRow, 0, len(ivs))
	for _, iv := range ivs {
		cand := people[iv.CandidateID]
		rows = append(rows, views.InterviewRow{
			Interview:      iv,
			CandidateName:  cand.Name,
			CandidateEmail: cand.Email,
			PositionTitle:  titles[iv.PositionID],
			Ordinal:        ordinals[iv.ID].N,
			Of:             ordinals[iv.ID].Of,
			Score:          overallScore(cards[iv.ID]),
			InviteURL:      s.inviteURL(iv.ID),
			CanRetry:       lifecycle.LaunchRetryable(iv),
		})
	}
	return rows, nil
}

func (s *Server) handleCreateInterviewForm(c echo.Context) error {
	f := views.InterviewForm{
		PositionID:    strings.TrimSpace(c.FormValue("position_id")),
		CandidateID:   strings.TrimSpace(c.FormValue("candidate_id")),
		Region:        strings.TrimSpace(c.FormValue("region")),
		AvailableFrom: strings.TrimSpace(c.FormValue("available_from")),
		ExpiresAt:     strings.TrimSpace(c.FormValue("expires_at")),
		TZOffset:      strings.TrimSpace(c.FormValue("tz_offset")),
		SendInvite:    c.FormValue("send_invite") == "true",
	}
	errs := views.FormErrors{}
	if f.PositionID == "" {
		errs["position_id"] = "Choose a position."
	}
	if f.CandidateID == "" {
		errs["candidate_id"] = "Choose a candidate."
	}
	if s.checkRegion(f.Region) != nil {
		errs["region"] = "Choose one of the listed regions: " + strings.Join(s.regions(), ", ") + "."
	}
	in := interviewInput{PositionID: f.PositionID, CandidateID: f.CandidateID, Region: f.Region}
	var err error
	if in.AvailableFrom, err = parseLocalTime(f.AvailableFrom, f.TZOffset); err != nil {
		errs["available_from"] = "Enter a date and time, or leave it empty to open the link at once."
	}
	if in.ExpiresAt, err = parseLocalTime(f.ExpiresAt, f.TZOffset); err != nil {
		errs["expires_at"] = "Enter a date and time, or leave it empty for the default of 7 days."
	}
	send := f.SendInvite && s.emailOn()
	in.SendInvite = &send
	if len(errs) == 0 {
		if _, _, err := in.window(time.Now(), s.cfg.InviteTTL); err != nil {
			var apiErr *Error
			if errors.As(err, &apiErr) {
				errs["expires_at"] = windowMessage(apiErr.Message)
			}
		}
	}
	if len(errs) > 0 {
		return s.renderInterviews(c, http.StatusUnprocessableEntity, "", f, errs)
	}
	ctx := c.Request().Context()
	iv, err := s.createInterview(c, principalOf(c).TenantID, in)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Code == CodeNotFound {
		// A position or candidate removed (or of another tenant) meanwhile.
		return s.renderInterviews(c, http.StatusUnprocessableEntity, "", f, views.FormErrors{"": "That position or candidate no longer exists."})
	}
	if err != nil {
		return err
	}
	switch {
	case !send:
		s.setFlash(c, "success", "Interview scheduled. Copy its invite link and send it to the candidate.")
	case errors.As(s.emailInvitation(ctx, iv, false), &apiErr):
		s.setFlash(c, "error", "Interview scheduled, but the invitation was not emailed: "+apiErr.Message+". Resend it below, or copy the invite link.")
	default:
		s.setFlash(c, "success", "Interview scheduled and the invitation emailed to the candidate.")
	}
	return seeOther(c, "/interviews/"+iv.ID)
}

// windowMessage turns the API's window error into the form's words.
func windowMessage(api string) string {
	switch {
	case strings.Contains(api, "past"):
		return "This time has passed already. Choose a later close."
	case strings.Contains(api, "after available_from"):
		return "The window must close after it opens."
	default:
		return "Choose a close within a year."
	}
}

// parseLocalTime reads a datetime-local value ("2006-01-02T15:04") in the
// zone offsetMinutes behind UTC (JavaScript's getTimezoneOffset); "" is no
// time.
func parseLocalTime(v, offsetMinutes string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	off := 0
	if offsetMinutes != "" {
		n, err := strconv.Atoi(offsetMinutes)
		if err != nil || n < -14*60 || n > 14*60 {
			return nil, fmt.Errorf("time zone offset %q", offsetMinutes)
		}
		off = n
	}
	zone := time.FixedZone("", -off*60)
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, zone); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, fmt.Errorf("time %q", v)
}

func (s *Server) handleInterviewPage(c echo.Context) error {
	ctx := c.Request().Context()
	tenantID := principalOf(c).TenantID
	iv, err := s.db.Interview(ctx, tenantID, c.Param("id"))
	if err != nil {
		return fmt.Errorf("load interview: %w", err)
	}
	d := views.InterviewDetail{Interview: iv, CanRetry: lifecycle.LaunchRetryable(iv), VideoURL: s.videoURL(iv), EmailOn: s.emailOn()}
	d.CanInvite = d.EmailOn && (iv.Status == store.StatusScheduled || d.CanRetry) && time.Now().Before(iv.ExpiresAt)
	if d.Candidate, err = s.db.Candidate(ctx, tenantID, iv.CandidateID); err != nil {
		return fmt.Errorf("load candidate: %w", err)
	}
	if d.Position, err = s.db.Position(ctx, tenantID, iv.PositionID); err != nil {
		return fmt.Errorf("load position: %w", err)
	}
	machines, err := s.db.ListMachines(ctx, tenantID, iv.ID)
	if err != nil {
		return fmt.Errorf("list machines: %w", err)
	}
	now := time.Now()
	for i := range machines {
		m := machines[i]
		d.MachineSeconds += machineSeconds(m, now)
		if d.Machine == nil || m.CreatedAt.After(d.Machine.CreatedAt) {
			d.Machine = &m
		}
	}
	if d.Entries, err = s.db.Entries(ctx, tenantID, iv.ID, 0); err != nil {
		return fmt.Errorf("load transcript: %w", err)
	}
	store.InMediaOrder(d.Entries)
	if d.Events, err = s.db.Events(ctx, tenantID, iv.ID); err != nil {
		return fmt.Errorf("load events: %w", err)
	}
	if !iv.Status.Terminal() || d.CanRetry {
		d.InviteURL = s.inviteURLFor(principalOf(c), iv.ID)
	}
	if iv.RecordingPath != "" {
		d.RecordingURL = recordingPartURL(iv.ID, 1)
		d.RecordingMS = iv.MediaMS
		for _, e := range d.Entries {
			d.RecordingMS = max(d.RecordingMS, e.EndMS)
		}
		parts, err := s.recordingParts(iv)
		if err != nil {
			return err
		}
		for i, p := range parts {
			d.RecordingParts = append(d.RecordingParts, views.RecordingPart{URL: recordingPartURL(iv.ID, i+1), StartMS: p.startMS})
		}
	}
	if d.After, err = s.afterView(ctx, principalOf(c), iv, d.Position, d.Entries, d.RecordingURL != ""); err != nil {
		return err
	}
	p, err := s.page(c, d.Candidate.Name, "interviews")
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.InterviewPage(p, d))
}

// machineSeconds is a machine's billed time, or for a machine still alive
// the time it has run so far.
func machineSeconds(m store.Machine, now time.Time) float64 {
	if m.SecondsBilled > 0 || m.DestroyedAt != nil {
		if m.SecondsBilled == 0 && m.DestroyedAt != nil {
			return m.DestroyedAt.Sub(m.CreatedAt).Seconds()
		}
		return m.SecondsBilled
	}
	return max(0, now.Sub(m.CreatedAt).Seconds())
}

// usage is the tenant's machine time in the calendar month (UTC) of now:
// seconds billed for machines created this month, plus the time live ones
// have run so far.
func (s *Server) usage(ctx context.Context, tenantID string, now time.Time) (views.Usage, error) {
	now = now.UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	secs, err := s.db.MachineSeconds(ctx, tenantID, month)
	if err != nil {
		return views.Usage{}, fmt.Errorf("machine seconds: %w", err)
	}
	live, err := s.db.ListLiveMachines(ctx)
	if err != nil {
		return views.Usage{}, fmt.Errorf("live machines: %w", err)
	}
	for _, m := range live {
		if m.TenantID == tenantID && !m.CreatedAt.Before(month) {
			secs += machineSeconds(m, now)
		}
	}
	u := views.Usage{Month: month, MachineSeconds: secs, PricePerHour: s.cfg.PricePerMachineHour}
	if cm := s.cfg.FlyCost; cm != nil {
		// The tenant's own app: one dedicated IPv4 when direct UDP is on.
		m := cm.Month(1000, 1, 1)
		u.Fly = &views.FlyCost{Transport: string(cm.Transport), IPv4PerMonth: m.IPv4, EgressGB: m.EgressGB, Egress: m.Egress, Total: m.Total}
	}
	return u, nil
}

// overallScore is the overall score of a ready scorecard, nil otherwise.
func overallScore(sc store.Scorecard) *float64 {
	if sc.Status != store.ScorecardReady {
		return nil
	}
	var body struct {
		Overall struct {
			Score *float64 `json:"score"`
		} `json:"overall"`
	}
	if json.Unmarshal(sc.Body, &body) != nil {
		return nil
	}
	return body.Overall.Score
}
