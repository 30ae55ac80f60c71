package stt_test

import (
	"testing"

	"candor/processor/stt"
)

func segment(pcm []int16, baseMS int64, cfg stt.SegmenterConfig, chunk int) []stt.Utterance {
	var out []stt.Utterance
	seg := stt.NewSegmenter(baseMS, cfg, func(u stt.Utterance) { out = append(out, u) })
	for off := 0; off < len(pcm); off += chunk {
		seg.Write(pcm[off:min(off+chunk, len(pcm))])
	}
	seg.Flush()
	return out
}

func TestSegmenterFindsNothingInSilenceOrSteadyNoise(t *testing.T) {
	tests := []struct {
		name string
		pcm  []int16
	}{
		{"digital silence stays silent", silence(10000)},
		{"a quiet room at -60 dBFS stays silent", noise(10000, -60, 1)},
		{"loud steady noise at -30 dBFS stays silent", noise(10000, -30, 2)},
		{"noise that steps up from -60 to -35 dBFS stays silent after a moment", concat(noise(3000, -60, 3), noise(8000, -35, 4))},
		{"a single click is not speech", concat(silence(2000), tone(1000, 20, 0.5), silence(2000))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := segment(tt.pcm, 0, stt.SegmenterConfig{}, 320)
			if tt.name == "noise that steps up from -60 to -35 dBFS stays silent after a moment" {
				// The step itself may be taken for speech once; nothing after it may.
				for _, u := range got {
					if u.EndMS > 3000+4000 {
						t.Errorf("utterance %d-%d ms long after the noise step", u.StartMS, u.EndMS)
					}
				}
				return
			}
			if len(got) != 0 {
				t.Errorf("got %d utterances, first %d-%d ms", len(got), got[0].StartMS, got[0].EndMS)
			}
		})
	}
}

func TestSegmenterCutsRealRecordingsAtTheirSilences(t *testing.T) {
	recs := loadLibrivox(t)
	tests := []struct {
		name  string
		floor func(ms int, seed uint32) []int16
	}{
		{"in a silent room", func(ms int, _ uint32) []int16 { return silence(ms) }},
		{"over -45 dBFS background noise", func(ms int, seed uint32) []int16 { return noise(ms, -45, seed) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const baseMS = 60000
			var pcm []int16
			type span struct{ start, end int64 }
			var spans []span
			for i, r := range recs {
				pcm = append(pcm, tt.floor(2000, uint32(10+i))...)
				start := int64(len(pcm)) * 1000 / stt.SampleRate
				pcm = append(pcm, mix(r.pcm, tt.floor(len(r.pcm)*1000/stt.SampleRate, uint32(20+i)))...)
				spans = append(spans, span{baseMS + start, baseMS + int64(len(pcm))*1000/stt.SampleRate})
			}
			pcm = append(pcm, tt.floor(2000, 99)...)
			got := segment(pcm, baseMS, stt.SegmenterConfig{}, 320)
			if len(got) != len(recs) {
				for _, u := range got {
					t.Logf("utterance %d-%d", u.StartMS, u.EndMS)
				}
				t.Fatalf("got %d utterances for %d recordings", len(got), len(recs))
			}
			for i, u := range got {
				sp := spans[i]
				if u.StartMS < sp.start || u.EndMS > sp.end || u.StartMS >= u.EndMS {
					t.Errorf("utterance %d at %d-%d ms, recording at %d-%d ms", i, u.StartMS, u.EndMS, sp.start, sp.end)
				}
				// The recordings begin and end with a little room tone; speech fills most of them.
				if cover := float64(u.EndMS-u.StartMS) / float64(sp.end-sp.start); cover < 0.7 {
					t.Errorf("utterance %d covers only %.0f%% of its recording", i, 100*cover)
				}
				if u.PCMStartMS > u.StartMS || int64(len(u.PCM))*1000/stt.SampleRate < u.EndMS-u.StartMS {
					t.Errorf("utterance %d: PCM from %d ms (%d samples) does not hold the speech %d-%d", i, u.PCMStartMS, len(u.PCM), u.StartMS, u.EndMS)
				}
			}
		})
	}
}

func TestSegmenterHangoverKeepsShortPausesInsideAnUtterance(t *testing.T) {
	burst := tone(300, 400, 0.3)
	tests := []struct {
		name  string
		gapMS int
		want  int
	}{
		{"a 300 ms pause between words keeps one utterance", 300, 1},
		{"a 450 ms pause still keeps one utterance", 450, 1},
		{"a 900 ms pause ends the utterance", 900, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcm := concat(silence(1000), burst, silence(tt.gapMS), burst, silence(1500))
			got := segment(pcm, 0, stt.SegmenterConfig{}, 320)
			if len(got) != tt.want {
				t.Fatalf("got %d utterances, want %d", len(got), tt.want)
			}
			// Pre-roll: the PCM starts up to 200 ms before the onset; the onset is found within 40 ms.
			if u := got[0]; u.StartMS < 1000-10 || u.StartMS > 1000+40 || u.StartMS-u.PCMStartMS < 150 {
				t.Errorf("first utterance starts at %d ms with PCM from %d ms; burst at 1000 ms", u.StartMS, u.PCMStartMS)
			}
		})
	}
}

func TestSegmenterSplitsOverLongSpeechWithoutLosingAudio(t *testing.T) {
	recs := loadLibrivox(t)
	var pcm []int16
	for _, r := range recs {
		pcm = append(pcm, r.pcm...)
	}
	got := segment(pcm, 0, stt.SegmenterConfig{MaxUtteranceMS: 5000, HangoverMS: 2000}, 320)
	if len(got) < 4 {
		t.Fatalf("got %d utterances from %d ms of speech with a 5 s cap", len(got), len(pcm)/16)
	}
	for i, u := range got {
		if n := len(u.PCM) * 1000 / stt.SampleRate; n > 5000+400 {
			t.Errorf("utterance %d holds %d ms of audio, cap is 5000", i, n)
		}
		if i > 0 {
			prev := got[i-1]
			prevEnd := prev.PCMStartMS + int64(len(prev.PCM))*1000/stt.SampleRate
			if prev.EndMS == u.StartMS && prevEnd != u.PCMStartMS {
				t.Errorf("split %d: previous PCM ends at %d ms, next starts at %d ms", i, prevEnd, u.PCMStartMS)
			}
		}
	}
}

func TestSegmenterDoesNotDependOnWriteSizes(t *testing.T) {
	recs := loadLibrivox(t)
	pcm := concat(silence(1000), recs[1].pcm, silence(1000), recs[4].pcm, silence(1000))
	want := segment(pcm, 0, stt.SegmenterConfig{}, 320)
	for _, chunk := range []int{1, 77, 160, 4096} {
		got := segment(pcm, 0, stt.SegmenterConfig{}, chunk)
		if len(got) != len(want) {
			t.Fatalf("chunk %d: %d utterances, want %d", chunk, len(got), len(want))
		}
		for i := range got {
			if got[i].StartMS != want[i].StartMS || got[i].EndMS != want[i].EndMS || len(got[i].PCM) != len(want[i].PCM) {
				t.Errorf("chunk %d utterance %d: %d-%d (%d samples), want %d-%d (%d)", chunk, i,
					got[i].StartMS, got[i].EndMS, len(got[i].PCM), want[i].StartMS, want[i].EndMS, len(want[i].PCM))
			}
		}
	}
}
