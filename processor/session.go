package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"candor/processor/media"
	"candor/processor/stt"

	"candor/processor/contract"
)

// session is one interview on this processor. It is made of three parts
// with one job each: audioIngest takes the candidate's audio in (and keeps
// the media clock), delivery numbers entries and gets them to the bridge
// through the spool, and sessionLife is the session's phase, its workers and
// the interviewer's run. What they share is the config, the plan and the
// candidate page's event hub.
type session struct {
	cfg    Config
	log    *slog.Logger
	plan   contract.Plan
	events *eventHub
	voice  Voice          // nil when no TTS is available
	heard  chan Utterance // the candidate's finalized utterances, for the interviewer

	audioIngest
	delivery
	sessionLife
}

// audioIngest is the candidate's audio in: the ingest paths (WHIP,
// /ws/audio, /process-audio) feed the recording, the SpeechRoom taps and the
// speech stream, and advance the media clock.
type audioIngest struct {
	audioMu sync.Mutex // serializes writes to stream and ingest state
	stream  stt.Stream
	baseMS  int64
	samples atomic.Int64            // candidate samples written: the media clock
	chunks  map[string]*chunkStream // /process-audio streams by speaker
	ingest  sync.WaitGroup          // /ws/audio readers
	wsAudio map[*websocket.Conn]struct{}
	taps    map[int]func(pcm []int16, atMS int64) // SpeechRoom listeners (guarded by audioMu)
	tapSeq  int
	whip    *media.WHIP // nil when WebRTC could not be set up
	recMu   sync.Mutex  // guards whipIDs
	whipIDs map[string]struct{}
	rec     *recorder

	joined   chan struct{} // closed once the candidate is connected
	joinOnce sync.Once
}

// delivery is the transcript out: entries get the next seq, are committed
// to the spool and sent by the sender; the recording is uploaded in parts.
type delivery struct {
	mu       sync.Mutex // guards seq, entries (and the spool order they imply)
	seq      int64
	entries  []contract.Entry
	spool    *spool
	bridge   *bridge
	sender   *sender
	uploadMu sync.Mutex // one recording upload at a time, in order
}

// sessionLife is where the session is in its life and what runs for it.
type sessionLife struct {
	// phase is the session's one notion of "over" (see phase.go); it
	// moves to phaseClosing under audioMu, so ingest paths that checked it
	// under audioMu saw a consistent state.
	phase lifecycle

	// work is the context of the session's own goroutines; it outlives the
	// Run context so a shutdown can still drain the spool.
	work     context.Context
	stopWork context.CancelFunc
	workers  sync.WaitGroup

	stopInterviewer context.CancelFunc
	interviewerDone chan struct{}

	speakMu       sync.Mutex
	speakingUntil int64 // media-clock ms at which queued interviewer speech ends (guarded by speakMu)

	// silence counts the quiet after the closing line (see
	// contract.EnvEndAfterSilence).
	silence silenceWatch

	serving  chan struct{} // closed once the server routes requests here: `ready` waits for it
	serveOne sync.Once

	endMu     sync.Mutex // one End (or Close) at a time
	closeOnce sync.Once

	// drained is closed once a retired processor delivered what it could
	// (retire): the server then stops.
	drained chan struct{}
	// retireMu guards stopRetire, which cuts a retirement's delivery short
	// when the processor is stopped meanwhile (Close).
	retireMu   sync.Mutex
	stopRetire context.CancelFunc
	stopped    bool
}

// startSession prepares everything the interview needs (plan, spool, the
// bridge's resume state, the speech stream, voice, WHIP) and starts its
// workers; the heartbeat worker tells the bridge `ready` first thing. w,
// when not nil, is what an idle processor prepared before its claim: the
// session adopts what fits its config. The bridge state is read while the
// rest is prepared; nothing that depends on it (seq, the media clock) is set
// before it has arrived.
func startSession(ctx context.Context, cfg Config, log *slog.Logger, w *warm) (_ *session, err error) {
	log = log.With("interview", cfg.SessionID)
	adopted := false
	if w != nil {
		defer func() { w.discard(adopted) }()
	}
	br := newBridge(cfg.ControlURL, cfg.SessionID, cfg.ProcessorToken)
	stateCtx, stopState := context.WithCancel(ctx)
	type stateAnswer struct {
		st  contract.State
		err error
	}
	stateCh := make(chan stateAnswer, 1)
	go func() {
		st, err := resumeState(stateCtx, br, cfg.Timing, log)
		stateCh <- stateAnswer{st, err}
	}()
	stateRead := false
	defer func() {
		if !stateRead { // an earlier step failed: stop the fetch and wait for it
			stopState()
			<-stateCh
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir CANDOR_DATA=%s: %w", cfg.DataDir, err)
	}
	plan, err := LoadPlan(cfg.PlanFile)
	if err != nil {
		return nil, err
	}
	spoolPath := filepath.Join(cfg.DataDir, "spool-"+safeName(cfg.SessionID)+".db")
	if w != nil {
		w.claimSpool(spoolPath)
	}
	sp, err := openSpool(ctx, spoolPath)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			sp.Close()
		}
	}()
	spooled, err := sp.MaxSeq(ctx)
	if err != nil {
		return nil, err
	}
	ans := <-stateCh
	stateRead = true
	stopState()
	if ans.err != nil {
		return nil, ans.err
	}
	state := ans.st

	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var warmStream stt.Stream
	if w != nil {
		if warmStream = w.streamFor(cfg); warmStream != nil {
			stopWork()
			work, stopWork = w.work, w.stopWork
		}
	}
	s := &session{
		cfg:    cfg,
		log:    log,
		plan:   plan,
		events: newEventHub(),
		heard:  make(chan Utterance, 256),
		audioIngest: audioIngest{
			baseMS:  state.MediaMS,
			chunks:  make(map[string]*chunkStream),
			wsAudio: make(map[*websocket.Conn]struct{}),
			taps:    make(map[int]func([]int16, int64)),
			whipIDs: make(map[string]struct{}),
			rec:     newRecorder(cfg.DataDir, cfg.SessionID, state.MediaMS, cfg.RecordingSegment, cfg.RecordingSegmentBytes, log),
			joined:  make(chan struct{}),
		},
		delivery: delivery{
			seq:    max(state.LastSeq, spooled),
			spool:  sp,
			bridge: br,
			sender: newSender(sp, br, cfg.Timing, log),
		},
		sessionLife: sessionLife{
			work:     work,
			stopWork: stopWork,
			serving:  make(chan struct{}),
			drained:  make(chan struct{}),
		},
	}
	defer func() {
		if err != nil {
			stopWork()
		}
	}()

	resume := resumeFrom(plan, state)
	iv, engineName, err := s.newInterviewer(resume)
	if err != nil {
		return nil, err
	}
	if s.stream == nil {
		if engineName, adopted, err = s.startSpeech(w, warmStream); err != nil {
			return nil, err
		}
	}
	if v, err := newVoice(cfg, plan); err != nil {
		log.Warn("interviewer speaks as text only: no voice", "err", err)
	} else {
		s.voice = v
	}
	if w, err := media.NewWHIP(cfg.WebRTC, log); err != nil {
		log.Warn("WHIP ingest disabled", "err", err)
	} else {
		s.whip = w
	}

	s.startWorkers(iv)
	log.Info("interview session ready", "last_seq", s.seq, "media_ms", s.baseMS, "stt", engineName,
		"interviewer", cfg.Interviewer, "resume_turns", resume.Turns, "whip", s.whip != nil)
	return s, nil
}

// startSpeech gives the session its speech stream: the one an idle
// processor prepared (warmStream, from w) when it fits, else a new one of
// CANDOR_STT. adopted says the prepared one was taken.
func (s *session) startSpeech(w *warm, warmStream stt.Stream) (engine string, adopted bool, err error) {
	if warmStream != nil {
		// The decoder started at base 0 before the resume point was known.
		onResult := func(r stt.Result) {
			r.StartMS += s.baseMS
			r.EndMS += s.baseMS
			s.onResult(r)
		}
		w.onResult.Store(&onResult)
		s.stream = warmStream
		return w.engine, true, nil
	}
	cfg := s.cfg
	eng, err := stt.New(cfg.STT, stt.Config{
		OpenAIKey:         cfg.OpenAIKey,
		OpenAIBaseURL:     cfg.OpenAIBaseURL,
		PublicTargetsOnly: cfg.PublicTargetsOnly,
		Logger:            s.log,
	})
	if err != nil {
		return "", false, fmt.Errorf("speech engine CANDOR_STT=%s: %w", cfg.STT, err)
	}
	if s.stream, err = eng.NewStream(s.work, s.baseMS, s.onResult); err != nil {
		return "", false, fmt.Errorf("start speech stream (%s): %w", eng.Name(), err)
	}
	return eng.Name(), false, nil
}

// startWorkers starts the session's own goroutines (delivery, recording
// parts, heartbeats) and the interviewer; Close stops and waits for them.
func (s *session) startWorkers(iv Interviewer) {
	work := s.work
	s.workers.Add(4)
	go func() {
		defer s.workers.Done()
		s.sender.Run(work)
	}()
	go func() {
		defer s.workers.Done()
		select {
		case <-work.Done():
		case <-s.bridge.Retired():
			if work.Err() == nil {
				s.retire()
			}
		}
	}()
	go func() {
		defer s.workers.Done()
		s.recordingParts(work)
	}()
	go func() {
		defer s.workers.Done()
		s.heartbeats(work)
	}()

	ivCtx, stopIV := context.WithCancel(work)
	s.stopInterviewer = stopIV
	s.interviewerDone = make(chan struct{})
	go func() {
		defer close(s.interviewerDone)
		err := iv.Run(ivCtx, s)
		if err != nil && ivCtx.Err() == nil {
			s.log.Error("interviewer stopped", "err", err)
			s.event(ivCtx, contract.Event{Type: contract.EventError, Message: "interviewer: " + err.Error()})
			return
		}
		if ivCtx.Err() == nil {
			s.afterClosing(ivCtx)
		}
	}()
}

// newInterviewer builds the configured interviewer (see InterviewerSpec).
// engine names what transcribes the candidate when the interviewer does
// ("" otherwise).
func (s *session) newInterviewer(resume Resume) (iv Interviewer, engine string, err error) {
	spec, ok := LookupInterviewer(s.cfg.Interviewer)
	if !ok {
		return nil, "", fmt.Errorf("CANDOR_INTERVIEWER=%q is not an interviewer: set it to one of %s", s.cfg.Interviewer, interviewerList())
	}
	iv, transcribes := spec.New(interviewerParams{cfg: s.cfg, plan: s.plan, resume: resume, log: s.log})
	if transcribes {
		s.stream = interviewerTranscribes{}
		engine = s.cfg.STT + " (the interviewer's session)"
	}
	return iv, engine, nil
}

// interviewerTranscribes stands in for the speech stream when the
// openai-realtime interviewer transcribes the candidate: audio reaches it
// through ListenAudio, and it records candidate entries itself, draining its
// pending transcriptions before its Run returns (End waits for that).
type interviewerTranscribes struct{}

func (interviewerTranscribes) Write([]int16) error         { return nil }
func (interviewerTranscribes) Flush(context.Context) error { return nil }
func (interviewerTranscribes) Close() error                { return nil }

// resumeState asks the bridge where the interview stands, retrying while the
// control plane is unreachable (bounded by Timing.StartTimeout).
func resumeState(ctx context.Context, br *bridge, t Timing, log *slog.Logger) (contract.State, error) {
	ctx, cancel := context.WithTimeout(ctx, t.StartTimeout)
	defer cancel()
	retry := newBackoff(t)
	for attempt := 1; ; attempt++ {
		st, err := br.State(ctx)
		if err == nil {
			return st, nil
		}
		if attempt == 1 {
			log.Warn("bridge state not available yet, retrying", "err", err)
		}
		if !sleep(ctx, retry.Next(), nil) {
			return contract.State{}, fmt.Errorf("read interview state from CANDOR_CONTROL_URL: %w", err)
		}
	}
}

// mediaMS is the media clock: the resume point plus candidate audio so far.
func (s *session) mediaMS() int64 {
	return s.baseMS + s.samples.Load()*1000/stt.SampleRate
}

// markServing tells the heartbeat worker that requests reach the session,
// so `ready` is true when the control plane acts on it.
func (s *session) markServing() { s.serveOne.Do(func() { close(s.serving) }) }

// heartbeats tells the bridge the processor is ready (once it serves), then beats every
// Timing.Heartbeat with the media clock until the session stops.
func (s *session) heartbeats(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-s.serving:
	}
	if !s.event(ctx, contract.Event{Type: "ready", MediaMS: new(s.mediaMS())}) {
		return
	}
	t := time.NewTicker(s.cfg.Timing.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.phase.reached(phaseOver) {
			return // the interview ended: silence is expected now
		}
		// A missed heartbeat is not retried: the next one carries newer news.
		hctx, cancel := context.WithTimeout(ctx, max(s.cfg.Timing.Heartbeat, time.Second))
		err := s.bridge.PostEvent(hctx, contract.Event{Type: "heartbeat", MediaMS: new(s.mediaMS())})
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Debug("heartbeat not delivered", "err", err)
		}
	}
}

// event delivers a bridge event, retrying with backoff until ctx is done; it
// reports whether the event was delivered.
func (s *session) event(ctx context.Context, ev contract.Event) bool {
	retry := newBackoff(s.cfg.Timing)
	for attempt := 1; ; attempt++ {
		err := s.bridge.PostEvent(ctx, ev)
		if err == nil {
			return true
		}
		if refused(err) {
			s.log.Error("bridge refused an event", "type", ev.Type, "err", err)
			return false
		}
		if attempt == 1 && ctx.Err() == nil {
			s.log.Warn("bridge event not delivered, retrying", "type", ev.Type, "err", err)
		}
		if !sleep(ctx, retry.Next(), nil) {
			return false
		}
	}
}

// addEntry gives text the next seq, commits it to the spool and publishes it.
func (s *session) addEntry(speaker, text string, startMS, endMS int64, confidence float64) (contract.Entry, error) {
	// The bridge refuses a batch holding an invalid entry, so entries are
	// made valid here: text trimmed and bounded, times ordered, confidence in [0,1].
	text = strings.TrimSpace(text)
	if len(text) > maxEntryText {
		text = strings.ToValidUTF8(text[:maxEntryText], "")
	}
	startMS = max(startMS, 0)
	endMS = max(endMS, startMS)
	if !(confidence >= 0) { // also NaN
		confidence = 0
	}
	confidence = min(confidence, 1)
	s.mu.Lock()
	e := contract.Entry{Seq: s.seq + 1, Speaker: speaker, Text: text, StartMS: startMS, EndMS: endMS, Confidence: confidence}
	// The spool write happens under the lock so spool order is seq order.
	if err := s.spool.Append(s.work, e); err != nil {
		s.mu.Unlock()
		return contract.Entry{}, err
	}
	s.seq = e.Seq
	s.entries = append(s.entries, e)
	s.mu.Unlock()

	s.sender.Notify()
	s.events.Caption(e)
	s.sendWHIP(captionJSON(e), nil)
	return e, nil
}

// maxEntryText bounds an entry's text (the bridge refuses more than 20000 bytes).
const maxEntryText = 16000

func (s *session) onResult(r stt.Result) {
	if strings.TrimSpace(r.Text) == "" {
		return
	}
	s.silence.heard(time.Now())
	if _, err := s.addEntry("candidate", r.Text, r.StartMS, r.EndMS, r.Confidence); err != nil {
		s.log.Error("candidate entry lost: spool write failed", "err", err)
		return
	}
	select {
	case s.heard <- Utterance{Text: r.Text, StartMS: r.StartMS, EndMS: r.EndMS}:
	default: // the interviewer is not listening (finished or far behind)
	}
}

// afterClosing runs once the interviewer has said its closing line (its
// Run returned on its own): the candidate page hears that the interview is
// closing, and after EndAfterSilence without a candidate utterance the
// control plane is asked to end it. Speech that keeps arriving keeps it
// open.
func (s *session) afterClosing(ctx context.Context) {
	s.events.State(contract.StateClosing)
	d := s.cfg.EndAfterSilence
	if d <= 0 || !s.silence.wait(ctx, d) {
		return
	}
	s.log.Info("no candidate speech since the closing line: asking the control plane to end the interview", "silence", d)
	s.event(ctx, contract.Event{Type: contract.EventFinished, Message: "the interviewer closed and the candidate was silent for " + d.String()})
}

// Joined, Heard and Say make the session the interviewer's Room.
func (s *session) Joined() <-chan struct{} { return s.joined }
func (s *session) Heard() <-chan Utterance { return s.heard }
func (s *session) join()                   { s.joinOnce.Do(func() { close(s.joined) }) }
func (s *session) Entries() (es []contract.Entry, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]contract.Entry(nil), s.entries...), s.seq
}

func (s *session) Say(ctx context.Context, text string) error {
	var pcm []int16
	if s.voice != nil {
		var err error
		pcm, err = s.voice.Speak(ctx, text)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Warn("interviewer speech synthesis failed; caption only", "err", err)
			pcm = nil
		}
	}
	// Say returns once the speech is sent, not once it is heard: the page
	// plays queued speech back to back, so a line said right after another
	// (greeting, then first question) starts where that one ends on the
	// media clock, not at the same instant.
	s.speakMu.Lock()
	start := max(s.mediaMS(), s.speakingUntil)
	end := start + int64(len(pcm))*1000/stt.SampleRate
	s.speakingUntil = end
	s.speakMu.Unlock()
	if _, err := s.addEntry("interviewer", text, start, end, 1); err != nil {
		return err
	}
	if len(pcm) > 0 {
		s.events.Speech(pcm)
		for _, f := range pcmFrames(pcm, speechFrameSamples) {
			s.sendWHIP(nil, f)
		}
	}
	return nil
}

var _ SpeechRoom = (*session)(nil)

func (s *session) ListenAudio(fn func(pcm []int16, atMS int64)) (stop func()) {
	s.audioMu.Lock()
	s.tapSeq++
	id := s.tapSeq
	s.taps[id] = fn
	s.audioMu.Unlock()
	return func() {
		s.audioMu.Lock()
		delete(s.taps, id)
		s.audioMu.Unlock()
	}
}

func (s *session) Relay(pcm []int16) {
	if len(pcm) == 0 {
		return
	}
	s.events.Speech(pcm)
	for _, f := range pcmFrames(pcm, speechFrameSamples) {
		s.sendWHIP(nil, f)
	}
}

func (s *session) Interrupt() {
	s.events.Interrupt()
	s.sendWHIP(interruptJSON, nil)
}

func (s *session) Record(speaker, text string, startMS, endMS int64) error {
	if speaker == "candidate" {
		s.onResult(stt.Result{Text: text, StartMS: startMS, EndMS: endMS})
		return nil
	}
	_, err := s.addEntry(speaker, text, startMS, endMS, 1)
	return err
}

func (s *session) MediaMS() int64 { return s.mediaMS() }

func (s *session) Transcript() []contract.Entry {
	es, _ := s.Entries()
	return es
}

func captionJSON(e contract.Entry) []byte {
	b, _ := json.Marshal(Caption{Type: "caption", Speaker: e.Speaker, Text: e.Text, Seq: e.Seq, Final: true})
	return b
}

// sendWHIP sends to every WHIP session's "interviewer" data channel.
func (s *session) sendWHIP(text, binary []byte) {
	if s.whip == nil {
		return
	}
	s.recMu.Lock()
	ids := make([]string, 0, len(s.whipIDs))
	for id := range s.whipIDs {
		ids = append(ids, id)
	}
	s.recMu.Unlock()
	for _, id := range ids {
		if err := s.whip.Send(id, text, binary); err != nil {
			s.log.Debug("whip data channel send", "session", id, "err", err)
		}
	}
}

// writePCM feeds candidate audio from src (the ingest path that decoded
// it) to the recording and the stream, and advances the media clock.
func (s *session) writePCM(src any, pcm []int16) {
	if len(pcm) == 0 {
		return
	}
	s.audioMu.Lock()
	defer s.audioMu.Unlock()
	s.writePCMLocked(src, pcm)
}

func (s *session) writePCMLocked(src any, pcm []int16) {
	if s.phase.reached(phaseEnded) {
		return
	}
	// Recorded even if the speech stream fails: the recruiter hears it.
	s.rec.heard(src, pcm)
	if len(s.taps) > 0 {
		at := s.mediaMS()
		for _, fn := range s.taps {
			fn(pcm, at)
		}
	}
	if err := s.stream.Write(pcm); err != nil {
		s.log.Error("speech stream write", "err", err)
		return
	}
	s.samples.Add(int64(len(pcm)))
	s.join()
}

// finish stops listening and speaking, finalizes every pending utterance,
// delivers the spool and uploads the recording: what an end and a
// retirement share. The caller holds endMu.
func (s *session) finish(ctx context.Context) error {
	s.stopIngest()
	s.stopInterviewer()
	<-s.interviewerDone
	if err := s.stream.Flush(ctx); err != nil {
		return fmt.Errorf("finalize pending speech: %w", err)
	}
	if err := s.sender.Drain(ctx); err != nil {
		return fmt.Errorf("deliver transcript to the bridge: %w", err)
	}
	if err := s.uploadRecording(ctx); err != nil {
		return fmt.Errorf("upload recording: %w", err)
	}
	return nil
}

// retireTimeout bounds a retired processor's drain; the control plane's
// --drain-timeout bounds it too (the credential stops working then).
const retireTimeout = 5 * time.Minute

// retire is what a processor does once the control plane says it was
// replaced (after a partition that outlasted --replace-after): another
// processor serves the interview now. It stops listening and speaking,
// delivers the entries it heard before the hand-over (the bridge keeps
// those and drops later ones, which its replacement heard), uploads its
// recording, says drained, and lets the server stop.
func (s *session) retire() {
	defer close(s.drained)
	ctx, cancel := context.WithTimeout(context.Background(), retireTimeout)
	defer cancel()
	s.retireMu.Lock()
	stopped := s.stopped
	s.stopRetire = cancel
	s.retireMu.Unlock()
	if stopped {
		return // Close is finishing the session already
	}
	s.log.Warn("replaced by another processor: delivering what this one heard, then exiting")
	s.endMu.Lock()
	err := s.finish(ctx)
	s.phase.advance(phaseOver) // no more heartbeats: the interview is another's now
	s.endMu.Unlock()
	pending, _ := s.spool.Len(ctx)
	if err != nil {
		s.log.Error("retired processor did not deliver everything", "err", err, "undelivered", pending)
	}
	_, n := s.Entries()
	s.event(ctx, contract.Event{Type: contract.EventDrained, MediaMS: new(s.mediaMS()),
		Data: map[string]any{"entries": n, "undelivered": pending}})
}

// Drained is closed once a retired processor finished its drain.
func (s *session) Drained() <-chan struct{} { return s.drained }

// EndResult is the answer of POST /end.
type EndResult struct {
	Entries int64 `json:"entries"` // seq of the last entry of the interview
}

// End finishes the interview: stop ingest and the interviewer, finalize every
// pending utterance, deliver the spool, upload the recording and tell the
// bridge. It may be called again after a failure; finished steps are cheap.
func (s *session) End(ctx context.Context) (EndResult, error) {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	if err := s.finish(ctx); err != nil {
		return EndResult{}, err
	}
	_, n := s.Entries()
	if !s.phase.reached(phaseOver) {
		if !s.event(ctx, contract.Event{Type: contract.EventEnded, MediaMS: new(s.mediaMS()), Data: map[string]any{"entries": n}}) {
			return EndResult{}, fmt.Errorf("send ended event: not delivered (%v)", ctx.Err())
		}
		s.phase.advance(phaseOver)
		s.events.State("ended")
	}
	return EndResult{Entries: n}, nil
}

// stopIngest refuses further audio and pushes what is buffered into the stream.
func (s *session) stopIngest() {
	s.audioMu.Lock()
	s.phase.advance(phaseClosing)
	chunks := s.chunks
	s.chunks = make(map[string]*chunkStream)
	conns := s.wsAudio
	s.wsAudio = make(map[*websocket.Conn]struct{})
	s.audioMu.Unlock()

	// Buffered chunks are delivered before the door closes.
	for _, c := range chunks {
		c.close(s)
	}
	s.phase.advance(phaseEnded)
	for c := range conns {
		c.Close()
	}
	s.ingest.Wait()

	s.recMu.Lock()
	ids := s.whipIDs
	s.whipIDs = make(map[string]struct{})
	s.recMu.Unlock()
	if s.whip != nil {
		for id := range ids {
			if err := s.whip.Delete(id); err != nil {
				s.log.Debug("close whip session", "session", id, "err", err)
			}
		}
	}
}

// Close stops the session. Without a prior End it finalizes what it can
// (bounded by Timing.ShutdownTimeout) so a stop or crash-replacement loses
// nothing already heard; it does not send `ended`.
func (s *session) Close() {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timing.ShutdownTimeout)
		defer cancel()
		// A retirement in progress gives way: Close's own bounded
		// delivery below takes over.
		s.retireMu.Lock()
		s.stopped = true
		if s.stopRetire != nil {
			s.stopRetire()
		}
		s.retireMu.Unlock()
		s.endMu.Lock()
		s.stopIngest()
		s.stopInterviewer()
		<-s.interviewerDone
		if err := s.stream.Flush(ctx); err != nil {
			s.log.Warn("shutdown: pending speech not finalized", "err", err)
		}
		if err := s.sender.Drain(ctx); err != nil {
			s.log.Warn("shutdown: spool kept for the next start", "err", err)
		}
		if err := s.uploadRecording(ctx); err != nil {
			s.log.Warn("shutdown: recording not uploaded", "err", err)
		}
		s.endMu.Unlock()

		s.events.Close()
		s.stopWork()
		s.workers.Wait()
		if s.whip != nil {
			s.whip.Close()
		}
		if err := s.stream.Close(); err != nil {
			s.log.Debug("close speech stream", "err", err)
		}
		s.rec.close()
		s.spool.Close()
	})
}

// safeName keeps ids usable as file names.
func safeName(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
