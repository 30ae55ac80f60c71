package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"candor/processor/media"
)

// The interview recording. Every ingest path ends in writePCM, so the
// recorder keeps ONE WAV (16 kHz s16le mono) of every sample this processor
// fed the speech stream, in stream order: whatever the mix of paths (WHIP,
// then /ws/audio after ICE fails, then chunks), it is one continuous file on
// the media clock that the transcript's start_ms/end_ms refer to.
//
// Beside it, the recorder keeps the candidate's compressed original when
// there is one: the Ogg/Opus that WHIP writes from the RTP packets, and the
// in-order bytes of a /process-audio WebM or Ogg stream (MediaRecorder's
// chunks concatenated in sequence order are the file it recorded). When one
// such original holds ALL the audio of this processor (a single source, and
// for chunks no chunk skipped and none undecodable), it is uploaded instead
// of the WAV: about a tenth of the size (Opus at ~24-32 kbit/s against WAV's
// 115 MB/hour) at the browser's own quality. In every other case (raw PCM or
// WAV chunks, a WebSocket, two WHIP sessions, a skipped chunk, a mix) the WAV
// is uploaded, so nothing the processor heard is missing from it.
//
// Each processor uploads its recording as segments of the interview, named
// by a random id and the media-clock position where each starts; the
// control plane keeps every segment, so a replacement processor's recording
// never overwrites its predecessor's.
//
// So that a crash (SIGKILL, a machine lost) costs at most the last part, the
// WAV is cut into parts as it grows: every RecordingSegment of audio (or
// RecordingSegmentBytes) the current part is closed and uploaded in the
// background as segment <id>-<n>, starting where the part starts on the
// media clock. At the end, when a compressed original holds all the audio,
// it is uploaded as segment <id>, and the control plane drops the parts
// <id>-<n> it replaces; otherwise the last WAV part is uploaded too and the
// parts are the recording.
type recorder struct {
	dir, stem string // files are <dir>/<stem>.<part>.<ext>
	segment   string
	startMS   int64
	log       *slog.Logger
	// partSamples and partBytes bound one WAV part; 0 = one part.
	partSamples, partBytes int64

	mu          sync.Mutex
	wavFile     *os.File
	wav         *media.WAVWriter
	wavFailed   bool
	part        int   // number of the current WAV part, from 1
	partStart   int64 // samples recorded before the current part
	pending     []recordingFile
	sources     map[any]int64 // samples delivered, by ingest source
	originals   map[any]*original
	gen         int64         // changes with every write
	uploaded    int64         // gen of the last upload of the original
	partsClosed chan struct{} // signalled when a part joins pending
}

// original is a compressed recording written by one ingest source.
type original struct {
	path, contentType string
	f                 *os.File
	clean             bool // holds all of its source's audio, in order, and nothing else
}

// recordingFile is one upload of uploadRecording.
type recordingFile struct {
	path, contentType string
	segment           string
	startMS           int64
	part              bool // a WAV part: removed locally once uploaded
}

func newRecorder(dataDir, sessionID string, startMS int64, segment time.Duration, segmentBytes int64, log *slog.Logger) *recorder {
	var id [8]byte
	_, _ = rand.Read(id[:])
	seg := hex.EncodeToString(id[:])
	return &recorder{
		dir: dataDir,
		// Named by segment: a restarted processor on the same machine does
		// not truncate a predecessor's files.
		stem:        "recording-" + safeName(sessionID) + "-" + seg,
		segment:     seg,
		startMS:     startMS,
		log:         log,
		partSamples: int64(segment.Seconds() * media.SampleRate),
		partBytes:   segmentBytes,
		part:        1,
		sources:     make(map[any]int64),
		originals:   make(map[any]*original),
		partsClosed: make(chan struct{}, 1),
	}
}

// heard records samples that src delivered to the speech stream.
func (r *recorder) heard(src any, pcm []int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sources[src] += int64(len(pcm))
	r.gen++
	if r.wavFailed {
		return
	}
	if err := r.writeWAV(pcm); err != nil {
		r.wavFailed = true
		r.log.Error("recording: the WAV cannot be written; later audio is not recorded", "err", err)
		return
	}
	full := r.partSamples > 0 && r.wav.Samples() >= r.partSamples ||
		r.partBytes > 0 && 2*r.wav.Samples() >= r.partBytes
	if full {
		if err := r.closePart(); err != nil {
			r.wavFailed = true
			r.log.Error("recording: a WAV part cannot be closed; later audio is not recorded", "err", err)
			return
		}
		select {
		case r.partsClosed <- struct{}{}:
		default:
		}
	}
}

// closePart finishes the current WAV part, queues it for upload and starts
// the next one. It is a no-op when the part holds no audio.
func (r *recorder) closePart() error {
	if r.wav == nil || r.wav.Samples() == 0 {
		return nil
	}
	if err := r.wav.Finish(); err != nil {
		return err
	}
	if err := r.wavFile.Close(); err != nil {
		return err
	}
	r.pending = append(r.pending, recordingFile{
		path: r.wavFile.Name(), contentType: "audio/wav", part: true,
		segment: fmt.Sprintf("%s-%d", r.segment, r.part),
		startMS: r.startMS + r.partStart*1000/media.SampleRate,
	})
	r.partStart += r.wav.Samples()
	r.part++
	r.wav, r.wavFile = nil, nil
	return nil
}

func (r *recorder) writeWAV(pcm []int16) error {
	if r.wav == nil {
		f, err := os.Create(filepath.Join(r.dir, fmt.Sprintf("%s.part%d.wav", r.stem, r.part)))
		if err != nil {
			return err
		}
		w, err := media.NewWAVWriter(f)
		if err != nil {
			f.Close()
			return err
		}
		r.wavFile, r.wav = f, w
	}
	return r.wav.Write(pcm)
}

// writeOriginal appends b to src's compressed original, creating it with the
// given extension and content type on the first write.
func (r *recorder) writeOriginal(src any, ext, contentType string, b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.originals[src]
	if o == nil {
		path := filepath.Join(r.dir, fmt.Sprintf("%s.%d%s", r.stem, len(r.originals)+1, ext))
		f, err := os.Create(path)
		if err != nil {
			r.originals[src] = &original{path: path}
			return fmt.Errorf("open recording: %w", err)
		}
		o = &original{path: path, contentType: contentType, f: f, clean: true}
		r.originals[src] = o
	}
	if o.f == nil || !o.clean {
		return nil
	}
	r.gen++
	if _, err := o.f.Write(b); err != nil {
		o.clean = false
		return fmt.Errorf("write recording: %w", err)
	}
	return nil
}

// spoil marks src's original as not the whole of its audio (a chunk was
// skipped or could not be decoded): the WAV is uploaded instead.
func (r *recorder) spoil(src any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o := r.originals[src]; o != nil {
		o.clean = false
	} else {
		r.originals[src] = &original{}
	}
}

// finish makes the files complete on disk and lists what is left to
// upload, in order: the compressed original when one source's clean
// original holds all the audio (the parts it replaces are then not
// uploaded), else every WAV part not yet uploaded, the current one closed
// first. gen is passed back to done.
func (r *recorder) finish() (files []recordingFile, gen int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen == r.uploaded || len(r.sources) == 0 {
		return nil, 0, nil
	}
	if len(r.sources) == 1 {
		for src := range r.sources {
			if o := r.originals[src]; o != nil && o.f != nil && o.clean {
				if err := o.f.Sync(); err != nil {
					return nil, 0, fmt.Errorf("sync recording: %w", err)
				}
				path := o.path
				if o.contentType == "audio/webm" {
					path = r.sizedWebM(o.path, r.sources[src]*1000/media.SampleRate)
				}
				r.dropPending()
				return []recordingFile{{path: path, contentType: o.contentType, segment: r.segment, startMS: r.startMS}}, r.gen, nil
			}
		}
	}
	if r.wavFailed && r.wav == nil && len(r.pending) == 0 {
		return nil, 0, errors.New("the WAV recording could not be written (see the earlier error)")
	}
	if err := r.closePart(); err != nil {
		r.wavFailed = true
		return nil, 0, err
	}
	return slices.Clone(r.pending), r.gen, nil
}

// takeParts returns the closed WAV parts waiting for upload.
func (r *recorder) takeParts() []recordingFile {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pending)
}

// partUploaded removes an uploaded part from pending and from disk.
func (r *recorder) partUploaded(f recordingFile) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = slices.DeleteFunc(r.pending, func(p recordingFile) bool { return p.segment == f.segment })
	if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("recording: uploaded part not removed", "err", err)
	}
}

// dropPending forgets parts the original replaces (their upload would be
// undone by the original's).
func (r *recorder) dropPending() {
	for _, p := range r.pending {
		_ = os.Remove(p.path)
	}
	r.pending = nil
}

// sizedWebM returns a copy of the WebM at path with its duration written
// into it (MediaRecorder leaves it out, and a player then shows no length
// and seeks poorly), or path itself when the file needs no fix-up or the
// copy fails (the file plays without it).
func (r *recorder) sizedWebM(path string, durationMS int64) string {
	src, err := os.Open(path)
	if err != nil {
		r.log.Warn("recording: WebM duration not added", "err", err)
		return path
	}
	defer src.Close()
	sized := strings.TrimSuffix(path, ".webm") + ".sized.webm"
	dst, err := os.Create(sized)
	if err != nil {
		r.log.Warn("recording: WebM duration not added", "err", err)
		return path
	}
	err = media.AddWebMDuration(dst, src, durationMS)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(sized)
		if !errors.Is(err, media.ErrNoDurationFix) {
			r.log.Warn("recording: WebM duration not added", "err", err)
		}
		return path
	}
	return sized
}

// done notes that the recording as of gen reached the control plane.
func (r *recorder) done(gen int64) {
	r.mu.Lock()
	r.uploaded = max(r.uploaded, gen)
	r.mu.Unlock()
}

func (r *recorder) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wavFile != nil && r.wav != nil {
		r.wavFile.Close()
	}
	for _, o := range r.originals {
		if o.f != nil {
			o.f.Close()
		}
	}
}

// uploadRecording uploads what is left of the recording (see finish).
func (s *session) uploadRecording(ctx context.Context) error {
	s.uploadMu.Lock()
	defer s.uploadMu.Unlock()
	files, gen, err := s.rec.finish()
	if err != nil || len(files) == 0 {
		return err
	}
	for _, f := range files {
		if err := s.putRecording(ctx, f); err != nil {
			return err
		}
	}
	s.rec.done(gen)
	return nil
}

// uploadParts uploads the WAV parts closed so far; a part that fails stays
// pending for the next call.
func (s *session) uploadParts(ctx context.Context) error {
	s.uploadMu.Lock()
	defer s.uploadMu.Unlock()
	for _, f := range s.rec.takeParts() {
		if err := s.putRecording(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// recordingParts uploads each WAV part as soon as it is closed, so that a
// crash loses at most the part being recorded. A failed upload is retried
// with the bridge's backoff; End uploads whatever is still pending.
func (s *session) recordingParts(ctx context.Context) {
	wait := s.cfg.Timing.RetryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.rec.partsClosed:
		}
		for {
			err := s.uploadParts(ctx)
			if err == nil || ctx.Err() != nil {
				wait = s.cfg.Timing.RetryMin
				break
			}
			s.log.Warn("recording part not uploaded yet; retrying", "err", err, "in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, s.cfg.Timing.RetryMax)
		}
	}
}

func (s *session) putRecording(ctx context.Context, file recordingFile) error {
	f, err := os.Open(file.path)
	if err != nil {
		return fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat recording: %w", err)
	}
	seg := RecordingSegment{ID: file.segment, StartMS: file.startMS, ContentType: file.contentType}
	if err := s.bridge.PutRecording(ctx, f, fi.Size(), seg); err != nil {
		return err
	}
	if file.part {
		s.rec.partUploaded(file)
	}
	return nil
}

// whipRecording is the io.Writer given to WHIP for one session's Ogg/Opus.
type whipRecording struct {
	r   *recorder
	src *whipHandler
}

func (w whipRecording) Write(p []byte) (int, error) {
	if err := w.r.writeOriginal(w.src, ".ogg", "audio/ogg", p); err != nil {
		return 0, err
	}
	return len(p), nil
}
