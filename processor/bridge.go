package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"candor/processor/contract"
)

// bridge is the processor's client of the control plane's bridge API
// (DESIGN §5, types in package contract): entries, events, state, recording.
type bridge struct {
	base    string // {control}/api/v1/bridge/interviews/{id}
	token   string
	http    *http.Client
	uploads *http.Client // no overall timeout: the caller's ctx bounds an upload

	// retired is closed once any answer says this processor was replaced
	// (contract.EventAnswer): it must drain and exit.
	retired     chan struct{}
	retiredOnce sync.Once
}

// Retired is closed once the control plane said this processor was
// replaced.
func (b *bridge) Retired() <-chan struct{} { return b.retired }

func (b *bridge) noteRetired(retired bool) {
	if retired {
		b.retiredOnce.Do(func() { close(b.retired) })
	}
}

// lenient decodes an answer if it can: an answer without the optional
// news (an older control plane's, a test's) is still a success.
type lenient struct{ v any }

func newBridge(controlURL, interviewID, token string) *bridge {
	return &bridge{
		base:    controlURL + contract.BridgePath + url.PathEscape(interviewID),
		token:   token,
		http:    &http.Client{Timeout: 30 * time.Second},
		uploads: &http.Client{},
		retired: make(chan struct{}),
	}
}

// bridgeError is a non-2xx answer from the bridge.
type bridgeError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *bridgeError) Error() string {
	return fmt.Sprintf("bridge %s %s: status %d: %s", e.Method, e.Path, e.Status, e.Body)
}

func (b *bridge) State(ctx context.Context) (contract.State, error) {
	var st contract.State
	err := b.do(ctx, http.MethodGet, "/state", "", nil, &st)
	b.noteRetired(err == nil && st.Retired)
	return st, err
}

func (b *bridge) PostEntries(ctx context.Context, es []contract.Entry) error {
	body, err := json.Marshal(contract.EntriesRequest{Entries: es})
	if err != nil {
		return fmt.Errorf("encode entries: %w", err)
	}
	var ans contract.EntriesAnswer
	err = b.do(ctx, http.MethodPost, "/entries", "application/json", bytes.NewReader(body), lenient{&ans})
	b.noteRetired(err == nil && ans.Retired)
	return err
}

func (b *bridge) PostEvent(ctx context.Context, ev contract.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	var ans contract.EventAnswer
	err = b.do(ctx, http.MethodPost, "/events", "application/json", bytes.NewReader(body), lenient{&ans})
	b.noteRetired(err == nil && ans.Retired)
	return err
}

// RecordingSegment names one processor's part of the interview recording.
// The control plane keeps one file per segment ID: a re-upload with the same
// ID replaces that segment (the same processor's file, grown), another ID
// adds a segment. StartMS is where the segment starts on the media clock.
type RecordingSegment struct {
	ID          string
	StartMS     int64
	ContentType string // audio/ogg, audio/webm or audio/wav
}

// PutRecording uploads one segment of the recording. body must be
// re-readable from the start by the caller for a retry; here it is sent once.
func (b *bridge) PutRecording(ctx context.Context, body io.Reader, size int64, seg RecordingSegment) error {
	req, err := b.request(ctx, http.MethodPut, "/recording", seg.ContentType, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set(contract.RecordingSegmentHeader, seg.ID)
	req.Header.Set(contract.RecordingStartHeader, strconv.FormatInt(seg.StartMS, 10))
	// A WAV grows ~115 MB an hour: ctx, not the client's 30 s, bounds it.
	resp, err := b.uploads.Do(req)
	return b.answer(req, resp, err, "/recording", nil)
}

func (b *bridge) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := b.request(ctx, method, path, contentType, body)
	if err != nil {
		return err
	}
	return b.send(req, path, out)
}

func (b *bridge) request(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("bridge %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

func (b *bridge) send(req *http.Request, path string, out any) error {
	resp, err := b.http.Do(req)
	return b.answer(req, resp, err, path, out)
}

func (b *bridge) answer(req *http.Request, resp *http.Response, err error, path string, out any) error {
	if err != nil {
		return fmt.Errorf("bridge %s %s: %w", req.Method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &bridgeError{Method: req.Method, Path: path, Status: resp.StatusCode, Body: string(bytes.TrimSpace(msg))}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if l, ok := out.(lenient); ok {
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(l.v)
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("bridge %s %s: decode answer: %w", req.Method, path, err)
	}
	return nil
}

// backoff counts the attempts of one bridge delivery under the one retry
// policy (contract.Backoff); Reset after a success starts over.
type backoff struct {
	policy contract.Backoff
	n      int
}

func newBackoff(t Timing) backoff {
	return backoff{policy: contract.Backoff{Min: t.RetryMin, Max: t.RetryMax}}
}

func (b *backoff) Next() time.Duration {
	b.n++
	return b.policy.Delay(b.n)
}

func (b *backoff) Reset() { b.n = 0 }

// sleep waits d or until ctx is done or wake fires; it reports false when ctx is done.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}
