package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"candor/processor/contract"
	"candor/store"
	"candor/web/lifecycle"
	"candor/web/views"
)

// The candidate's side of an interview lives under /i/<invite token>. The
// invite token is the only credential: it names exactly one interview, so
// every handler here acts on that interview and no other (an id in a path
// or body is never trusted). Cookies play no part, so CSRF does not apply;
// unsafe requests from a browser must still come from this server's origin.

const (
	// videoFileExt is the candidate's camera recording, stored beside the
	// processor's audio recording: <DataDir>/recordings/<tenant>/<id>.webm.
	videoFileExt = ".webm"
	// videoUploadWindow is how long after the end the page may still upload
	// its video (a slow connection, a retry).
	videoUploadWindow = time.Hour
	// minutesPerQuestion estimates the interview's length for the welcome
	// step: an answer, a possible follow-up, and the interviewer's words.
	minutesPerQuestion = 3
)

// candidateRoutes registers the candidate page and its actions, and the
// recruiters' access to the candidate's video. dashboardRoutes calls it.
func (s *Server) candidateRoutes() {
	g := s.e.Group(invitePath+":token", s.inviteAuth)
	g.GET("", s.handleCandidatePage)
	g.POST("/consent", s.handleCandidateConsent, s.sameOriginPost)
	g.POST("/join", s.handleCandidateJoin, s.sameOriginPost)
	g.POST("/end", s.handleCandidateEnd, s.sameOriginPost)
	g.PUT("/video", s.handleCandidateVideo, s.sameOriginPost)

	s.e.GET("/api/v1/interviews/:id/video", s.handleGetVideo, s.apiAuth)
}

const inviteKey = "candor.invite"

// inviteAuth loads the interview the invite token in the path names. An
// unknown token is a 404; what may be done with a known one (expired,
// ended) is each handler's business.
func (s *Server) inviteAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok := c.Param("token")
		if tok == "" || len(tok) > 128 {
			return s.candidateNotice(c, inviteUnknown)
		}
		iv, err := s.db.InterviewByInviteHash(c.Request().Context(), tokenHash(tok))
		if errors.Is(err, store.ErrNotFound) {
			return s.candidateNotice(c, inviteUnknown)
		}
		if err != nil {
			return fmt.Errorf("look up invite: %w", err)
		}
		c.Set(inviteKey, iv)
		return next(c)
	}
}

func inviteInterview(c echo.Context) store.Interview {
	iv, _ := c.Get(inviteKey).(store.Interview)
	return iv
}

// sameOriginPost refuses unsafe requests a browser sends from another
// origin. Clients that send no Origin (not a browser) pass: the invite
// token in the path is what authorizes.
func (s *Server) sameOriginPost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Header.Get("Origin") != "" && !s.sameOrigin(c.Request()) {
			return errorf(CodeForbidden, "requests to an invite link must come from %s", s.cfg.PublicURL)
		}
		return next(c)
	}
}

// inviteState says whether the interview of an invite can still be joined:
// "" when it can, else why not.
// An interview whose launch failed before it ever ran (launchRetryable) is
// joinable like a scheduled one: joining launches it again.
func inviteState(iv store.Interview, now time.Time) string {
	switch {
	case iv.Status == store.StatusRunning || iv.Status == store.StatusStarting:
		return ""
	case lifecycle.LaunchRetryable(iv):
	case iv.Status == store.StatusFailed:
		return inviteFailed
	case iv.Status.Terminal():
		return inviteEnded
	}
	if now.After(iv.ExpiresAt) {
		return inviteExpired
	}
	if iv.AvailableFrom != nil && now.Before(*iv.AvailableFrom) && iv.Status == store.StatusScheduled {
		return inviteNotYet
	}
	return ""
}

// Why an invite link cannot be used.
const (
	inviteUnknown = "unknown"
	inviteExpired = "expired"
	inviteEnded   = "ended"
	inviteFailed  = "failed"
	inviteNotYet  = "notyet"
)

// candidateNotice answers a page request with the candidate's notice page
// (404 for an unknown link, 410 for an expired or ended interview) and any
// other request with the JSON error (404, or 409 with a message the page
// recognizes as final).
func (s *Server) candidateNotice(c echo.Context, why string) error {
	n := views.CandidateNotice{AssetVersion: assetVersion(), Code: http.StatusGone}
	code := CodeConflict
	switch why {
	case inviteNotYet:
		// 403: the link is right, just early; the page says when to return.
		n.Code = http.StatusForbidden
		n.Title = "Your interview is not open yet"
		n.Message = "You can join from the time below (shown in your time zone). Come back to this same link then."
		iv := inviteInterview(c)
		n.At = iv.AvailableFrom
	case inviteExpired:
		n.Title = "This invitation has expired"
		n.Message = "The link was valid for a limited time only. Ask the person who invited you to schedule a new interview."
	case inviteFailed:
		n.Title = "This interview could not take place"
		n.Message = "Something went wrong on our side while starting it. The team can see what happened and will get in touch to schedule a new interview."
	case inviteEnded:
		n.Title = "This interview has ended"
		n.Message = "Thank you for your time. There is nothing more to do here; the team will be in touch."
	default:
		n.Code, code = http.StatusNotFound, CodeNotFound
		n.Title = "This invite link does not work"
		n.Message = "Check that you opened the complete link you were sent. If it still does not work, ask the person who invited you for a new link."
		if s.emailOn() {
			n.Message = "Check that you opened the complete link from your invitation email. If it still does not work, ask the person who invited you for a new link."
		}
	}
	if c.Request().Method != http.MethodGet && c.Request().Method != http.MethodHead {
		return &Error{Code: code, Message: strings.ToLower(n.Title[:1]) + n.Title[1:]}
	}
	return render(c, n.Code, views.CandidateNoticePage(n))
}

func (s *Server) handleCandidatePage(c echo.Context) error {
	iv := inviteInterview(c)
	if why := inviteState(iv, time.Now()); why != "" {
		return s.candidateNotice(c, why)
	}
	ctx := c.Request().Context()
	pos, err := s.db.Position(ctx, iv.TenantID, iv.PositionID)
	if err != nil {
		return fmt.Errorf("position of invite: %w", err)
	}
	cand, err := s.db.Candidate(ctx, iv.TenantID, iv.CandidateID)
	if err != nil {
		return fmt.Errorf("candidate of invite: %w", err)
	}
	t, err := s.db.Tenant(ctx, iv.TenantID)
	if err != nil {
		return fmt.Errorf("tenant of invite: %w", err)
	}
	d := views.Candidate{
		AssetVersion:  assetVersion(),
		Base:          invitePath + c.Param("token"),
		Org:           t.Name,
		CandidateName: cand.Name,
		PositionTitle: pos.Title,
		Questions:     len(pos.Questions),
		Minutes:       max(5, len(pos.Questions)*minutesPerQuestion+2),
		Consented:     iv.ConsentAt != nil,
		Running:       iv.Status == store.StatusRunning,
		VideoLimit:    s.cfg.RecordingLimit,
		Until:         iv.ExpiresAt,
	}
	if d.Running && d.Consented {
		// A reload mid-interview rejoins with the conversation so far.
		if d.Captions, err = s.db.Entries(ctx, iv.TenantID, iv.ID, 0); err != nil {
			return fmt.Errorf("transcript of invite: %w", err)
		}
	}
	return render(c, http.StatusOK, views.CandidatePage(d))
}

type consentInput struct {
	Consent bool `json:"consent"`
}

// handleCandidateConsent records the candidate's agreement to recording and
// AI processing, once, with an event for the recruiter's timeline.
func (s *Server) handleCandidateConsent(c echo.Context) error {
	var in consentInput
	if err := s.decode(c, &in); err != nil {
		return err
	}
	if !in.Consent {
		return invalid("consent", "must be true: the interview cannot run without the candidate's consent")
	}
	iv := inviteInterview(c)
	if err := s.refuseUnjoinable(c, iv); err != nil {
		return err
	}
	if iv.ConsentAt == nil {
		ctx := c.Request().Context()
		now := time.Now().UTC()
		if err := s.db.SetConsent(ctx, iv.TenantID, iv.ID, now); err != nil {
			return fmt.Errorf("store consent: %w", err)
		}
		if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "candidate.consented", map[string]string{
			"user_agent": truncate(c.Request().UserAgent(), 200),
		}); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, map[string]bool{"consent": true})
}

// refuseUnjoinable answers why an expired or ended interview cannot be
// consented to or joined.
func (s *Server) refuseUnjoinable(c echo.Context, iv store.Interview) error {
	if why := inviteState(iv, time.Now()); why != "" {
		return s.candidateNotice(c, why)
	}
	return nil
}

// joinJSON is what the page needs to reach the interview's processor.
type joinJSON struct {
	InterviewID  string       `json:"interview_id"`
	Status       store.Status `json:"status"`
	ProcessorURL string       `json:"processor_url"`
	// Token is the candidate token (contract.CandidateToken): it opens the processor's
	// media and events endpoints but not its POST /end.
	Token string `json:"token"`
	// ICEServers are the STUN/TURN servers for the page's peer connection,
	// TURN credentials time-limited; given here because a non-trickle WHIP
	// offer is made before any WHIP answer (and its Link headers) exists.
	ICEServers []contract.ICEServer `json:"ice_servers"`
}

// iceServers are the interview's STUN/TURN servers with credentials.
func (s *Server) iceServers(interviewID string) ([]contract.ICEServer, error) {
	ice, err := contract.ParseICEServers(s.cfg.ICEServers, s.cfg.TURNSecret, interviewID, time.Now().Add(lifecycle.ICETTL))
	if err != nil {
		return nil, fmt.Errorf("CANDOR_ICE_SERVERS: %w", err)
	}
	if ice == nil {
		ice = []contract.ICEServer{}
	}
	return ice, nil
}

// handleCandidateJoin starts the interview if it is scheduled (launching
// its processor) and answers where the page sends its audio. A page that
// lost its processor calls it again to learn the replacement's address.
func (s *Server) handleCandidateJoin(c echo.Context) error {
	iv := inviteInterview(c)
	if err := s.refuseUnjoinable(c, iv); err != nil {
		return err
	}
	if iv.ConsentAt == nil {
		return errorf(CodeForbidden, "consent is required before joining: agree to recording and AI processing first")
	}
	// The candidate's nearest region, as Fly's edge names it, places the
	// machine when the interview names none.
	iv, acc, err := s.lc.Start(c.Request().Context(), iv.TenantID, iv.ID, c.Request().Header.Get("Fly-Region"))
	if err != nil {
		return err
	}
	if iv.Status == store.StatusScheduled || acc.URL == "" {
		return errorf(CodeServiceUnavailable, "the interview is not ready yet; retry in a moment")
	}
	// A page calls join again whenever it lost its processor; anyone with
	// the link can call it in a loop, so only the first few joins of each
	// machine are stored.
	if s.joinEvents.reserve(iv.ID + "\x00" + acc.MachineID) {
		if err := s.recordEvent(c.Request().Context(), iv.TenantID, iv.ID, "candidate.joined", map[string]string{
			"machine_id": acc.MachineID,
		}); err != nil {
			return err
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	ice, err := s.iceServers(iv.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, joinJSON{
		InterviewID:  iv.ID,
		Status:       iv.Status,
		ProcessorURL: acc.URL,
		Token:        acc.CandidateToken(iv.ID),
		ICEServers:   ice,
	})
}

// handleCandidateEnd ends the interview the way a recruiter's end does: the
// processor flushes every pending utterance, then its machine goes.
func (s *Server) handleCandidateEnd(c echo.Context) error {
	iv := inviteInterview(c)
	if iv.Status == store.StatusCompleted {
		return c.JSON(http.StatusOK, map[string]store.Status{"status": iv.Status})
	}
	if iv.Status != store.StatusRunning && iv.Status != store.StatusStarting {
		// Checked before anything is written: a repeated end of an
		// interview that is over must not append an event each time.
		return errorf(CodeConflict, "the interview is %s; there is nothing to end", iv.Status)
	}
	if !s.lc.HasMachines() {
		return lifecycle.ErrNoMachines
	}
	if err := s.recordEvent(c.Request().Context(), iv.TenantID, iv.ID, "candidate.ended", nil); err != nil {
		return err
	}
	iv, err := s.lc.End(c.Request().Context(), iv.TenantID, iv.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]store.Status{"status": iv.Status})
}

// handleCandidateVideo stores the candidate's camera recording (WebM from
// MediaRecorder), uploaded once the interview ends. A repeated upload
// replaces the previous one.
func (s *Server) handleCandidateVideo(c echo.Context) error {
	iv := inviteInterview(c)
	switch {
	case iv.Status == store.StatusRunning || iv.Status == store.StatusStarting:
	case iv.Status == store.StatusCompleted && recentlyEnded(iv, time.Now()):
	default:
		return errorf(CodeConflict, "a video can be uploaded only during the interview or shortly after it ends")
	}
	req := c.Request()
	mt, _, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if mt != "video/webm" && mt != "audio/webm" {
		return errorf(CodeUnsupportedMedia, "the video must be sent as Content-Type: video/webm")
	}
	limit := s.cfg.RecordingLimit
	if req.ContentLength > limit {
		return errorf(CodePayloadTooLarge, "the video exceeds %d bytes", limit)
	}
	dst := s.videoPath(iv)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("recordings dir: %w", err)
	}
	n, err := storeVideo(dst, http.MaxBytesReader(c.Response(), req.Body, limit))
	if err != nil {
		return err
	}
	if err := s.recordEvent(req.Context(), iv.TenantID, iv.ID, "video.stored", map[string]int64{"bytes": n}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int64{"bytes": n})
}

// recentlyEnded reports whether completed interview iv ended less than
// videoUploadWindow before now. The end is the later of ended_at and the
// last heartbeat: the store keeps the first ended_at it sets, so for an
// interview that ran after a failed launch (launchRetryable) ended_at is
// the failure's time, while its last heartbeat is near the real end.
func recentlyEnded(iv store.Interview, now time.Time) bool {
	var end time.Time
	for _, t := range []*time.Time{iv.EndedAt, iv.LastHeartbeatAt} {
		if t != nil && t.After(end) {
			end = *t
		}
	}
	return !end.IsZero() && now.Sub(end) < videoUploadWindow
}

// webmMagic starts every WebM (EBML) file.
var webmMagic = []byte{0x1a, 0x45, 0xdf, 0xa3}

// storeVideo streams r to a temporary file beside dst, checks that it is
// WebM, syncs it and renames it to dst, so a broken upload never replaces
// a good one.
func storeVideo(dst string, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(dst), ".video-*")
	if err != nil {
		return 0, fmt.Errorf("temporary video file: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	defer f.Close()
	magic := make([]byte, len(webmMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return 0, err
		}
		return 0, errorf(CodeBadRequest, "the video is empty or cut short")
	}
	if !bytes.Equal(magic, webmMagic) {
		return 0, errorf(CodeBadRequest, "the video is not WebM")
	}
	if _, err := f.Write(magic); err != nil {
		return 0, fmt.Errorf("write video: %w", err)
	}
	n, err := io.Copy(f, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return 0, err
		}
		return 0, fmt.Errorf("receive video: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync video: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close video: %w", err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return 0, fmt.Errorf("store video: %w", err)
	}
	return n + int64(len(magic)), nil
}

// videoURL is where the interview's tenant plays the candidate's video, ""
// when there is none (for the dashboard's interview page and the API).
func (s *Server) videoURL(iv store.Interview) string {
	if _, err := os.Stat(s.videoPath(iv)); err != nil {
		return ""
	}
	return "/api/v1/interviews/" + iv.ID + "/video"
}

func (s *Server) videoPath(iv store.Interview) string {
	return filepath.Join(s.cfg.DataDir, recordingsDir, iv.TenantID, iv.ID+videoFileExt)
}

// handleGetVideo serves the candidate's video to the interview's tenant,
// with Range support (seeking in a <video> element).
func (s *Server) handleGetVideo(c echo.Context) error {
	iv, err := s.db.Interview(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	f, err := os.Open(s.videoPath(iv))
	if errors.Is(err, os.ErrNotExist) {
		return errorf(CodeNotFound, "this interview has no video")
	}
	if err != nil {
		return fmt.Errorf("open video: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat video: %w", err)
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "video/webm")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf("inline; filename=%q", iv.ID+videoFileExt))
	h.Set("Cache-Control", "private, no-store")
	http.ServeContent(c.Response(), c.Request(), iv.ID+videoFileExt, st.ModTime(), f)
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
