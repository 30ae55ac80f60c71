package web

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"candor/store"
)

// Limits of what the API accepts, so one request cannot fill the database.
const (
	apiMaxListLimit = 500
)

type positionInput struct {
	Title           string             `json:"title"`
	Description     string             `json:"description"`
	Questions       []string           `json:"questions"`
	Rubric          []store.RubricItem `json:"rubric"`
	InterviewerName string             `json:"interviewer_name"`
	Voice           string             `json:"voice"`
}

// validate normalizes in and checks it by the position rules the
// dashboard shares (store.Position.Validate), and its voice against the
// voices there are.
func (in *positionInput) validate() error {
	p := store.Position{Title: in.Title, Description: in.Description, Questions: in.Questions, Rubric: in.Rubric,
		InterviewerName: in.InterviewerName, Voice: in.Voice}
	p.Normalize()
	if err := p.Validate(); err != nil {
		return err
	}
	if !validVoice(p.Voice) {
		return invalid("voice", "%q is not a voice; use one of %s, or \"\" for the default", p.Voice, strings.Join(voiceIDs(), ", "))
	}
	in.Title, in.Description, in.Questions, in.Rubric = p.Title, p.Description, p.Questions, p.Rubric
	in.InterviewerName, in.Voice = p.InterviewerName, p.Voice
	return nil
}

func (s *Server) handleCreatePosition(c echo.Context) error {
	var in positionInput
	if err := s.decode(c, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	p := principalOf(c)
	now := time.Now().UTC()
	pos, err := s.db.CreatePosition(c.Request().Context(), store.Position{
		ID: store.NewID("pos_"), TenantID: p.TenantID,
		Title: in.Title, Description: in.Description, Questions: in.Questions, Rubric: in.Rubric,
		InterviewerName: in.InterviewerName, Voice: in.Voice,
		CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		return fmt.Errorf("create position: %w", err)
	}
	return c.JSON(http.StatusCreated, toPositionJSON(pos))
}

func (s *Server) handleUpdatePosition(c echo.Context) error {
	var in positionInput
	if err := s.decode(c, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	p := principalOf(c)
	pos, err := s.db.UpdatePosition(c.Request().Context(), store.Position{
		ID: c.Param("id"), TenantID: p.TenantID,
		Title: in.Title, Description: in.Description, Questions: in.Questions, Rubric: in.Rubric,
		InterviewerName: in.InterviewerName, Voice: in.Voice,
		UpdatedAt: time.Now().UTC(),
	})
	if err != nil {
		return notFound(err, "position")
	}
	return c.JSON(http.StatusOK, toPositionJSON(pos))
}

func (s *Server) handleListPositions(c echo.Context) error {
	ps, err := s.db.ListPositions(c.Request().Context(), principalOf(c).TenantID)
	if err != nil {
		return fmt.Errorf("list positions: %w", err)
	}
	return listJSON(c, "positions", ps, toPositionJSON)
}

func (s *Server) handleGetPosition(c echo.Context) error {
	pos, err := s.db.Position(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "position")
	}
	return c.JSON(http.StatusOK, toPositionJSON(pos))
}

func (s *Server) handleDeletePosition(c echo.Context) error {
	err := s.db.DeletePosition(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if errors.Is(err, store.ErrConflict) {
		return errorf(CodeConflict, "the position has interviews; delete them (or the candidates) first")
	}
	if err != nil {
		return notFound(err, "position")
	}
	return c.NoContent(http.StatusNoContent)
}

type candidateInput struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Notes string `json:"notes"`
}

// validate normalizes in and checks it by the candidate rules the
// dashboard shares (store.Candidate.Validate).
func (in *candidateInput) validate() error {
	cand := store.Candidate{Name: in.Name, Email: in.Email, Notes: in.Notes}
	cand.Normalize()
	if err := cand.Validate(); err != nil {
		return err
	}
	in.Name, in.Email, in.Notes = cand.Name, cand.Email, cand.Notes
	return nil
}

func (s *Server) handleCreateCandidate(c echo.Context) error {
	var in candidateInput
	if err := s.decode(c, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	cand, err := s.db.CreateCandidate(c.Request().Context(), store.Candidate{
		ID: store.NewID("cand_"), TenantID: principalOf(c).TenantID,
		Name: in.Name, Email: in.Email, Notes: in.Notes, CreatedAt: time.Now().UTC(),
	})
	if errors.Is(err, store.ErrConflict) {
		return errorf(CodeConflict, "email: a candidate with email %s exists already", in.Email)
	}
	if err != nil {
		return fmt.Errorf("create candidate: %w", err)
	}
	return c.JSON(http.StatusCreated, toCandidateJSON(cand))
}

func (s *Server) handleUpdateCandidate(c echo.Context) error {
	var in candidateInput
	if err := s.decode(c, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	cand, err := s.db.UpdateCandidate(c.Request().Context(), store.Candidate{
		ID: c.Param("id"), TenantID: principalOf(c).TenantID, Name: in.Name, Email: in.Email, Notes: in.Notes,
	})
	if errors.Is(err, store.ErrConflict) {
		return errorf(CodeConflict, "email: a candidate with email %s exists already", in.Email)
	}
	if err != nil {
		return notFound(err, "candidate")
	}
	return c.JSON(http.StatusOK, toCandidateJSON(cand))
}

func (s *Server) handleListCandidates(c echo.Context) error {
	cs, err := s.db.ListCandidates(c.Request().Context(), principalOf(c).TenantID)
	if err != nil {
		return fmt.Errorf("list candidates: %w", err)
	}
	return listJSON(c, "candidates", cs, toCandidateJSON)
}

func (s *Server) handleGetCandidate(c echo.Context) error {
	cand, err := s.db.Candidate(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "candidate")
	}
	return c.JSON(http.StatusOK, toCandidateJSON(cand))
}

type interviewInput struct {
	PositionID  string `json:"position_id"`
	CandidateID string `json:"candidate_id"`
	Region      string `json:"region"`
	scheduleInput
}

var regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,31}$`)

func (in *interviewInput) validate() error {
	in.PositionID = strings.TrimSpace(in.PositionID)
	in.CandidateID = strings.TrimSpace(in.CandidateID)
	in.Region = strings.TrimSpace(in.Region)
	switch {
	case in.PositionID == "":
		return invalid("position_id", "is required")
	case in.CandidateID == "":
		return invalid("candidate_id", "is required")
	case in.Region != "" && !regionRE.MatchString(in.Region):
		return invalid("region", "%q is not a region name (like \"ams\" or \"local\")", in.Region)
	}
	return nil
}

// regions are the regions an interview may name: the lifecycle's, which
// places machines in them.
func (s *Server) regions() []string { return s.lc.Regions() }

// checkRegion refuses a region outside the configured list ("" is the
// default), so a typo like "mars-1" fails at scheduling, not at launch.
func (s *Server) checkRegion(region string) error {
	if region == "" || slices.Contains(s.regions(), region) {
		return nil
	}
	return invalid("region", "%q is not one of this server's regions (%s; CANDOR_REGIONS); leave it out for the default", region, strings.Join(s.regions(), ", "))
}

func (s *Server) handleCreateInterview(c echo.Context) error {
	var in interviewInput
	if err := s.decode(c, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	if err := s.checkRegion(in.Region); err != nil {
		return err
	}
	ctx := c.Request().Context()
	tenantID := principalOf(c).TenantID
	// Checked here for a message naming the field; the store checks again
	// in its transaction.
	if _, err := s.db.Position(ctx, tenantID, in.PositionID); err != nil {
		return notFound(err, "position_id: position")
	}
	if _, err := s.db.Candidate(ctx, tenantID, in.CandidateID); err != nil {
		return notFound(err, "candidate_id: candidate")
	}
	send, err := s.sendInvite(in.scheduleInput)
	if err != nil {
		return err
	}
	iv, err := s.createInterview(c, tenantID, in)
	if err != nil {
		return err
	}
	out := createdInterviewJSON{interviewJSON: s.toInterviewJSON(iv, nil)}
	if send {
		// The interview exists either way: a refused email is reported
		// beside it, and POST …/invite tries again.
		if err := s.emailInvitation(ctx, iv, false); err != nil {
			out.InviteError = err.Error()
			var apiErr *Error
			if errors.As(err, &apiErr) {
				out.InviteError = apiErr.Message
			}
		} else if iv, err = s.db.Interview(ctx, tenantID, iv.ID); err == nil {
			out.interviewJSON = s.toInterviewJSON(iv, nil)
		}
	}
	return c.JSON(http.StatusCreated, out)
}

// createdInterviewJSON is the answer to creating an interview: the
// interview, and why its invitation email was not sent when it was not.
type createdInterviewJSON struct {
	interviewJSON
	InviteError string `json:"invite_error,omitempty"`
}

// createInterview stores a scheduled interview with its invite link hash
// and its window. An interview without a region gets one when it starts
// (regionFor): the candidate's nearest, else the default.
func (s *Server) createInterview(c echo.Context, tenantID string, in interviewInput) (store.Interview, error) {
	region := in.Region
	now := time.Now().UTC()
	from, until, err := in.window(now, s.cfg.InviteTTL)
	if err != nil {
		return store.Interview{}, err
	}
	id := store.NewID("iv_")
	iv, err := s.db.CreateInterview(c.Request().Context(), store.Interview{
		ID: id, TenantID: tenantID, PositionID: in.PositionID, CandidateID: in.CandidateID,
		Status: store.StatusScheduled, Region: region,
		AvailableFrom: from, ExpiresAt: until, CreatedAt: now,
	}, tokenHash(s.inviteToken(id)))
	if err != nil {
		return store.Interview{}, notFound(err, "position or candidate")
	}
	if iv.ID != id {
		return store.Interview{}, fmt.Errorf("create interview: store assigned id %s, invite token was made for %s", iv.ID, id)
	}
	return iv, nil
}

func (s *Server) handleListInterviews(c echo.Context) error {
	var f store.InterviewFilter
	if st := c.QueryParam("status"); st != "" {
		f.Status = store.Status(st)
		if !f.Status.Valid() {
			return invalid("status", "%q is not one of scheduled, starting, running, completed, failed, cancelled", st)
		}
	}
	f.Limit = 100
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > apiMaxListLimit {
			return invalid("limit", "must be a whole number from 1 to %d", apiMaxListLimit)
		}
		f.Limit = n
	}
	ctx := c.Request().Context()
	tenantID := principalOf(c).TenantID
	ivs, err := s.db.ListInterviews(ctx, tenantID, f)
	if err != nil {
		return fmt.Errorf("list interviews: %w", err)
	}
	out := make([]interviewJSON, 0, len(ivs))
	for _, iv := range ivs {
		m, err := s.latestMachine(c, iv)
		if err != nil {
			return err
		}
		out = append(out, s.interviewJSONFor(principalOf(c), iv, m))
	}
	return c.JSON(http.StatusOK, map[string]any{"interviews": out})
}

func (s *Server) handleGetInterview(c echo.Context) error {
	iv, err := s.db.Interview(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	m, err := s.latestMachine(c, iv)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.interviewJSONFor(principalOf(c), iv, m))
}

// interviewJSONFor renders iv for p: without its invite link unless p may
// see invites.
func (s *Server) interviewJSONFor(p *principal, iv store.Interview, m *store.Machine) interviewJSON {
	j := s.toInterviewJSON(iv, m)
	if !p.seesInvites() {
		j.InviteURL = ""
	}
	return j
}

// latestMachine is the interview's most recent machine, nil if none.
func (s *Server) latestMachine(c echo.Context, iv store.Interview) (*store.Machine, error) {
	m, err := s.db.LatestMachine(c.Request().Context(), iv.TenantID, iv.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("machine of interview %s: %w", iv.ID, err)
	}
	return &m, nil
}

func (s *Server) handleTranscript(c echo.Context) error {
	es, err := s.db.Entries(c.Request().Context(), principalOf(c).TenantID, c.Param("id"), 0)
	if err != nil {
		return notFound(err, "interview")
	}
	if f := c.QueryParam("format"); f != "" && f != "json" {
		return exportTranscript(c, c.Param("id"), f, es)
	}
	return listJSON(c, "entries", es, toEntryJSON)
}

func (s *Server) handleEvents(c echo.Context) error {
	evs, err := s.db.Events(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	return listJSON(c, "events", evs, toEventJSON)
}

// listJSON answers {key: [conv(item)…]}, with [] rather than null when
// there are no items.
func listJSON[T, J any](c echo.Context, key string, items []T, conv func(T) J) error {
	out := make([]J, 0, len(items))
	for _, it := range items {
		out = append(out, conv(it))
	}
	return c.JSON(http.StatusOK, map[string]any{key: out})
}

// notFound turns store.ErrNotFound into a 404 that names what was missing
// ("interview" → "no such interview"); other errors pass through wrapped.
func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		if field, thing, ok := strings.Cut(what, ": "); ok {
			return errorf(CodeNotFound, "%s: no such %s", field, thing)
		}
		return errorf(CodeNotFound, "no such %s", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}
