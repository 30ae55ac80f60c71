package evalstt

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"candor/processor/media"
	"candor/processor/stt"
)

// An eval transport carries a corpus file to the engine the way a live
// interview carries the candidate's voice, so eval-stt can measure what each
// ingest path costs in accuracy against the clean WAV:
//
//	wav   the file itself (the baseline)
//	webm  Opus in WebM as MediaRecorder writes it, cut into ~2 s chunks that
//	      reach a Reassembler out of order and with one duplicate, decoded by
//	      media.NewStreamDecoder (the /process-audio path)
//	ogg   the same with Ogg/Opus
//	whip  Opus in Ogg played by media.PublishOgg over real WebRTC (loopback
//	      ICE, DTLS, SRTP) to a media.WHIP server; the PCM its OnAudio hands
//	      over is what the engine gets (the POST /whip path)
var evalTransports = []string{"wav", "webm", "ogg", "whip"}

// evalChunkSeconds is how much audio one /process-audio chunk holds, like a
// MediaRecorder started with a 2 s timeslice.
const evalChunkSeconds = 2

// transportOptions tune how the Opus transports encode and send.
type transportOptions struct {
	Name        string // one of evalTransports
	OpusBitrate string // ffmpeg -b:a value
	Realtime    bool   // whip: send at the recording's pace
}

// transcodeCorpus writes into dst a copy of the corpus in src (same refs.txt,
// same file names) whose WAVs hold what the engine receives after the
// transport: 16 kHz mono PCM decoded by the processor's own code. One
// progress line per file goes to progress.
func transcodeCorpus(ctx context.Context, src, dst string, opts transportOptions, progress io.Writer) error {
	refs, err := os.ReadFile(filepath.Join(src, "refs.txt"))
	if err != nil {
		return fmt.Errorf("corpus: %w (a corpus is a folder of WAV files with refs.txt; build one with scripts/make-stt-corpus.sh DIR)", err)
	}
	files, err := corpusFiles(refs)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(src, "refs.txt"), err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "refs.txt"), refs, 0o644); err != nil {
		return err
	}

	var carry func(ctx context.Context, path string, in []int16) ([]int16, string, error)
	switch opts.Name {
	case "webm", "ogg":
		carry = func(ctx context.Context, path string, in []int16) ([]int16, string, error) {
			return chunkedTransport(ctx, path, in, opts)
		}
	case "whip":
		lb, err := startWHIPLoopback()
		if err != nil {
			return err
		}
		defer lb.Close()
		carry = func(ctx context.Context, path string, _ []int16) ([]int16, string, error) {
			return lb.transport(ctx, path, opts)
		}
	default:
		return fmt.Errorf("transport %q: use one of %s", opts.Name, strings.Join(evalTransports, ", "))
	}

	for i, file := range files {
		began := time.Now()
		in, err := stt.ReadCorpusWAV(filepath.Join(src, file))
		if err != nil {
			return err
		}
		out, detail, err := carry(ctx, filepath.Join(src, file), in)
		if err != nil {
			return fmt.Errorf("%s over %s: %w", file, opts.Name, err)
		}
		if len(out) == 0 {
			return fmt.Errorf("%s over %s: no audio came out", file, opts.Name)
		}
		target := filepath.Join(dst, file)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, stt.EncodeWAV(out, stt.SampleRate), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(progress, "[%s %d/%d] %s  %.2fs in, %.2fs out  %s  (%.1fs)\n",
			opts.Name, i+1, len(files), file, seconds(len(in)), seconds(len(out)), detail, time.Since(began).Seconds())
	}
	return nil
}

func seconds(samples int) float64 { return float64(samples) / stt.SampleRate }

// corpusFiles lists the files named in refs.txt, in order. It accepts what
// stt.Evaluate accepts; names must stay inside the corpus folder, since the
// transcoded copy is written under the same names.
func corpusFiles(refs []byte) ([]string, error) {
	var files []string
	sc := bufio.NewScanner(bytes.NewReader(refs))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, _, _ := strings.Cut(line, " ")
		if !filepath.IsLocal(file) {
			return nil, fmt.Errorf("line %d: %q is not a path inside the corpus", n, file)
		}
		files = append(files, file)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("lists no files")
	}
	return files, nil
}

// encodeOpus encodes a WAV with ffmpeg's libopus in 20 ms mono 48 kHz frames,
// as browsers send speech, into format ("webm" or "ogg").
func encodeOpus(ctx context.Context, wav, format, bitrate string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-i", wav, "-c:a", "libopus", "-b:a", bitrate, "-ar", "48000", "-ac", "1", "-frame_duration", "20",
		"-f", format, "pipe:1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, errors.New("ffmpeg is required for the Opus transports (apt-get install ffmpeg)")
		}
		return nil, fmt.Errorf("ffmpeg %s: %w: %s", format, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// chunkedTransport is the /process-audio path: the encoded recording cut
// into ~2 s chunks, pushed to a Reassembler with neighbouring chunks swapped
// and one chunk sent twice, and decoded as one stream.
func chunkedTransport(ctx context.Context, wav string, in []int16, opts transportOptions) ([]int16, string, error) {
	enc, err := encodeOpus(ctx, wav, opts.Name, opts.OpusBitrate)
	if err != nil {
		return nil, "", err
	}
	size := max(1, int(int64(len(enc))*evalChunkSeconds*stt.SampleRate/int64(max(1, len(in)))))
	var chunks [][]byte
	for b := enc; len(b) > 0; b = b[min(size, len(b)):] {
		chunks = append(chunks, b[:min(size, len(b))])
	}

	var out []int16
	dec, err := media.NewStreamDecoder("audio/"+opts.Name+";codecs=opus", func(pcm []int16) { out = append(out, pcm...) })
	if err != nil {
		return nil, "", err
	}
	var decErr error
	var skipped []int64
	r := media.NewReassembler(2*time.Second, func(_ int64, chunk []byte) {
		if decErr == nil {
			decErr = dec.Write(chunk)
		}
	}, func(seq int64) { skipped = append(skipped, seq) })
	defer r.Close()

	order := swappedPairs(len(chunks))
	if len(order) > 1 {
		// The first chunk sent comes again after the second.
		order = append(order[:2], append([]int{order[0]}, order[2:]...)...)
	}
	r.Expect(0)
	dups := 0
	for _, i := range order {
		if r.Push(int64(i), chunks[i]) {
			dups++
		}
	}
	r.Flush()
	r.Close()
	if decErr != nil {
		return nil, "", fmt.Errorf("decode: %w", decErr)
	}
	if err := dec.Close(); err != nil {
		return nil, "", fmt.Errorf("decode: %w", err)
	}
	if len(skipped) > 0 || dups != len(order)-len(chunks) {
		return nil, "", fmt.Errorf("reassembler skipped chunks %v and saw %d duplicates, want none skipped and %d duplicate", skipped, dups, len(order)-len(chunks))
	}
	return out, fmt.Sprintf("%d B %s, %d chunks out of order, %d duplicate", len(enc), opts.Name, len(chunks), dups), nil
}

// swappedPairs is 1 0 3 2 5 4 …: every chunk but a lone last one arrives
// after its successor.
func swappedPairs(n int) []int {
	order := make([]int, 0, n)
	for i := 0; i < n; i += 2 {
		if i+1 < n {
			order = append(order, i+1)
		}
		order = append(order, i)
	}
	return order
}

// whipLoopback is a WHIP endpoint on 127.0.0.1 in front of media.WHIP, the
// processor's POST /whip and DELETE /whip/{session} reduced to what an
// evaluation needs. It serves one publish at a time.
type whipLoopback struct {
	whip  *media.WHIP
	srv   *http.Server
	url   string
	token string
	done  chan struct{} // closed when Serve has returned

	mu   sync.Mutex
	next *pcmCollector // receives the next offer's audio
}

func startWHIPLoopback() (*whipLoopback, error) {
	w, err := media.NewWHIP(media.WebRTCConfig{LoopbackOnly: true}, nil)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.Close()
		return nil, err
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	lb := &whipLoopback{
		whip:  w,
		url:   "http://" + ln.Addr().String() + "/whip",
		token: hex.EncodeToString(tok[:]),
		done:  make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip", lb.offer)
	mux.HandleFunc("DELETE /whip/{session}", lb.delete)
	lb.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(lb.done)
		_ = lb.srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return lb, nil
}

func (lb *whipLoopback) authorized(r *http.Request) bool {
	return r.Header.Get("Authorization") == "Bearer "+lb.token
}

func (lb *whipLoopback) offer(w http.ResponseWriter, r *http.Request) {
	lb.mu.Lock()
	c := lb.next
	lb.next = nil
	lb.mu.Unlock()
	if !lb.authorized(r) || c == nil {
		http.Error(w, "no publish expected", http.StatusUnauthorized)
		return
	}
	offer, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	answer, id, err := lb.whip.Offer(r.Context(), string(offer), c, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/whip/"+id)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

func (lb *whipLoopback) delete(w http.ResponseWriter, r *http.Request) {
	if !lb.authorized(r) {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	if err := lb.whip.Delete(r.PathValue("session")); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
	}
}

// transport plays wav, encoded to Ogg/Opus, over WHIP and returns the PCM
// the server decoded.
func (lb *whipLoopback) transport(ctx context.Context, wav string, opts transportOptions) ([]int16, string, error) {
	ogg, err := encodeOpus(ctx, wav, "ogg", opts.OpusBitrate)
	if err != nil {
		return nil, "", err
	}
	c := &pcmCollector{closed: make(chan struct{})}
	lb.mu.Lock()
	lb.next = c
	lb.mu.Unlock()
	if err := media.PublishOgg(ctx, lb.url, lb.token, bytes.NewReader(ogg), opts.Realtime); err != nil {
		return nil, "", err
	}
	select {
	case <-c.closed: // DELETE closes the session before answering; this is immediate
	case <-time.After(10 * time.Second):
		return nil, "", errors.New("the WHIP session did not close after DELETE")
	}
	pace := "real time"
	if !opts.Realtime {
		pace = "fast"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pcm, fmt.Sprintf("%d B ogg over WebRTC, %s", len(ogg), pace), nil
}

// Close stops the HTTP server and the WHIP server and waits for both.
func (lb *whipLoopback) Close() error {
	err := lb.srv.Close()
	<-lb.done
	return errors.Join(err, lb.whip.Close())
}

// pcmCollector keeps one WHIP session's audio.
type pcmCollector struct {
	mu     sync.Mutex
	pcm    []int16
	once   sync.Once
	closed chan struct{}
}

func (c *pcmCollector) OnAudio(pcm []int16) {
	c.mu.Lock()
	c.pcm = append(c.pcm, pcm...)
	c.mu.Unlock()
}

func (c *pcmCollector) OnClosed() { c.once.Do(func() { close(c.closed) }) }
