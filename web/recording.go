package web

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"candor/processor/contract"
	"candor/store"
)

// The interview recording. Each processor uploads the candidate's audio it
// heard as one segment: Ogg/Opus (WHIP, or Ogg chunks), WebM/Opus
// (MediaRecorder chunks) or WAV (16 kHz PCM: the WebSocket fallback, PCM or
// WAV chunks, or a mix of paths). A segment is named by the processor (the
// Candor-Recording-Segment header, else the processor token's machine) and
// placed on the media clock by Candor-Recording-Start-Ms. A re-upload of a
// segment replaces it; another segment is kept beside it, so a replacement
// processor never overwrites its predecessor's recording. Segments are
// stored as <DataDir>/recordings/<tenant>/<interview>/<start_ms>-<segment>.<ext>
// and served, in media order, as the interview's recording parts.

const (
	recordingSegmentHeader = contract.RecordingSegmentHeader
	recordingStartHeader   = contract.RecordingStartHeader
	// maxRecordingParts bounds the segments of one interview: a processor
	// uploads a part every minute of audio (CANDOR_RECORDING_SEGMENT), so
	// this is about 16 hours at the default.
	maxRecordingParts = 1000
)

// audioFormat is a recording file type the player can play.
type audioFormat struct {
	ext, contentType, name string
	magic                  func(head []byte) bool
}

var audioFormats = []audioFormat{
	{".ogg", "audio/ogg", "Ogg", func(h []byte) bool { return bytes.HasPrefix(h, []byte("OggS")) }},
	{".webm", "audio/webm", "WebM", func(h []byte) bool { return bytes.HasPrefix(h, webmMagic) }},
	{".wav", "audio/wav", "WAV", func(h []byte) bool {
		return len(h) >= 12 && string(h[:4]) == "RIFF" && string(h[8:12]) == "WAVE"
	}},
}

// audioFormatOf maps a Content-Type to the format it announces; sniff is
// true for application/octet-stream (the magic bytes decide).
func audioFormatOf(contentType string) (f audioFormat, sniff, ok bool) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "audio/ogg", "application/ogg", "audio/opus":
		return audioFormats[0], false, true
	case "audio/webm", "video/webm":
		return audioFormats[1], false, true
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave":
		return audioFormats[2], false, true
	case echo.MIMEOctetStream:
		return audioFormat{}, true, true
	}
	return audioFormat{}, false, false
}

func audioFormatOfExt(ext string) (audioFormat, bool) {
	for _, f := range audioFormats {
		if f.ext == ext {
			return f, true
		}
	}
	return audioFormat{}, false
}

var segmentIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// partOf reports whether segment is a part <whole>-<n> of segment whole.
func partOf(segment, whole string) bool {
	n, ok := strings.CutPrefix(segment, whole+"-")
	if !ok || n == "" {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// handleBridgeRecording stores one segment of the interview's recording.
// The body is streamed to a temporary file and renamed into place, so a
// reader never sees half a file and a failed upload leaves the previous one.
func (s *Server) handleBridgeRecording(c echo.Context) error {
	req := c.Request()
	format, sniff, ok := audioFormatOf(req.Header.Get(echo.HeaderContentType))
	if !ok {
		return errorf(CodeUnsupportedMedia, "the recording must be sent as Content-Type: audio/ogg, audio/webm or audio/wav")
	}
	segment := req.Header.Get(recordingSegmentHeader)
	if segment == "" {
		// A processor that does not name its segment gets one per machine
		// (the processor token is per machine).
		tok, _ := bearerToken(req.Header.Get(echo.HeaderAuthorization))
		sum := sha256.Sum256([]byte(tok))
		segment = "m" + hex.EncodeToString(sum[:8])
	}
	if !segmentIDPattern.MatchString(segment) {
		return errorf(CodeBadRequest, "%s must be 1 to 64 letters, digits, '-' or '_'", recordingSegmentHeader)
	}
	var startMS int64
	if v := req.Header.Get(recordingStartHeader); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1e12 {
			return errorf(CodeBadRequest, "%s must be a number of milliseconds >= 0", recordingStartHeader)
		}
		startMS = n
	}
	if r := bridgeRetired(c); r != nil && startMS >= r.HandoverMediaMS {
		// A retired processor uploads what it heard before the hand-over.
		return errorf(CodeConflict, "this processor was replaced at %d ms on the media clock; its recording starts before that", r.HandoverMediaMS)
	}
	limit := s.cfg.RecordingLimit
	if req.ContentLength > limit {
		return errorf(CodePayloadTooLarge, "the recording exceeds %d bytes", limit)
	}
	iv := bridgeInterview(c)
	dir := filepath.Join(s.cfg.DataDir, recordingsDir, iv.TenantID, iv.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("recordings dir: %w", err)
	}
	parts, err := s.recordingParts(iv)
	if err != nil {
		return err
	}
	if len(parts) >= maxRecordingParts && !slices.ContainsFunc(parts, func(p recordingPart) bool { return p.segment == segment }) {
		return errorf(CodeConflict, "this interview already has %d recording segments", len(parts))
	}
	stem := fmt.Sprintf("%012d-%s", startMS, segment)
	n, format, err := storeRecording(dir, stem, format, sniff, http.MaxBytesReader(c.Response(), req.Body, limit))
	if err != nil {
		return err
	}
	// The segment's earlier upload in another format is replaced too, and
	// so are the parts <segment>-<n> a processor uploaded while recording:
	// this upload (its compressed original) holds all of their audio.
	for _, p := range parts {
		if p.segment == segment && filepath.Base(p.path) != stem+format.ext || partOf(p.segment, segment) {
			if err := os.Remove(p.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("replace recording segment: %w", err)
			}
		}
	}
	if parts, err = s.recordingParts(iv); err != nil {
		return err
	}
	ctx := req.Context()
	if len(parts) > 0 {
		if err := s.db.SetRecording(ctx, iv.TenantID, iv.ID, parts[0].rel); err != nil {
			return fmt.Errorf("record recording path: %w", err)
		}
	}
	if err := s.recordEvent(ctx, iv.TenantID, iv.ID, "recording.stored", map[string]any{
		"bytes": n, "segment": segment, "start_ms": startMS, "content_type": format.contentType, "parts": len(parts),
	}); err != nil {
		return fmt.Errorf("record recording.stored: %w", err)
	}
	return c.JSON(http.StatusOK, map[string]int64{"bytes": n})
}

// storeRecording streams r to a temporary file in dir, checks its magic
// bytes against the announced format (or picks the format by them when
// sniff), syncs it and renames it to <stem><ext>.
func storeRecording(dir, stem string, format audioFormat, sniff bool, r io.Reader) (int64, audioFormat, error) {
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return 0, format, fmt.Errorf("temporary recording file: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	defer f.Close()

	head := make([]byte, 12)
	k, err := io.ReadFull(r, head)
	head = head[:k]
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return 0, format, err
		}
		if !errors.Is(err, io.EOF) {
			return 0, format, fmt.Errorf("receive recording: %w", err)
		}
	}
	if len(head) < 4 {
		return 0, format, errorf(CodeBadRequest, "the recording is empty or shorter than a file header")
	}
	if sniff {
		i := slices.IndexFunc(audioFormats, func(f audioFormat) bool { return f.magic(head) })
		if i < 0 {
			return 0, format, errorf(CodeBadRequest, "the recording is not Ogg, WebM or WAV")
		}
		format = audioFormats[i]
	} else if !format.magic(head) {
		return 0, format, errorf(CodeBadRequest, "the recording is not %s, as its Content-Type says (its first bytes do not match)", format.name)
	}
	if _, err := f.Write(head); err != nil {
		return 0, format, fmt.Errorf("write recording: %w", err)
	}
	n, err := io.Copy(f, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return 0, format, err
		}
		return 0, format, fmt.Errorf("receive recording: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, format, fmt.Errorf("sync recording: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, format, fmt.Errorf("close recording: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, stem+format.ext)); err != nil {
		return 0, format, fmt.Errorf("store recording: %w", err)
	}
	return n + int64(len(head)), format, nil
}

// recordingPart is one stored segment of an interview's recording.
type recordingPart struct {
	path, rel string // absolute; relative to the data dir (slashes)
	segment   string
	startMS   int64
	format    audioFormat
	size      int64
	modTime   time.Time
}

// recordingParts lists iv's recording segments in media order (start, then
// upload time). A recording stored before segments existed
// (recordings/<tenant>/<id>.ogg) is the only part, starting at 0.
func (s *Server) recordingParts(iv store.Interview) ([]recordingPart, error) {
	rel := filepath.Join(recordingsDir, iv.TenantID, iv.ID)
	if iv.RecordingPath != "" && !strings.HasPrefix(iv.RecordingPath, filepath.ToSlash(rel)+"/") {
		path := filepath.Join(s.cfg.DataDir, filepath.FromSlash(iv.RecordingPath))
		st, err := os.Stat(path)
		if err != nil {
			return nil, nil
		}
		f, _ := audioFormatOfExt(filepath.Ext(path))
		if f.ext == "" {
			f = audioFormats[0]
		}
		return []recordingPart{{path: path, rel: iv.RecordingPath, format: f, size: st.Size(), modTime: st.ModTime()}}, nil
	}
	dir := filepath.Join(s.cfg.DataDir, rel)
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list recording segments: %w", err)
	}
	var parts []recordingPart
	for _, de := range des {
		name := de.Name()
		format, ok := audioFormatOfExt(filepath.Ext(name))
		if !ok || !de.Type().IsRegular() {
			continue // .upload-* temporaries among them
		}
		start, segment, ok := strings.Cut(strings.TrimSuffix(name, format.ext), "-")
		ms, err := strconv.ParseInt(start, 10, 64)
		if !ok || err != nil {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		parts = append(parts, recordingPart{
			path: filepath.Join(dir, name), rel: filepath.ToSlash(filepath.Join(rel, name)),
			segment: segment, startMS: ms, format: format, size: info.Size(), modTime: info.ModTime(),
		})
	}
	slices.SortFunc(parts, func(a, b recordingPart) int {
		return cmp.Or(cmp.Compare(a.startMS, b.startMS), a.modTime.Compare(b.modTime), strings.Compare(a.segment, b.segment))
	})
	return parts, nil
}

// recordingPartURL is where part i (1-based) of iv's recording is played;
// part 1 is also the interview's recording_url.
func recordingPartURL(ivID string, i int) string {
	u := "/api/v1/interviews/" + ivID + "/recording"
	if i > 1 {
		u += "?part=" + strconv.Itoa(i)
	}
	return u
}

// handleGetRecording serves part ?part=N (1-based, default 1) of an
// interview's recording to its tenant, with Range support.
func (s *Server) handleGetRecording(c echo.Context) error {
	iv, err := s.db.Interview(c.Request().Context(), principalOf(c).TenantID, c.Param("id"))
	if err != nil {
		return notFound(err, "interview")
	}
	if iv.RecordingPath == "" {
		return errorf(CodeNotFound, "this interview has no recording")
	}
	n := 1
	if v := c.QueryParam("part"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			return errorf(CodeBadRequest, "part must be a number >= 1")
		}
	}
	parts, err := s.recordingParts(iv)
	if err != nil {
		return err
	}
	if n > len(parts) {
		if len(parts) == 0 {
			return errorf(CodeNotFound, "the recording file is missing from the data directory")
		}
		return errorf(CodeNotFound, "this recording has %d parts", len(parts))
	}
	p := parts[n-1]
	f, err := os.Open(p.path)
	if errors.Is(err, os.ErrNotExist) {
		return errorf(CodeNotFound, "the recording file is missing from the data directory")
	}
	if err != nil {
		return fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat recording: %w", err)
	}
	name := iv.ID + p.format.ext
	if len(parts) > 1 {
		name = fmt.Sprintf("%s-part%d%s", iv.ID, n, p.format.ext)
	}
	c.Response().Header().Set(echo.HeaderContentType, p.format.contentType)
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("inline; filename=%q", name))
	http.ServeContent(c.Response(), c.Request(), name, st.ModTime(), f)
	return nil
}

// recordingPartJSON describes one part of the recording (additive to
// DESIGN §5: recording_url is part 1).
type recordingPartJSON struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	StartMS     int64  `json:"start_ms"`
	Bytes       int64  `json:"bytes"`
}
