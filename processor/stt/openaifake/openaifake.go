// Package openaifake is a local stand-in for the parts of the OpenAI API
// Candor uses: POST /v1/audio/transcriptions (multipart, as documented), POST
// /v1/audio/speech, and the Realtime API over WebSocket (GA interface), both
// its conversations (the openai-realtime interviewer) and its transcription
// sessions (the openai-realtime speech engine), with server VAD. It
// validates requests the way the service does, so tests against it catch
// malformed calls, and it can be told to fail, to answer late or out of
// order, and to cap session length.
package openaifake

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"candor/processor/media"
	"candor/processor/stt"
)

// Options configure a Server. Zero values give a well-behaved service.
type Options struct {
	APIKey string // required bearer token (default "test-key")
	// Transcribe turns audio into text for both transcription paths
	// (default DescribeTone).
	Transcribe func(pcm []int16, rate int) string
	// Fail, if set, is asked before each HTTP request n (from 0); a non-zero
	// status is returned as an OpenAI error with the given Retry-After.
	Fail func(n int) (status int, retryAfter string)
	// TranscriptionDelay delays the Realtime transcription of user turn n
	// (from 0) of a session, so completions can arrive out of order or
	// after the model's answer.
	TranscriptionDelay func(n int) time.Duration
	// MaxSessionAudio ends a Realtime session with a session_expired error
	// once it has received more audio than this (0: no cap). The service's
	// cap is 60 minutes of session time.
	MaxSessionAudio time.Duration

	// Reply is what the conversation "model" says in its response n (from
	// 0) of a session (default "Reply n."); instructions are the session's
	// at that time.
	Reply func(n int, instructions string) string
	// SpeechPerChar is the length of model speech per character of its
	// text (default 40 ms).
	SpeechPerChar time.Duration
	// AudioPace is the pause between two 100 ms audio deltas of a response
	// (default 0: as fast as the socket takes them, like the service).
	AudioPace time.Duration
}

// TranscriptionRequest is one accepted /v1/audio/transcriptions call.
type TranscriptionRequest struct {
	Model, Filename, ResponseFormat, Language string
	PCM                                       []int16 // decoded to 16 kHz mono
	Rate                                      int     // the file's own rate
}

// SpeechRequest is one accepted /v1/audio/speech call.
type SpeechRequest struct {
	Model, Input, Voice, ResponseFormat string
}

// Server is the fake; its URL is the base URL (no /v1).
type Server struct {
	URL  string
	opts Options
	srv  *httptest.Server

	mu          sync.Mutex
	n           int
	transcribed []TranscriptionRequest
	spoken      []SpeechRequest
	sessions    []*Session
	conns       map[*websocket.Conn]bool // open Realtime connections
	wg          sync.WaitGroup
}

// New starts a fake on 127.0.0.1.
func New(opts Options) *Server {
	if opts.APIKey == "" {
		opts.APIKey = "test-key"
	}
	if opts.Transcribe == nil {
		opts.Transcribe = DescribeTone
	}
	if opts.Reply == nil {
		opts.Reply = func(n int, _ string) string { return fmt.Sprintf("Reply %d.", n) }
	}
	if opts.SpeechPerChar <= 0 {
		opts.SpeechPerChar = 40 * time.Millisecond
	}
	s := &Server{opts: opts, conns: map[*websocket.Conn]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/audio/transcriptions", s.transcriptions)
	mux.HandleFunc("/v1/audio/speech", s.speech)
	mux.HandleFunc("/v1/realtime", s.realtime)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close stops the server, ends open Realtime sessions and waits for their
// goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
	s.wg.Wait()
}

// Transcriptions returns the accepted transcription requests.
func (s *Server) Transcriptions() []TranscriptionRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TranscriptionRequest(nil), s.transcribed...)
}

// Speeches returns the accepted speech requests.
func (s *Server) Speeches() []SpeechRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SpeechRequest(nil), s.spoken...)
}

// Sessions returns copies of the Realtime sessions seen so far.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, len(s.sessions))
	for i, ss := range s.sessions {
		c := *ss
		c.Config = maps.Clone(ss.Config)
		c.Audio = slices.Clone(ss.Audio)
		c.Items = slices.Clone(ss.Items)
		c.Truncations = slices.Clone(ss.Truncations)
		out[i] = c
	}
	return out
}

// apiError writes the OpenAI error envelope.
func apiError(w http.ResponseWriter, status int, typ, param, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var p any
	if param != "" {
		p = param
	}
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": p, "code": nil}})
}

// admit checks method, auth and the failure script; false means answered.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		apiError(w, http.StatusMethodNotAllowed, "invalid_request_error", "", "method not allowed")
		return false
	}
	if r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		apiError(w, http.StatusUnauthorized, "invalid_request_error", "", "Incorrect API key provided.")
		return false
	}
	s.mu.Lock()
	n := s.n
	s.n++
	s.mu.Unlock()
	if s.opts.Fail != nil {
		if status, ra := s.opts.Fail(n); status != 0 {
			if ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			apiError(w, status, "server_error", "", fmt.Sprintf("scripted failure %d", status))
			return false
		}
	}
	return true
}

// transcriptionFields are the form fields /v1/audio/transcriptions documents.
var transcriptionFields = map[string]bool{
	"file": true, "model": true, "language": true, "prompt": true, "response_format": true,
	"temperature": true, "timestamp_granularities[]": true, "chunking_strategy": true, "include[]": true, "stream": true,
}

func (s *Server) transcriptions(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r) {
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "", "Content-Type must be multipart/form-data")
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	req := TranscriptionRequest{ResponseFormat: "json"}
	var file []byte
	haveFile := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			apiError(w, http.StatusBadRequest, "invalid_request_error", "", "malformed multipart body: "+err.Error())
			return
		}
		name := part.FormName()
		if !transcriptionFields[name] {
			apiError(w, http.StatusBadRequest, "invalid_request_error", name, "Unrecognized request argument supplied: "+name)
			return
		}
		val, _ := io.ReadAll(io.LimitReader(part, 26<<20))
		switch name {
		case "file":
			if part.FileName() == "" {
				apiError(w, http.StatusBadRequest, "invalid_request_error", "file", "file must be a file upload with a filename")
				return
			}
			req.Filename, file, haveFile = part.FileName(), val, true
		case "model":
			req.Model = string(val)
		case "response_format":
			req.ResponseFormat = string(val)
		case "language":
			req.Language = string(val)
		}
	}
	if !haveFile {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "file", "you must provide a file")
		return
	}
	if req.Model == "" {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "model", "you must provide a model parameter")
		return
	}
	pcm, rate, channels, err := media.DecodeWAV(file)
	if err == nil && channels != 1 {
		err = fmt.Errorf("%d channels, expected mono (what the client sends)", channels)
	}
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "file", "Invalid file format: "+err.Error())
		return
	}
	req.PCM, req.Rate = pcm, rate
	text := s.opts.Transcribe(pcm, media.SampleRate)
	switch req.ResponseFormat {
	case "json":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"text": text})
	case "text":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, text+"\n")
	case "verbose_json":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"task": "transcribe", "language": "english",
			"duration": float64(len(pcm)) / float64(rate), "text": text})
	default:
		apiError(w, http.StatusBadRequest, "invalid_request_error", "response_format", "unsupported response_format "+req.ResponseFormat)
		return
	}
	s.mu.Lock()
	s.transcribed = append(s.transcribed, req)
	s.mu.Unlock()
}

// DescribeTone "transcribes" synthetic test audio: it names the dominant
// frequency of the loud samples, rounded to 50 Hz ("tone 450"), or returns
// "" for silence. Distinct tones make order and completeness checkable.
func DescribeTone(pcm []int16, rate int) string {
	frame := rate / 100
	crossings, loud := 0, 0
	for off := 0; off+frame <= len(pcm); off += frame {
		f := pcm[off : off+frame]
		var sum float64
		n := 0
		for i, v := range f {
			sum += float64(v) * float64(v)
			if p := off + i - 1; p >= 0 && (pcm[p] < 0) != (v < 0) {
				n++
			}
		}
		if math.Sqrt(sum/float64(frame)) >= 1000 {
			crossings += n
			loud += frame
		}
	}
	if loud < rate/50 { // under 20 ms of signal
		return ""
	}
	hz := float64(crossings) / 2 / (float64(loud) / float64(rate))
	return fmt.Sprintf("tone %d", int(math.Round(hz/50))*50)
}

func (s *Server) speech(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r) {
		return
	}
	var req struct {
		Model          string   `json:"model"`
		Input          string   `json:"input"`
		Voice          string   `json:"voice"`
		ResponseFormat string   `json:"response_format"`
		Speed          *float64 `json:"speed"`
		Instructions   string   `json:"instructions"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "", "invalid JSON body: "+err.Error())
		return
	}
	switch {
	case req.Model == "":
		apiError(w, http.StatusBadRequest, "invalid_request_error", "model", "you must provide a model parameter")
		return
	case req.Input == "" || len(req.Input) > 4096:
		apiError(w, http.StatusBadRequest, "invalid_request_error", "input", "input must be 1 to 4096 characters")
		return
	case req.Voice == "":
		apiError(w, http.StatusBadRequest, "invalid_request_error", "voice", "you must provide a voice")
		return
	}
	if req.ResponseFormat == "" {
		req.ResponseFormat = "mp3"
	}
	// 60 ms of a 300 Hz tone per input character, at 24 kHz like the service.
	const rate = 24000
	pcm := make([]int16, len(req.Input)*rate*60/1000)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*300*float64(i)/rate))
	}
	raw := new(bytes.Buffer)
	binary.Write(raw, binary.LittleEndian, pcm)
	switch req.ResponseFormat {
	case "pcm":
		w.Header().Set("Content-Type", "audio/pcm")
		w.Write(raw.Bytes())
	case "wav":
		w.Header().Set("Content-Type", "audio/wav")
		w.Write(stt.EncodeWAV(pcm, rate))
	default:
		apiError(w, http.StatusBadRequest, "invalid_request_error", "response_format", "the fake only produces pcm and wav")
		return
	}
	s.mu.Lock()
	s.spoken = append(s.spoken, SpeechRequest{Model: req.Model, Input: req.Input, Voice: req.Voice, ResponseFormat: req.ResponseFormat})
	s.mu.Unlock()
}
