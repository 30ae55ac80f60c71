package stt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"candor/processor/contract/egress"
)

// OpenAI transcribes utterances cut by the Segmenter with POST
// {base}/v1/audio/transcriptions, one request per utterance, in order. Any
// OpenAI-compatible server works (OpenAI, Groq, speaches, LocalAI,
// whisper.cpp server).
type OpenAI struct {
	cfg    Config
	client *http.Client
}

var _ Engine = (*OpenAI)(nil)

// NewOpenAI returns the engine; the model defaults to whisper-1.
func NewOpenAI(cfg Config) *OpenAI {
	if cfg.Model == "" {
		cfg.Model = "whisper-1"
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 4
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 500 * time.Millisecond
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	client := &http.Client{}
	if cfg.PublicTargetsOnly {
		client.Transport = egress.Transport()
	}
	return &OpenAI{cfg: cfg, client: client}
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
	resp, err := doWithRetry(ctx, o.client, o.cfg, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, o.cfg.baseURL()+"/v1/audio/transcriptions", bytes.NewReader(body.Bytes()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+o.cfg.OpenAIKey)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return req, nil
	})
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

// APIError is a non-retryable (or finally failed) answer from an OpenAI-compatible server.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

// doWithRetry sends the request built by newReq, retrying network errors,
// 429 and 5xx with exponential backoff; a Retry-After header sets the wait.
// A 2xx response is returned open; anything else becomes an *APIError.
func doWithRetry(ctx context.Context, client *http.Client, cfg Config, newReq func() (*http.Request, error)) (*http.Response, error) {
	backoff := cfg.RetryBase
	var last error
	for attempt := 0; ; attempt++ {
		req, err := newReq()
		if err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
		resp, err := client.Do(req.WithContext(rctx))
		wait := backoff
		switch {
		case err != nil:
			cancel()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			last = err
		case resp.StatusCode/100 == 2:
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		default:
			msg := apiErrorMessage(resp)
			cancel()
			last = &APIError{Status: resp.StatusCode, Message: msg}
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
				return nil, last
			}
			if ra, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
				wait = min(ra, maxRetryAfter)
			}
		}
		if attempt >= cfg.MaxRetries {
			return nil, fmt.Errorf("after %d attempts: %w", attempt+1, last)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, 8*time.Second)
	}
}

// maxRetryAfter bounds a server-requested wait; beyond it the utterance is
// better reported as failed than held back for minutes.
const maxRetryAfter = 2 * time.Minute

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func apiErrorMessage(resp *http.Response) string {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return strings.TrimSpace(string(raw))
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}
