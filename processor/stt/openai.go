package stt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"
	"sync"

	"candor/processor/contract"
	"candor/processor/openai"
)

// OpenAI transcribes utterances cut by the Segmenter with POST
// {base}/v1/audio/transcriptions, one request per utterance, in order. Any
// OpenAI-compatible server works (OpenAI, Groq, speaches, LocalAI,
// whisper.cpp server).
type OpenAI struct {
	cfg    Config
	client *openai.Client
}

var _ Engine = (*OpenAI)(nil)

// NewOpenAI returns the engine; the model defaults to whisper-1.
func init() {
	Register(EngineSpec{
		Name: "openai", OpenAI: true,
		Settings: []string{contract.EnvOpenAIKey, contract.EnvOpenAIBaseURL},
		New:      func(cfg Config) (Engine, error) { return NewOpenAI(cfg), nil },
	})
}

func NewOpenAI(cfg Config) *OpenAI {
	if cfg.Model == "" {
		cfg.Model = "whisper-1"
	}
	return &OpenAI{cfg: cfg, client: cfg.openAIClient()}
}

func (o *OpenAI) Name() string { return "openai" }

func (o *OpenAI) NewStream(ctx context.Context, baseMS int64, onResult func(Result)) (Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &oaStream{eng: o, ctx: ctx, cancel: cancel, onResult: onResult, wake: make(chan struct{}, 1), progress: make(chan struct{}, 1), stopped: make(chan struct{})}
	s.seg = NewSegmenter(baseMS, o.cfg.Segmenter, s.enqueue)
	go s.work()
	return s, nil
}

type oaStream struct {
	eng      *OpenAI
	ctx      context.Context
	cancel   context.CancelFunc
	onResult func(Result)
	seg      *Segmenter // used only under wmu
	wmu      sync.Mutex

	mu        sync.Mutex
	queue     []Utterance
	submitted int
	finished  int
	failures  []error // since the last Flush
	closed    bool

	wake     chan struct{} // work to do
	progress chan struct{} // an utterance finished
	stopped  chan struct{} // the worker has exited
}

func (s *oaStream) enqueue(u Utterance) {
	s.mu.Lock()
	s.queue = append(s.queue, u)
	s.submitted++
	s.mu.Unlock()
	notify(s.wake)
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *oaStream) Write(pcm []int16) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	s.seg.Write(pcm)
	return nil
}

// Flush ends the open utterance and waits until every queued one has been
// transcribed or has failed; failures since the last Flush are returned.
func (s *oaStream) Flush(ctx context.Context) error {
	s.wmu.Lock()
	if s.ctx.Err() != nil {
		s.wmu.Unlock()
		return ErrClosed
	}
	s.seg.Flush()
	s.wmu.Unlock()
	for {
		s.mu.Lock()
		if s.finished == s.submitted {
			errs := s.failures
			s.failures = nil
			s.mu.Unlock()
			return joinErrors("openai transcription", errs)
		}
		s.mu.Unlock()
		select {
		case <-s.progress:
		case <-ctx.Done():
			return fmt.Errorf("openai flush: %w", ctx.Err())
		case <-s.stopped:
			return ErrClosed
		}
	}
}

func (s *oaStream) Close() error {
	s.cancel()
	<-s.stopped
	return nil
}

// work transcribes queued utterances one at a time, so results stay in order.
func (s *oaStream) work() {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-s.ctx.Done():
				return
			}
		}
		u := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()

		text, err := s.eng.transcribe(s.ctx, u.PCM)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			err = fmt.Errorf("utterance %d-%d ms: %w", u.StartMS, u.EndMS, err)
			s.eng.cfg.reportError(err)
		} else if text = strings.TrimSpace(text); text != "" {
			s.onResult(Result{Text: text, StartMS: u.StartMS, EndMS: u.EndMS})
		}
		s.mu.Lock()
		s.finished++
		if err != nil {
			s.failures = append(s.failures, err)
		}
		s.mu.Unlock()
		notify(s.progress)
	}
}

func joinErrors(what string, errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s: %w", what, errs[0])
	default:
		return fmt.Errorf("%s: %d utterances failed, first: %w", what, len(errs), errs[0])
	}
}

// transcribe posts one utterance as a WAV file and returns its text.
func (o *OpenAI) transcribe(ctx context.Context, pcm []int16) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="utterance.wav"`)
	h.Set("Content-Type", "audio/wav")
	fw, err := mw.CreatePart(h)
	if err != nil {
		return "", err
	}
	fw.Write(EncodeWAV(pcm, SampleRate))
	mw.WriteField("model", o.cfg.Model)
	mw.WriteField("response_format", "json")
	if o.cfg.Language != "" {
		mw.WriteField("language", o.cfg.Language)
	}
	if err := mw.Close(); err != nil {
		return "", err
	}
	resp, err := o.client.Post(ctx, "/v1/audio/transcriptions", mw.FormDataContentType(), body.Bytes())
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Text string `json:"text"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", fmt.Errorf("decode transcription: %w", err)
	}
	return out.Text, nil
}

// APIError is a non-retryable (or finally failed) answer from an
// OpenAI-compatible server.
type APIError = openai.APIError
