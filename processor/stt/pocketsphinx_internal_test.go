package stt

import (
	"context"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestParseSegmentReadsTimeLinesOnly(t *testing.T) {
	tests := []struct {
		name string
		line string
		ok   bool
		want psSegment
	}{
		{"a word line has four fields", "john 0.630 1.000 0.929128", true, psSegment{"john", 0.63, 1.0, 0.929128}},
		{"an alternate pronunciation keeps its suffix", "and(2) 0.150 0.360 0.260057", true, psSegment{"and(2)", 0.15, 0.36, 0.260057}},
		{"a hypothesis line is not a segment", "he was not an ill disposed young man", false, psSegment{}},
		{"an empty hypothesis is not a segment", "", false, psSegment{}},
		{"a four word hypothesis is not a segment", "he was not ill", false, psSegment{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseSegment(tt.line)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("parseSegment(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestUtteranceDropsFillersAndAlternatePronunciations(t *testing.T) {
	var u psUtterance
	for _, l := range []string{"<s> 0.000 0.140 0.99", "and(2) 0.150 0.360 0.5", "<sil> 0.37 0.5 0.9", "[NOISE] 0.5 0.6 0.9", "john 0.630 1.000 1.0001", "</s> 1.01 1.2 1.0"} {
		seg, _ := parseSegment(l)
		u.add(seg)
	}
	if got := strings.Join(u.words, " "); got != "and john" {
		t.Errorf("words = %q, want \"and john\"", got)
	}
	if u.start != 0.15 || u.end != 1.0 || u.last != 1.2 {
		t.Errorf("times start %v end %v last %v", u.start, u.end, u.last)
	}
	if c := u.confSum / 2; math.Abs(c-0.75) > 1e-9 {
		t.Errorf("confidence %v, want 0.75 (posteriors clamped to 1)", c)
	}
}

// speech is a real recording, loaded without the external test helpers.
func speech(t *testing.T) []int16 {
	t.Helper()
	pcm, err := ReadCorpusWAV("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

func TestPocketsphinxRestartsAKilledDecoderWithoutLosingTheClock(t *testing.T) {
	eng, err := NewPocketsphinx(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var errs []error
	eng.cfg.OnError = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	var results []Result
	st, err := eng.NewStream(context.Background(), 1000, func(r Result) { mu.Lock(); results = append(results, r); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	ps := st.(*psStream)
	defer ps.Close()
	write := func(pcm []int16) {
		for off := 0; off < len(pcm); off += 320 {
			if err := ps.Write(pcm[off:min(off+320, len(pcm))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	he := speech(t) // "he was not an ill disposed young man", 2.99 s
	write(make([]int16, 8000))
	// Kill the decoder in the middle of the recording.
	write(he[:len(he)/2])
	ps.mu.Lock()
	old := ps.proc
	old.cmd.Process.Signal(syscall.SIGKILL)
	ps.mu.Unlock()
	<-old.done
	write(he[len(he)/2:])
	write(make([]int16, 16000))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ps.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if old.cmd.ProcessState == nil {
		t.Error("killed decoder was not reaped")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) == 0 || !strings.Contains(errs[0].Error(), "restarted") {
		t.Errorf("restart not reported: %v", errs)
	}
	if len(results) == 0 {
		t.Fatal("no results after restart")
	}
	var text []string
	for _, r := range results {
		text = append(text, r.Text)
		// The recording spans 1500-4490 ms on the stream clock (base 1000 + 500 ms of silence).
		if r.StartMS < 1300 || r.EndMS > 4800 {
			t.Errorf("result %q at %d-%d ms, outside the recording at 1500-4490 ms", r.Text, r.StartMS, r.EndMS)
		}
	}
	joined := strings.Join(text, " ")
	for _, w := range []string{"he", "young", "man"} {
		if !strings.Contains(" "+joined+" ", " "+w+" ") {
			t.Errorf("replayed audio lost %q: %q", w, joined)
		}
	}
}

func TestPocketsphinxCloseReapsTheDecoder(t *testing.T) {
	eng, err := NewPocketsphinx(Config{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := eng.NewStream(context.Background(), 0, func(Result) {})
	if err != nil {
		t.Fatal(err)
	}
	ps := st.(*psStream)
	ps.Write(make([]int16, 16000))
	p := ps.proc
	if err := ps.Close(); err != nil {
		t.Fatal(err)
	}
	if p.cmd.ProcessState == nil {
		t.Fatal("decoder not reaped after Close")
	}
	if err := syscall.Kill(p.cmd.Process.Pid, 0); err == nil {
		t.Errorf("pid %d still exists after Close", p.cmd.Process.Pid)
	}
}
