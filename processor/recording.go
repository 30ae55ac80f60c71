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
	"strings"
	"sync"

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
// Each processor uploads its recording as one segment of the interview,
// named by a random segment id and the media-clock position where it starts
// (its resume point); the control plane keeps every segment, so a
// replacement processor's shorter recording never overwrites its
// predecessor's.
type recorder struct {
	dir, stem string // files are <dir>/<stem>.<part>.<ext>
	segment   string
	startMS   int64
	log       *slog.Logger

	mu        sync.Mutex
	wavFile   *os.File
	wav       *media.WAVWriter
	wavFailed bool
	sources   map[any]int64 // samples delivered, by ingest source
	originals map[any]*original
	gen       int64 // changes with every write
	uploaded  int64 // gen of the last upload
}

// original is a compressed recording written by one ingest source.
type original struct {
	path, contentType string
	f                 *os.File
	clean             bool // holds all of its source's audio, in order, and nothing else
}

// recordingFile is what uploadRecording sends.
type recordingFile struct {
	path, contentType string
}

func newRecorder(dataDir, sessionID string, startMS int64, log *slog.Logger) *recorder {
	var id [8]byte
	_, _ = rand.Read(id[:])
	segment := hex.EncodeToString(id[:])
	return &recorder{
		dir: dataDir,
		// Named by segment: a restarted processor on the same machine does
		// not truncate a predecessor's files.
		stem:      "recording-" + safeName(sessionID) + "-" + segment,
		segment:   segment,
		startMS:   startMS,
		log:       log,
		sources:   make(map[any]int64),
		originals: make(map[any]*original),
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
	}
}

func (r *recorder) writeWAV(pcm []int16) error {
	if r.wav == nil {
		f, err := os.Create(filepath.Join(r.dir, r.stem+".wav"))
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

// finish makes the files complete on disk and picks the one to upload; ok
// is false when there is nothing new to upload. gen is passed back to done.
func (r *recorder) finish() (file recordingFile, gen int64, ok bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen == r.uploaded || len(r.sources) == 0 {
		return recordingFile{}, 0, false, nil
	}
	if len(r.sources) == 1 {
		for src := range r.sources {
			if o := r.originals[src]; o != nil && o.f != nil && o.clean {
				if err := o.f.Sync(); err != nil {
					return recordingFile{}, 0, false, fmt.Errorf("sync recording: %w", err)
				}
				path := o.path
				if o.contentType == "audio/webm" {
					path = r.sizedWebM(o.path, r.sources[src]*1000/media.SampleRate)
				}
				return recordingFile{path: path, contentType: o.contentType}, r.gen, true, nil
			}
		}
	}
	if r.wav == nil {
		return recordingFile{}, 0, false, errors.New("the WAV recording could not be written (see the earlier error)")
	}
	if err := r.wav.Finish(); err != nil {
		return recordingFile{}, 0, false, err
	}
	if err := r.wavFile.Sync(); err != nil {
		return recordingFile{}, 0, false, fmt.Errorf("sync recording: %w", err)
	}
	return recordingFile{path: r.wavFile.Name(), contentType: "audio/wav"}, r.gen, true, nil
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
	if r.wavFile != nil {
		r.wavFile.Close()
	}
	for _, o := range r.originals {
		if o.f != nil {
			o.f.Close()
		}
	}
}

// uploadRecording PUTs the recording when it changed since the last upload.
func (s *session) uploadRecording(ctx context.Context) error {
	file, gen, ok, err := s.rec.finish()
	if err != nil || !ok {
		return err
	}
	f, err := os.Open(file.path)
	if err != nil {
		return fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat recording: %w", err)
	}
	seg := RecordingSegment{ID: s.rec.segment, StartMS: s.rec.startMS, ContentType: file.contentType}
	if err := s.bridge.PutRecording(ctx, f, fi.Size(), seg); err != nil {
		return err
	}
	s.rec.done(gen)
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
