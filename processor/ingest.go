package processor

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"candor/processor/media"

	"candor/processor/contract"
)

// Limits of the ingest endpoints.
//
// Anyone with an invite link reaches these, so each bounds what a client
// can make the processor hold: a /process-audio body (a 2 s chunk is tens
// of KB; 1 MiB, base64 included, also stays under Fly's replay body
// limit), the audio held out of order per stream, and the live media
// sessions (WHIP + /ws/audio) and /events sockets at once. Past a cap the
// answer is 413 or 429 with a JSON error, and the stream goes on.
const (
	maxAudioBody     = 1 << 20
	maxHeldAudio     = 16 << 20 // per /process-audio stream, waiting for a gap
	maxSDPBody       = 64 << 10
	maxAudioFrame    = 1 << 20 // one /ws/audio frame
	maxSpeakerLen    = 64
	maxMediaSessions = 4 // WHIP and /ws/audio together
	maxEventClients  = 8
)

// mediaSessionsFull reports whether the interview has maxMediaSessions
// live WHIP and /ws/audio sessions.
func (s *session) mediaSessionsFull() bool {
	s.recMu.Lock()
	n := len(s.whipIDs)
	s.recMu.Unlock()
	s.audioMu.Lock()
	n += len(s.wsAudio)
	s.audioMu.Unlock()
	return n >= maxMediaSessions
}

func tooManyMediaSessions(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusTooManyRequests, "too_many_sessions",
		fmt.Sprintf("this interview already has %d live audio connections: close one (DELETE its WHIP session) before opening another", maxMediaSessions))
}

// chunkStream is one speaker's /process-audio stream: chunks ordered by the
// reassembler, decoded by one StreamDecoder.
type chunkStream struct {
	mime  string
	reasm *media.Reassembler

	mu      sync.Mutex // serializes the decoder (deliver and close)
	dec     media.StreamDecoder
	decErr  error
	skipped int
}

func (s *session) newChunkStream(mimeType string) (*chunkStream, error) {
	cs := &chunkStream{mime: mimeType}
	dec, err := media.NewStreamDecoder(mimeType, func(pcm []int16) { s.writePCM(cs, pcm) })
	if err != nil {
		return nil, err
	}
	cs.dec = dec
	ext, container := chunkContainer(mimeType)
	cs.reasm = media.NewReassembler(s.cfg.Timing.ReassemblyGap, func(seq int64, chunk []byte) {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		if cs.decErr != nil {
			return
		}
		if err := cs.dec.Write(chunk); err != nil {
			cs.decErr = err
			s.rec.spoil(cs)
			s.log.Warn("process-audio stream cannot be decoded; later chunks are dropped", "seq", seq, "mime_type", mimeType, "err", err)
			return
		}
		if container != "" {
			if err := s.rec.writeOriginal(cs, ext, container, chunk); err != nil {
				s.log.Warn("recording: the original WebM/Ogg is not kept; the WAV will be uploaded", "err", err)
			}
		}
	}, func(seq int64) {
		// The bytes after a missing chunk do not continue a valid file (a
		// MediaRecorder chunk ends anywhere, even inside a block), and the
		// decoder drops what it cannot parse: the WAV of what was decoded
		// is the recording.
		s.rec.spoil(cs)
		s.log.Warn("process-audio chunk never arrived; skipped", "seq", seq)
	})
	return cs, nil
}

// chunkContainer is the file extension and content type under which a
// /process-audio stream's bytes, concatenated in order, form a playable
// file; "" for raw PCM and WAV chunks (those are recorded as the WAV of the
// decoded samples).
func chunkContainer(mimeType string) (ext, contentType string) {
	typ, _, _ := mime.ParseMediaType(mimeType)
	switch typ {
	case "audio/webm", "video/webm", "audio/x-matroska", "video/x-matroska":
		return ".webm", "audio/webm"
	case "audio/ogg", "application/ogg", "audio/opus":
		return ".ogg", "audio/ogg"
	}
	return "", ""
}

// close delivers what the reassembler holds, flushes the decoder and stops.
func (cs *chunkStream) close(s *session) {
	cs.reasm.Flush()
	cs.reasm.Close()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if err := cs.dec.Close(); err != nil && cs.decErr == nil {
		s.log.Debug("process-audio stream ended mid-frame", "err", err)
	}
}

// audioChunk is the seed's /process-audio body.
type audioChunk struct {
	AudioChunk     string `json:"audio_chunk"`
	Speaker        string `json:"speaker"`
	SequenceNumber *int64 `json:"sequence_number"`
	MimeType       string `json:"mime_type"`
}

type processAudioAnswer struct {
	SequenceNumber int64            `json:"sequence_number"`
	Duplicate      bool             `json:"duplicate,omitempty"`
	Entries        []contract.Entry `json:"entries"`
}

func (s *session) handleProcessAudio(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAudioBody)
	var c audioChunk
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the body is larger than 1 MiB (base64 included): send smaller chunks")
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_json", "the body is not JSON of the form {audio_chunk, speaker, sequence_number, mime_type?}")
		return
	}
	if c.SequenceNumber == nil || *c.SequenceNumber < 0 {
		writeError(w, http.StatusBadRequest, "invalid_sequence_number", "sequence_number must be a number >= 0")
		return
	}
	speaker := c.Speaker
	if speaker == "" {
		speaker = "candidate"
	}
	// Only the candidate is transcribed here: the interviewer is this processor.
	if speaker != "candidate" {
		writeError(w, http.StatusBadRequest, "invalid_speaker", `speaker must be "candidate"`)
		return
	}
	audio, err := base64.StdEncoding.DecodeString(c.AudioChunk)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_audio", "audio_chunk is not standard base64")
		return
	}
	mimeType := normalizeMime(c.MimeType)

	s.audioMu.Lock()
	if s.phase.reached(phaseClosing) {
		s.audioMu.Unlock()
		writeError(w, http.StatusConflict, "ended", "the interview has ended")
		return
	}
	cs := s.chunks[speaker]
	if cs == nil {
		cs, err = s.newChunkStream(mimeType)
		if err != nil {
			s.audioMu.Unlock()
			writeError(w, http.StatusBadRequest, "unsupported_media_type", "mime_type "+quote(c.MimeType)+" is not supported: use audio/webm;codecs=opus, audio/ogg;codecs=opus, audio/wav or audio/pcm;rate=16000")
			return
		}
		s.chunks[speaker] = cs
	}
	s.audioMu.Unlock()
	if cs.mime != mimeType {
		writeError(w, http.StatusBadRequest, "mime_type_changed", "mime_type changed within the stream (was "+quote(cs.mime)+"): one speaker's chunks form one continuous stream")
		return
	}
	// Push may deliver and decode synchronously; it must run without audioMu
	// (the reassembler's callbacks take it through writePCM).
	dup, err := cs.reasm.PushLimited(*c.SequenceNumber, audio, maxHeldAudio)
	if errors.Is(err, media.ErrHeldFull) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "too_much_out_of_order",
			fmt.Sprintf("more than %d MiB of this stream waits for earlier chunks: send the missing ones first, then this one again", maxHeldAudio>>20))
		return
	}
	entries, _ := s.Entries()
	if entries == nil {
		entries = []contract.Entry{}
	}
	writeJSON(w, http.StatusOK, processAudioAnswer{SequenceNumber: *c.SequenceNumber, Duplicate: dup, Entries: entries})
}

// normalizeMime canonicalizes a mime type so that chunks of one stream compare
// equal however their parameters are spelled.
func normalizeMime(m string) string {
	m = strings.TrimSpace(m)
	if m == "" {
		return "audio/webm;codecs=opus"
	}
	typ, params, err := mime.ParseMediaType(m)
	if err != nil {
		return strings.ToLower(m)
	}
	return mime.FormatMediaType(typ, params)
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

var upgrader = websocket.Upgrader{
	ReadBufferSize:  32 << 10,
	WriteBufferSize: 32 << 10,
	// The page lives on the control plane's origin; the token authorizes.
	CheckOrigin: func(*http.Request) bool { return true },
}

// handleWSAudio reads binary frames of s16le 16 kHz mono PCM. Text frames are
// control messages; none is needed yet, so they are ignored.
func (s *session) handleWSAudio(w http.ResponseWriter, r *http.Request) {
	s.audioMu.Lock()
	if s.phase.reached(phaseClosing) {
		s.audioMu.Unlock()
		writeError(w, http.StatusConflict, "ended", "the interview has ended")
		return
	}
	s.ingest.Add(1)
	s.audioMu.Unlock()
	defer s.ingest.Done()
	if s.mediaSessionsFull() {
		tooManyMediaSessions(w)
		return
	}
	// format=webm: the frames are one WebM/Opus stream (MediaRecorder's
	// chunks, in order), about 4 KB/s instead of PCM's 32 KB/s; the client
	// opts in, PCM stays the default.
	var dec media.StreamDecoder
	switch f := r.URL.Query().Get("format"); f {
	case "", "pcm":
	case "webm":
		var err error
		dec, err = media.NewStreamDecoder("audio/webm;codecs=opus", func(pcm []int16) { s.writePCM(dec, pcm) })
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "webm decoder: "+err.Error())
			return
		}
		defer dec.Close()
	default:
		writeError(w, http.StatusBadRequest, "invalid_format", "format must be pcm (s16le 16 kHz mono frames, the default) or webm (one WebM/Opus stream)")
		return
	}

	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	defer conn.Close()
	s.audioMu.Lock()
	if s.phase.reached(phaseClosing) {
		s.audioMu.Unlock()
		return
	}
	s.wsAudio[conn] = struct{}{}
	s.audioMu.Unlock()
	defer func() {
		s.audioMu.Lock()
		delete(s.wsAudio, conn)
		s.audioMu.Unlock()
	}()

	conn.SetReadLimit(maxAudioFrame)
	var odd []byte // a sample split across frames
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if typ != websocket.BinaryMessage {
			continue
		}
		if dec != nil {
			if err := dec.Write(data); err != nil {
				s.log.Warn("ws/audio webm stream cannot be decoded; closing it", "err", err)
				conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseUnsupportedData, "webm stream cannot be decoded"), time.Now().Add(time.Second))
				return
			}
			continue
		}
		if len(odd) > 0 {
			data = append(odd, data...)
			odd = nil
		}
		if len(data)%2 == 1 {
			odd = []byte{data[len(data)-1]}
			data = data[:len(data)-1]
		}
		pcm := make([]int16, len(data)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
		s.writePCM(conn, pcm)
	}
}

// whipHandler connects one WHIP session to the interview.
// id and closed are guarded by s.recMu: OnClosed may run before Offer returns.
type whipHandler struct {
	s      *session
	id     string
	closed bool
}

func (h *whipHandler) OnAudio(pcm []int16) { h.s.writePCM(h, pcm) }
func (h *whipHandler) OnClosed() {
	h.s.recMu.Lock()
	defer h.s.recMu.Unlock()
	h.closed = true
	if h.id != "" {
		delete(h.s.whipIDs, h.id)
	}
}

// handleWHIP answers an SDP offer (RFC 9725): 201, application/sdp, Location.
func (s *session) handleWHIP(w http.ResponseWriter, r *http.Request) {
	if s.whip == nil {
		writeError(w, http.StatusServiceUnavailable, "whip_unavailable", "WebRTC is not available on this processor: use /ws/audio")
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/sdp" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the offer must be sent as application/sdp")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDPBody))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the SDP offer is larger than 64 KiB")
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_body", "could not read the offer")
		return
	}
	offer := string(body)
	if !strings.HasPrefix(strings.TrimSpace(offer), "v=0") {
		writeError(w, http.StatusBadRequest, "invalid_sdp", "the body is not an SDP offer")
		return
	}
	if s.phase.reached(phaseClosing) {
		writeError(w, http.StatusConflict, "ended", "the interview has ended")
		return
	}
	if s.mediaSessionsFull() {
		tooManyMediaSessions(w)
		return
	}
	h := &whipHandler{s: s}
	answer, id, err := s.whip.Offer(r.Context(), offer, h, whipRecording{s.rec, h})
	if errors.Is(err, media.ErrBadOffer) {
		writeError(w, http.StatusBadRequest, "invalid_sdp", "the SDP offer cannot be answered: "+err.Error())
		return
	}
	if err != nil {
		s.log.Error("whip offer", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not answer the offer")
		return
	}
	s.recMu.Lock()
	h.id = id
	if !h.closed {
		s.whipIDs[id] = struct{}{}
	}
	s.recMu.Unlock()
	s.join()
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/whip/"+id)
	// RFC 9725 §4.4: the ICE servers a standard WHIP client may use (the
	// candidate page gets them earlier, in its join answer).
	for _, ice := range s.cfg.WebRTC.ICEServers {
		for _, u := range ice.URLs {
			link := "<" + u + `>; rel="ice-server"`
			if ice.Username != "" {
				link += `; username="` + ice.Username + `"; credential="` + fmt.Sprint(ice.Credential) + `"; credential-type="password"`
			}
			w.Header().Add("Link", link)
		}
	}
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

func (s *session) handleWHIPDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session")
	s.recMu.Lock()
	_, ok := s.whipIDs[id]
	delete(s.whipIDs, id)
	s.recMu.Unlock()
	if !ok || s.whip == nil {
		writeError(w, http.StatusNotFound, "not_found", "no such WHIP session")
		return
	}
	if err := s.whip.Delete(id); err != nil {
		s.log.Debug("whip delete", "session", id, "err", err)
	}
	w.WriteHeader(http.StatusOK)
}
