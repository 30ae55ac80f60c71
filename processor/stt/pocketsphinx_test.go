package stt_test

import (
	"context"
	"testing"
	"time"

	"candor/processor/stt"
)

func newPocketsphinx(t testing.TB) stt.Engine {
	t.Helper()
	eng, err := stt.New("pocketsphinx", stt.Config{OnError: func(err error) { t.Logf("engine error: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// wordOverlap is the share of reference words that appear in the hypothesis.
func wordOverlap(ref, hyp string) float64 {
	have := map[string]bool{}
	for _, w := range stt.NormalizeWords(hyp) {
		have[w] = true
	}
	r := stt.NormalizeWords(ref)
	hit := 0
	for _, w := range r {
		if have[w] {
			hit++
		}
	}
	return float64(hit) / float64(len(r))
}

func TestPocketsphinxTranscribesRealRecordingsOnTheStreamClock(t *testing.T) {
	recs := loadLibrivox(t)
	const baseMS = 7000
	var c collector
	st, err := newPocketsphinx(t).NewStream(context.Background(), baseMS, c.add)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	type span struct{ start, end int64 }
	var spans []span
	var refs []string
	var pos int64
	for _, r := range recs {
		feed(t, st, silence(1500))
		pos += 1500
		feed(t, st, r.pcm)
		dur := int64(len(r.pcm)) * 1000 / stt.SampleRate
		spans = append(spans, span{baseMS + pos, baseMS + pos + dur})
		pos += dur
		refs = append(refs, r.ref)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	got := c.results()
	if len(got) == 0 {
		t.Fatal("no results")
	}
	var prevEnd int64
	for i, r := range got {
		if r.StartMS > r.EndMS || r.StartMS < prevEnd {
			t.Errorf("result %d %q: times %d-%d not monotonic after %d", i, r.Text, r.StartMS, r.EndMS, prevEnd)
		}
		if r.StartMS < baseMS || r.EndMS > baseMS+pos {
			t.Errorf("result %d %q: times %d-%d outside the audio %d-%d", i, r.Text, r.StartMS, r.EndMS, baseMS, baseMS+pos)
		}
		if r.Confidence <= 0 || r.Confidence > 1 {
			t.Errorf("result %d: confidence %v not in (0,1]", i, r.Confidence)
		}
		prevEnd = r.EndMS
	}
	// Per recording: the results that fall inside it share words with its reference.
	for i, sp := range spans {
		var hyp string
		for _, r := range got {
			if r.EndMS > sp.start-300 && r.StartMS < sp.end+300 {
				hyp += " " + r.Text
			}
		}
		if o := wordOverlap(refs[i], hyp); o < 0.4 {
			t.Errorf("recording %d: word overlap %.2f\nref: %s\nhyp: %s", i, o, refs[i], hyp)
		}
	}
	var ref string
	for _, r := range refs {
		ref += " " + r
	}
	errs, words := stt.WordErrors(ref, c.text())
	wer := float64(errs) / float64(words)
	t.Logf("WER %.1f%% (%d/%d) over %d results", 100*wer, errs, words, len(got))
	if wer >= 0.6 {
		t.Errorf("WER %.2f, want < 0.60\nref: %s\nhyp: %s", wer, ref, c.text())
	}
}

func TestPocketsphinxFlushCompletesAnUtteranceCutMidSpeechAndStaysUsable(t *testing.T) {
	recs := loadLibrivox(t)
	long := recs[0] // "and mister john dashwood had then leisure to consider how much ..."
	var c collector
	st, err := newPocketsphinx(t).NewStream(context.Background(), 0, c.add)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cut := len(long.pcm) * 6 / 10
	feed(t, st, silence(500))
	feed(t, st, long.pcm[:cut])
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := c.results()
	if len(first) == 0 {
		t.Fatal("flush mid-speech produced no result")
	}
	cutMS := int64(500 + cut*1000/stt.SampleRate)
	if last := first[len(first)-1]; last.EndMS < cutMS-1500 || last.EndMS > cutMS {
		t.Errorf("last result ends at %d ms, want within 1.5 s before the flush point %d ms", last.EndMS, cutMS)
	}
	// Words from the stretch just before the cut ("consider", "how much") must be there.
	if o := wordOverlap("john dashwood leisure consider", c.text()); o < 0.5 {
		t.Errorf("flushed text %q misses most of the audio before the cut", c.text())
	}

	// The stream continues on the same clock after the flush.
	feed(t, st, silence(1000))
	feed(t, st, recs[1].pcm)
	feed(t, st, silence(1000))
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := c.results()[len(first):]
	if len(after) == 0 {
		t.Fatal("no results after the first flush")
	}
	startB := cutMS + 1000
	for _, r := range after {
		if r.StartMS < startB-300 || r.EndMS > startB+int64(len(recs[1].pcm)*1000/stt.SampleRate)+300 {
			t.Errorf("result %q at %d-%d ms, want inside the second recording from %d ms", r.Text, r.StartMS, r.EndMS, startB)
		}
	}
	if o := wordOverlap(recs[1].ref, c.text()); o < 0.4 {
		t.Errorf("second recording: overlap %.2f, hyp %q", o, c.text())
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Errorf("flush with nothing written: %v", err)
	}
}

func TestPocketsphinxIgnoresSilenceAndCloseIsIdempotent(t *testing.T) {
	var c collector
	st, err := newPocketsphinx(t).NewStream(context.Background(), 0, c.add)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, st, silence(3000))
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.results(); len(got) != 0 {
		t.Errorf("silence produced %v", got)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := st.Write(silence(20)); err == nil {
		t.Error("write after close succeeded")
	}
}
