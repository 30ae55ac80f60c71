package stt

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"candor/processor/contract"
	"candor/processor/contract/egress"
	"candor/processor/internal/oairt"
	"candor/processor/media"
)

// Realtime streams audio to OpenAI Realtime transcription sessions
// ({base}/v1/realtime?intent=transcription, configured with a GA
// session.update of session.type "transcription") with server VAD. The service caps
// a session at 60 minutes, so before that the stream opens the next session,
// moves the audio over at a silent moment (or hard, if none comes), pads the
// old session with silence so its VAD closes any open turn, and keeps it
// until its pending transcriptions arrive. Every sample goes to exactly one
// session; results are released in conversation order (the
// previous_item_id chain), session after session.
type Realtime struct {
	cfg    Config
	dialer *websocket.Dialer
}

var _ Engine = (*Realtime)(nil)

const (
	realtimeRate      = oairt.Rate
	rtSilenceMS       = 500 // server VAD silence that ends a turn
	rtPadMS           = rtSilenceMS + 700
	rtRedialInterval  = 10 * time.Second
	rtDefaultModel    = "gpt-4o-transcribe"
	rtDefaultMax      = 55 * time.Minute
	rtDefaultHard     = 2 * time.Minute
	rtDefaultDrainMax = 60 * time.Second
)

// NewRealtime returns the engine; the model defaults to gpt-4o-transcribe.
func init() {
	Register(EngineSpec{
		Name: "openai-realtime", OpenAI: true,
		Settings: []string{contract.EnvOpenAIKey, contract.EnvOpenAIBaseURL},
		New:      func(cfg Config) (Engine, error) { return NewRealtime(cfg), nil },
	})
}

func NewRealtime(cfg Config) *Realtime {
	if cfg.Model == "" {
		cfg.Model = rtDefaultModel
	}
	if cfg.RealtimeSessionMax <= 0 {
		cfg.RealtimeSessionMax = rtDefaultMax
	}
	if cfg.RealtimeHardSwitch <= 0 {
		cfg.RealtimeHardSwitch = rtDefaultHard
	}
	dialer := &websocket.Dialer{HandshakeTimeout: 15 * time.Second}
	if cfg.PublicTargetsOnly {
		dialer.NetDialContext = egress.Dialer().DialContext
	}
	return &Realtime{cfg: cfg, dialer: dialer}
}

func (r *Realtime) Name() string { return "openai-realtime" }

// session is the transcription session configuration the stream sends
// first and again as a barrier (see oairt.Conn.Update).
func (r *Realtime) session() oairt.Session {
	return oairt.Session{
		Type: "transcription",
		Audio: &oairt.SessionAudio{Input: &oairt.AudioInput{
			Format:        oairt.PCM(),
			Transcription: &oairt.Transcription{Model: r.cfg.Model, Language: r.cfg.Language},
			TurnDetection: oairt.ServerVAD(rtSilenceMS),
		}},
	}
}

func (r *Realtime) NewStream(ctx context.Context, baseMS int64, onResult func(Result)) (Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &rtStream{
		eng: r, ctx: ctx, cancel: cancel, baseMS: baseMS, onResult: onResult,
		rs:       media.NewResampler(SampleRate, realtimeRate),
		vad:      NewSegmenter(0, SegmenterConfig{}, func(Utterance) {}),
		progress: make(chan struct{}, 1),
	}
	s.chain = oairt.NewChain(oairt.Hooks[*rtSession]{
		Handle: s.onEvent, Ended: s.ended, Drain: s.drainRetired, Retired: s.retired, Release: s.released,
	})
	sess, err := s.dial(ctx, 0)
	if err != nil {
		cancel()
		return nil, err
	}
	s.chain.Start(sess)
	return s, nil
}

type rtStream struct {
	eng      *Realtime
	ctx      context.Context
	cancel   context.CancelFunc
	baseMS   int64
	onResult func(Result)
	chain    *oairt.Chain[*rtSession] // the sessions, current and retiring; owns the goroutines

	// mu guards the sending side.
	mu         sync.Mutex
	closed     bool
	rs         *media.Resampler
	vad        *Segmenter // local view of speech, to switch sessions in silence
	out24      int64      // 24 kHz samples produced so far
	next       *rtSession // the current session's successor, once dialled
	dialing    bool
	nextDialAt time.Time

	progress chan struct{} // something changed that Flush may wait for

	errMu    sync.Mutex
	flushErr []error // item failures since the last Flush
}

var errSessionClosed = errors.New("realtime session closed")

type rtPad struct{ at, n int64 } // silence inserted at session sample at (24 kHz)

type rtSession struct {
	oairt.Leg
	offset int64 // stream sample (16 kHz) of the session's first sample

	smu      sync.Mutex
	sent     int64 // 24 kHz samples sent, padding included
	pads     []rtPad
	items    []*rtItem // committed items in conversation order
	byID     map[string]*rtItem
	inSpeech bool
	dead     error         // set when the connection ended
	retired  bool          // drained and closed on purpose
	changed  chan struct{} // an event arrived
}

type rtItem struct {
	id                string
	startMS, endMS    int64 // session audio ms, -1 when unknown
	committed         bool
	completed, failed bool
	emitted           bool
	text              string
}

func (s *rtStream) dial(ctx context.Context, offset int64) (*rtSession, error) {
	conn, err := oairt.Dial(ctx, s.eng.dialer, s.eng.cfg.OpenAIBaseURL, url.Values{"intent": {"transcription"}}, s.eng.cfg.OpenAIKey)
	if err != nil {
		return nil, err
	}
	sess := &rtSession{Leg: oairt.NewLeg(conn), offset: offset,
		byID: map[string]*rtItem{}, changed: make(chan struct{}, 1)}
	if err := s.chain.Open(ctx, sess, s.eng.session()); err != nil {
		return nil, fmt.Errorf("realtime session update: %w", err)
	}
	return sess, nil
}

// appendAudio sends 24 kHz samples; pad marks them as inserted silence.
func (ss *rtSession) appendAudio(pcm []int16, pad bool) error {
	if len(pcm) == 0 {
		return nil
	}
	ss.smu.Lock()
	if pad {
		ss.pads = append(ss.pads, rtPad{at: ss.sent, n: int64(len(pcm))})
	}
	ss.sent += int64(len(pcm))
	ss.smu.Unlock()
	return ss.Conn.AppendAudio(pcm)
}

func (ss *rtSession) padSilence() error {
	return ss.appendAudio(make([]int16, rtPadMS*realtimeRate/1000), true)
}

// streamMS maps session audio ms to the stream clock, skipping padding.
func (s *rtStream) streamMS(ss *rtSession, ms int64) int64 {
	pos := ms * realtimeRate / 1000
	adj := pos
	for _, p := range ss.pads {
		if p.at < pos {
			adj -= min(p.n, pos-p.at)
		}
	}
	return s.baseMS + samplesToMS(ss.offset+adj*SampleRate/realtimeRate)
}

func (ss *rtSession) item(id string) *rtItem {
	it := ss.byID[id]
	if it == nil {
		it = &rtItem{id: id, startMS: -1, endMS: -1}
		ss.byID[id] = it
	}
	return it
}

// onEvent handles one server event of ss (its reader, see oairt.Chain).
func (s *rtStream) onEvent(ss *rtSession, ev oairt.Event) {
	s.handle(ss, ev)
	notify(ss.changed)
	s.released()
}

// ended records that ss's connection ended; an error only if it was not
// closed on purpose.
func (s *rtStream) ended(ss *rtSession, err error) {
	ss.smu.Lock()
	if ss.retired {
		err = nil
		ss.dead = errSessionClosed
	} else {
		ss.dead = err
	}
	ss.smu.Unlock()
	if err != nil && s.ctx.Err() == nil {
		s.eng.cfg.reportError(ss.dead)
	}
	notify(ss.changed)
	s.released()
}

func (s *rtStream) handle(ss *rtSession, ev oairt.Event) {
	ss.smu.Lock()
	defer ss.smu.Unlock()
	switch ev.Type {
	case "input_audio_buffer.speech_started":
		ss.inSpeech = true
		ss.item(ev.ItemID).startMS = ev.AudioStartMS
	case "input_audio_buffer.speech_stopped":
		ss.inSpeech = false
		ss.item(ev.ItemID).endMS = ev.AudioEndMS
	case "input_audio_buffer.committed":
		it := ss.item(ev.ItemID)
		if it.committed {
			return
		}
		it.committed = true
		ss.inSpeech = false
		// A commit without VAD events (a manual commit) covers the audio
		// since the previous item up to what has been sent.
		if it.endMS < 0 {
			it.endMS = ss.sent * 1000 / realtimeRate
		}
		if it.startMS < 0 {
			it.startMS = 0
			if n := len(ss.items); n > 0 {
				it.startMS = ss.items[n-1].endMS
			}
		}
		at := len(ss.items)
		if ev.PreviousItemID != "" {
			for i, p := range ss.items {
				if p.id == ev.PreviousItemID {
					at = i + 1
					break
				}
			}
		}
		ss.items = append(ss.items, nil)
		copy(ss.items[at+1:], ss.items[at:])
		ss.items[at] = it
	case "conversation.item.input_audio_transcription.completed":
		it := ss.item(ev.ItemID)
		it.completed, it.text = true, strings.TrimSpace(ev.Transcript)
	case "conversation.item.input_audio_transcription.failed":
		it := ss.item(ev.ItemID)
		it.completed, it.failed = true, true
		msg := "transcription failed"
		if ev.Error != nil {
			msg = ev.Error.Message
		}
		err := fmt.Errorf("realtime item %s: %s", ev.ItemID, msg)
		s.eng.cfg.reportError(err)
		s.errMu.Lock()
		s.flushErr = append(s.flushErr, err)
		s.errMu.Unlock()
	case "error":
		if ev.Error != nil {
			if ev.Error.Code == "input_audio_buffer_commit_empty" {
				return // a defensive commit that found only silence
			}
			s.eng.cfg.reportError(fmt.Errorf("realtime error %s: %s", ev.Error.Code, ev.Error.Message))
		}
	}
}

// release hands completed results to onResult in conversation order. A
// session's items go out only after every item of older sessions.
func (s *rtStream) release() {
	var out []Result
	s.chain.Release(func(ss *rtSession) bool {
		ss.smu.Lock()
		defer ss.smu.Unlock()
		for _, it := range ss.items {
			if it.emitted {
				continue
			}
			if !it.completed {
				return false
			}
			it.emitted = true
			if it.text != "" && !it.failed {
				out = append(out, Result{Text: it.text, StartMS: s.streamMS(ss, it.startMS), EndMS: s.streamMS(ss, it.endMS)})
			}
		}
		return ss.retired
	}, func() {
		for _, r := range out {
			s.onResult(r)
		}
	})
}

// released releases what is ready and wakes a waiting Flush.
func (s *rtStream) released() {
	s.release()
	notify(s.progress)
}

// Write resamples to 24 kHz and appends to the current session, rolling
// over to the next session when the current one nears its cap.
func (s *rtStream) Write(pcm []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.vad.Write(pcm)
	if err := s.ensureSession(); err != nil {
		return err
	}
	s.maybeRollover()
	out := s.rs.Process(pcm)
	s.out24 += int64(len(out))
	if err := s.chain.Current().appendAudio(out, false); err != nil {
		s.eng.cfg.reportError(fmt.Errorf("realtime append: %w", err))
	}
	return nil
}

// ensureSession replaces a session whose connection died. Audio it had not
// committed is lost; the clock continues. Called with mu held.
func (s *rtStream) ensureSession() error {
	cur := s.chain.Current()
	cur.smu.Lock()
	dead := cur.dead
	cur.smu.Unlock()
	if dead == nil {
		return nil
	}
	if s.next != nil {
		s.switchTo(s.next)
		return nil
	}
	sess, err := s.dial(s.ctx, s.out24*SampleRate/realtimeRate)
	if err != nil {
		return fmt.Errorf("realtime reconnect: %w", err)
	}
	s.switchTo(sess)
	return nil
}

// maybeRollover dials the next session once the current one reaches its
// age limit and switches at the first silence, or hard after the grace
// period. Called with mu held.
func (s *rtStream) maybeRollover() {
	cfg := s.eng.cfg
	cur := s.chain.Current()
	cur.smu.Lock()
	age := oairt.Age(cur.Opened, time.Now(), cur.sent)
	serverSpeech := cur.inSpeech
	cur.smu.Unlock()
	rule := oairt.Rollover{Max: cfg.RealtimeSessionMax, Hard: cfg.RealtimeHardSwitch}
	if !rule.Near(age) {
		return
	}
	if s.next == nil {
		if !s.dialing && time.Now().After(s.nextDialAt) {
			s.dialing = true
			s.chain.Go(func() {
				sess, err := s.dial(s.ctx, 0)
				s.mu.Lock()
				defer s.mu.Unlock()
				s.dialing = false
				if err != nil {
					s.nextDialAt = time.Now().Add(rtRedialInterval)
					if s.ctx.Err() == nil {
						cfg.reportError(fmt.Errorf("realtime rollover: %w", err))
					}
					return
				}
				if s.closed {
					s.retired(sess)
					sess.Conn.Close()
					return
				}
				s.next = sess
			})
		}
		return
	}
	if rule.Due(age, !s.vad.InSpeech() && !serverSpeech) {
		s.switchTo(s.next)
	}
}

// switchTo makes sess current from the next sample on and retires the old
// session. Called with mu held.
func (s *rtStream) switchTo(sess *rtSession) {
	sess.offset = s.out24 * SampleRate / realtimeRate
	if s.next == sess {
		s.next = nil
	}
	s.chain.SwitchTo(s.ctx, sess)
}

// drainRetired pads a session being retired with silence so its VAD closes
// any open turn, and waits until the server has seen it (barrier) and every
// committed item has its transcription.
func (s *rtStream) drainRetired(ctx context.Context, ss *rtSession) {
	if err := s.drain(ctx, ss, rtDefaultDrainMax); err != nil && s.ctx.Err() == nil {
		s.eng.cfg.reportError(fmt.Errorf("realtime retire: %w", err))
	}
}

// retired marks ss closed on purpose; items still untranscribed fail.
func (s *rtStream) retired(ss *rtSession) {
	ss.smu.Lock()
	defer ss.smu.Unlock()
	ss.retired = true
	for _, it := range ss.items {
		if !it.completed {
			it.completed, it.failed = true, true
		}
	}
}

// drain makes sure the server has ended every turn in the audio sent to ss
// and waits until all its items are transcribed.
func (s *rtStream) drain(ctx context.Context, ss *rtSession, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := ss.padSilence(); err != nil {
		return err
	}
	// The answer to an unchanged configuration means the server's VAD has
	// been through every append before it.
	if err := ss.Conn.Update(ctx, s.eng.session()); err != nil {
		return err
	}
	ss.smu.Lock()
	speaking := ss.inSpeech
	ss.smu.Unlock()
	if speaking {
		if err := ss.Conn.Send(map[string]string{"type": "input_audio_buffer.commit"}); err != nil {
			return err
		}
	}
	for {
		ss.smu.Lock()
		pending := ss.inSpeech
		for _, it := range ss.byID {
			if it.committed && !it.completed {
				pending = true
			}
		}
		dead := ss.dead
		ss.smu.Unlock()
		if !pending {
			return nil
		}
		if dead != nil {
			return dead
		}
		select {
		case <-ss.changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for transcriptions: %w", ctx.Err())
		}
	}
}

// Flush pads the current session with silence so the server ends any open
// turn, then waits for every transcription of this and older sessions.
func (s *rtStream) Flush(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if err := s.ensureSession(); err != nil {
		s.mu.Unlock()
		return err
	}
	cur := s.chain.Current()
	s.mu.Unlock()
	if err := s.drain(ctx, cur, rtDefaultDrainMax); err != nil {
		return fmt.Errorf("realtime flush: %w", err)
	}
	for {
		s.release()
		done := s.chain.Alone(cur)
		if done {
			cur.smu.Lock()
			for _, it := range cur.items {
				done = done && it.emitted
			}
			cur.smu.Unlock()
		}
		if done {
			s.errMu.Lock()
			errs := s.flushErr
			s.flushErr = nil
			s.errMu.Unlock()
			return joinErrors("realtime transcription", errs)
		}
		select {
		case <-s.progress:
		case <-ctx.Done():
			return fmt.Errorf("realtime flush: %w", ctx.Err())
		}
	}
}

// Close ends every session and waits for the stream's goroutines.
func (s *rtStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := []*rtSession{s.chain.Current()}
	if s.next != nil {
		conns = append(conns, s.next)
	}
	s.mu.Unlock()
	s.cancel()
	for _, ss := range conns {
		ss.smu.Lock()
		ss.retired = true
		ss.smu.Unlock()
		ss.Conn.Abort()
	}
	s.chain.Wait()
	return nil
}
