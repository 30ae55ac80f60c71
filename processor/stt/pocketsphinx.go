package stt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrClosed is returned by a Stream used after Close.
var ErrClosed = errors.New("speech stream closed")

// Pocketsphinx runs one long-lived pocketsphinx_continuous per stream, fed raw
// PCM on stdin. The decoder segments by itself (its own VAD ends an utterance
// after ~0.5 s of silence) and, with -time yes, prints after each utterance
// its hypothesis line followed by one "word start end posterior" line per
// segment, times in seconds since the process's first sample.
type Pocketsphinx struct {
	cfg  Config
	path string
	args []string
}

var _ Engine = (*Pocketsphinx)(nil)

// NewPocketsphinx finds the decoder binary; it fails when it is not installed.
func init() {
	Register(EngineSpec{
		Name: "pocketsphinx", Prestart: true,
		New: func(cfg Config) (Engine, error) { return NewPocketsphinx(cfg) },
	})
}

func NewPocketsphinx(cfg Config) (*Pocketsphinx, error) {
	name := cfg.PocketsphinxPath
	if name == "" {
		name = "pocketsphinx_continuous"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("pocketsphinx engine: %w (install Debian's pocketsphinx and pocketsphinx-en-us packages)", err)
	}
	// -vad_postspeech: pocketsphinx ends an utterance after this many 10 ms
	// frames of silence (default 50). 35 answers 150 ms sooner; a speaker's
	// longer pause then ends an entry, which costs nothing but a line break.
	args := []string{"-infile", "/dev/stdin", "-logfn", "/dev/null", "-time", "yes", "-vad_postspeech", "35"}
	args = append(args, cfg.PocketsphinxArgs...)
	return &Pocketsphinx{cfg: cfg, path: path, args: args}, nil
}

func (p *Pocketsphinx) Name() string { return "pocketsphinx" }

// NewStream starts the decoder so the model is loaded before speech arrives.
func (p *Pocketsphinx) NewStream(ctx context.Context, baseMS int64, onResult func(Result)) (Stream, error) {
	s := &psStream{eng: p, ctx: ctx, baseMS: baseMS, onResult: onResult}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// replayLimit bounds the audio kept for replay into a restarted decoder.
const replayLimit = 30 * SampleRate

type psStream struct {
	eng      *Pocketsphinx
	ctx      context.Context
	baseMS   int64
	onResult func(Result)

	// mu serialises Write, Flush and Close. The reader goroutine never takes
	// it: Write may hold it while blocked on a full stdin pipe, which only
	// drains while the reader keeps consuming the decoder's stdout.
	mu      sync.Mutex
	proc    *psProc
	closed  bool
	written int64 // samples written to the stream

	// pmu guards the replay state, shared with the reader.
	pmu sync.Mutex
	// pending is the audio from sample pendingAt on that no reported
	// utterance has covered yet; it is replayed into a restarted decoder.
	pending   []int16
	pendingAt int64
	restarts  int // restarts since the last result
}

// advance drops pending audio before stream sample to, which a reported
// utterance has covered.
func (s *psStream) advance(to int64) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	s.restarts = 0
	drop := min(to-s.pendingAt, int64(len(s.pending)))
	if drop <= 0 {
		return
	}
	s.pending = append(s.pending[:0], s.pending[drop:]...)
	s.pendingAt += drop
}

func (s *psStream) push(pcm []int16) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	s.pending = append(s.pending, pcm...)
	if over := len(s.pending) - replayLimit; over > 0 {
		s.pending = append(s.pending[:0], s.pending[over:]...)
		s.pendingAt += int64(over)
	}
}

// replay returns the pending audio and where it starts.
func (s *psStream) replay() ([]int16, int64) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return append([]int16(nil), s.pending...), s.pendingAt
}

type psProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	offset  int64         // stream sample of the decoder's first sample
	done    chan struct{} // closed when the reader has seen EOF and the process is reaped
	stderr  *bytes.Buffer
	waitErr error
}

// start launches a decoder at pendingAt and replays the pending audio. Called with mu held.
func (s *psStream) start() error {
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("pocketsphinx: %w", err)
	}
	// The stream's context bounds the decoder's life; Close reaps it either way.
	cmd := exec.CommandContext(s.ctx, s.eng.path, s.eng.args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("pocketsphinx stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("pocketsphinx stdout: %w", err)
	}
	pending, at := s.replay()
	p := &psProc{cmd: cmd, stdin: stdin, offset: at, done: make(chan struct{}), stderr: &bytes.Buffer{}}
	cmd.Stderr = &limitedBuffer{buf: p.stderr, max: 4096}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.eng.path, err)
	}
	s.proc = p
	go s.read(p, stdout)
	if len(pending) > 0 {
		if err := writePCM(stdin, pending); err != nil {
			return fmt.Errorf("pocketsphinx replay: %w", err)
		}
	}
	return nil
}

func writePCM(w io.Writer, pcm []int16) error {
	return binary.Write(w, binary.LittleEndian, pcm)
}

// Write feeds the decoder. A decoder that died is restarted from the end of
// the last reported utterance with the audio since then, so the media clock
// and the speech in flight survive the crash.
func (s *psStream) Write(pcm []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.written += int64(len(pcm))
	s.push(pcm)
	if s.proc == nil {
		return s.start() // after a Flush: the new decoder gets exactly the pending audio
	}
	err := writePCM(s.proc.stdin, pcm)
	if err == nil {
		return nil
	}
	return s.restart(fmt.Errorf("write to decoder: %w", err))
}

// restart replaces a dead decoder. Called with mu held.
func (s *psStream) restart(cause error) error {
	old := s.proc
	old.stdin.Close()
	old.cmd.Process.Kill()
	<-old.done
	s.proc = nil
	s.pmu.Lock()
	s.restarts++
	n, at := s.restarts, s.pendingAt
	s.pmu.Unlock()
	if n > 3 {
		return fmt.Errorf("pocketsphinx died %d times without a result: %w (stderr: %s)", n, cause, strings.TrimSpace(old.stderr.String()))
	}
	s.eng.cfg.reportError(fmt.Errorf("pocketsphinx restarted at %d ms: %w (exit: %v)", s.baseMS+samplesToMS(at), cause, old.waitErr))
	return s.start()
}

// Flush closes the decoder's input so it ends and reports the last
// utterance, waits for it to exit, and leaves the next Write to start a
// fresh decoder at the current position.
func (s *psStream) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for s.proc != nil {
		p := s.proc
		p.stdin.Close()
		select {
		case <-p.done:
		case <-ctx.Done():
			p.cmd.Process.Kill()
			<-p.done
			s.proc = nil
			return fmt.Errorf("pocketsphinx flush: %w", ctx.Err())
		}
		s.proc = nil
		if p.waitErr == nil {
			break
		}
		// The decoder died while draining: decode what it had not reported again.
		cause := fmt.Errorf("pocketsphinx exited during flush: %w (stderr: %s)", p.waitErr, strings.TrimSpace(p.stderr.String()))
		s.pmu.Lock()
		s.restarts++
		n, left := s.restarts, len(s.pending)
		s.pmu.Unlock()
		if n > 3 {
			return cause
		}
		if left == 0 {
			break
		}
		s.eng.cfg.reportError(cause)
		if err := s.start(); err != nil {
			return err
		}
	}
	s.advance(s.written)
	return nil
}

// Close kills the decoder and reaps it; results not yet printed are dropped.
func (s *psStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if p := s.proc; p != nil {
		p.stdin.Close()
		p.cmd.Process.Kill()
		<-p.done
		s.proc = nil
	}
	return nil
}

// read turns the decoder's output into Results until EOF, then reaps it.
func (s *psStream) read(p *psProc, stdout io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var u psUtterance
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		seg, ok := parseSegment(line)
		if !ok {
			// A hypothesis line opens the next utterance.
			if u.started {
				s.deliver(p, u)
			}
			u = psUtterance{started: true}
			continue
		}
		u.started = true
		u.add(seg)
		if seg.word == "</s>" {
			s.deliver(p, u)
			u = psUtterance{}
		}
	}
	if u.started {
		s.deliver(p, u)
	}
	io.Copy(io.Discard, stdout)
	p.waitErr = p.cmd.Wait()
}

type psSegment struct {
	word       string
	start, end float64 // seconds since the decoder's first sample
	posterior  float64
}

// parseSegment reads a "-time yes" line: word start end posterior.
func parseSegment(line string) (psSegment, bool) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return psSegment{}, false
	}
	var v [3]float64
	for i := range v {
		x, err := strconv.ParseFloat(f[i+1], 64)
		if err != nil {
			return psSegment{}, false
		}
		v[i] = x
	}
	return psSegment{word: f[0], start: v[0], end: v[1], posterior: v[2]}, true
}

type psUtterance struct {
	started    bool
	words      []string
	start, end float64
	confSum    float64
	last       float64 // end of the last segment of any kind
}

func (u *psUtterance) add(seg psSegment) {
	u.last = max(u.last, seg.end)
	w := seg.word
	if strings.HasPrefix(w, "<") || strings.HasPrefix(w, "[") || strings.HasPrefix(w, "+") {
		return // <s>, </s>, <sil>, [NOISE], ++UH++: fillers
	}
	if i := strings.IndexByte(w, '('); i > 0 {
		w = w[:i] // "and(2)": alternate pronunciation
	}
	if len(u.words) == 0 {
		u.start = seg.start
	}
	u.end = seg.end
	u.words = append(u.words, w)
	u.confSum += math.Min(math.Max(seg.posterior, 0), 1)
}

func (s *psStream) deliver(p *psProc, u psUtterance) {
	offMS := s.baseMS + samplesToMS(p.offset)
	s.advance(p.offset + int64(math.Round(u.last*SampleRate)))
	if len(u.words) == 0 {
		return
	}
	s.onResult(Result{
		Text:       strings.Join(u.words, " "),
		StartMS:    offMS + int64(math.Round(u.start*1000)),
		EndMS:      offMS + int64(math.Round(u.end*1000)),
		Confidence: u.confSum / float64(len(u.words)),
	})
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(b []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(b[:min(room, len(b))])
	}
	return len(b), nil
}
