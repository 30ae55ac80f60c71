package media

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// recordInChromium records seconds of the librivox file through Chromium's
// fake microphone with MediaRecorder (timeslice 250 ms, as the candidate page
// does) and returns the chunks exactly as the page would post them.
func recordInChromium(t *testing.T, seconds int) [][]byte {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>rec</title>")
	}))
	defer srv.Close()

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", librivox),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Duration(seconds+40)*time.Second)
	defer cancelTimeout()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	js := fmt.Sprintf(`(async () => {
		const s = await navigator.mediaDevices.getUserMedia({audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
		const rec = new MediaRecorder(s, {mimeType: 'audio/webm;codecs=opus'});
		const chunks = [];
		rec.ondataavailable = e => chunks.push(e.data);
		const stopped = new Promise(r => rec.onstop = r);
		rec.start(250);
		await new Promise(r => setTimeout(r, %d));
		rec.stop();
		await stopped;
		s.getTracks().forEach(t => t.stop());
		const out = [];
		for (const c of chunks) {
			const b = new Uint8Array(await c.arrayBuffer());
			let bin = '';
			for (const x of b) bin += String.fromCharCode(x);
			out.push(btoa(bin));
		}
		return out;
	})()`, seconds*1000)
	enc, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("MediaRecorder in chromium: %v", err)
	}
	chunks := make([][]byte, len(enc))
	for i, s := range enc {
		if chunks[i], err = base64.StdEncoding.DecodeString(s); err != nil {
			t.Fatal(err)
		}
	}
	return chunks
}

// envelope is the log energy of consecutive 20 ms frames.
func envelope(pcm []int16) []float64 {
	const frame = SampleRate / 50
	env := make([]float64, len(pcm)/frame)
	for i := range env {
		var e float64
		for _, v := range pcm[i*frame : (i+1)*frame] {
			e += float64(v) * float64(v)
		}
		env[i] = math.Log10(1 + e/frame)
	}
	return env
}

// envelopeMatch is the best Pearson correlation of rec's envelope against the
// looping source's, over every start offset in the source.
func envelopeMatch(src, rec []float64) float64 {
	best := -1.0
	for off := range src {
		var sa, sb, saa, sbb, sab float64
		n := float64(len(rec))
		for i, b := range rec {
			a := src[(off+i)%len(src)]
			sa, sb, saa, sbb, sab = sa+a, sb+b, saa+a*a, sbb+b*b, sab+a*b
		}
		cov := sab - sa*sb/n
		den := math.Sqrt((saa - sa*sa/n) * (sbb - sb*sb/n))
		if den > 0 && cov/den > best {
			best = cov / den
		}
	}
	return best
}

func TestStreamDecoderDecodesChromiumMediaRecorderChunks(t *testing.T) {
	const seconds = 4
	chunks := recordInChromium(t, seconds)
	if len(chunks) < 8 {
		t.Fatalf("MediaRecorder gave %d chunks", len(chunks))
	}
	t.Logf("MediaRecorder gave %d chunks, first %d bytes", len(chunks), len(chunks[0]))

	decode := func(order []int) ([]int16, error) {
		var pcm []int16
		d, err := NewStreamDecoder("audio/webm;codecs=opus", func(p []int16) { pcm = append(pcm, p...) })
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		r := NewReassembler(time.Second, func(_ int64, c []byte) {
			if werr == nil {
				werr = d.Write(c)
			}
		}, func(seq int64) { t.Errorf("seq %d skipped", seq) })
		r.Expect(0)
		for _, i := range order {
			r.Push(int64(i), chunks[i])
		}
		r.Flush()
		r.Close()
		if werr != nil {
			return pcm, werr
		}
		return pcm, d.Close()
	}

	inOrder := make([]int, len(chunks))
	for i := range inOrder {
		inOrder[i] = i
	}
	pcm, err := decode(inOrder)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got := float64(len(pcm)) / SampleRate; got < seconds-0.5 || got > seconds+0.5 {
		t.Errorf("decoded %.3f s of audio from a %d s recording", got, seconds)
	}
	if m := envelopeMatch(envelope(sourcePCM(t)), envelope(pcm)); m < 0.8 {
		t.Errorf("energy envelope correlation with the source %.3f, want > 0.8", m)
	} else {
		t.Logf("decoded %.3f s; envelope correlation with the source %.3f", float64(len(pcm))/SampleRate, m)
	}

	// Chunks posted concurrently arrive out of order and duplicated.
	shuffled := slices.Clone(inOrder)
	for i := 0; i+1 < len(shuffled); i += 3 {
		shuffled[i], shuffled[i+1] = shuffled[i+1], shuffled[i]
	}
	shuffled = append(shuffled, 2, 5, 0)
	again, err := decode(shuffled)
	if err != nil {
		t.Fatalf("decode reordered: %v", err)
	}
	if !slices.Equal(again, pcm) {
		t.Errorf("reordered, duplicated chunks decode to %d samples, in-order to %d", len(again), len(pcm))
	}
}

// chromiumSeed is one second of Chromium 156's MediaRecorder output (stereo
// CELT Opus, unknown-size Segment and Clusters), recorded by recordInChromium
// and committed so the demuxer and its fuzzer see the real layout without a
// browser.
const chromiumSeed = "testdata/chromium-mediarecorder-1s.webm"

func TestStreamDecoderDecodesCommittedChromiumRecording(t *testing.T) {
	data, err := os.ReadFile(chromiumSeed)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := decodeChunks(t, "", data, nil)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got := float64(len(whole)) / SampleRate; got < 0.7 || got > 1.3 {
		t.Errorf("decoded %.3f s from a 1 s recording", got)
	}
	if m := envelopeMatch(envelope(sourcePCM(t)), envelope(whole)); m < 0.8 {
		t.Errorf("energy envelope correlation with the source %.3f, want > 0.8", m)
	}
	for _, cut := range [][]int{{1}, {13, 250, 7}, {4096}} {
		chunked, err := decodeChunks(t, "", data, cut)
		if err != nil || !slices.Equal(chunked, whole) {
			t.Fatalf("chunks %v: %d samples, err %v; whole: %d samples", cut, len(chunked), err, len(whole))
		}
	}
}
