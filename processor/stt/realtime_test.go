package stt_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"candor/processor/stt"
	"candor/processor/stt/openaifake"
)

func newRealtime(t *testing.T, fake *openaifake.Server, cfg stt.Config) (stt.Engine, *[]error) {
	t.Helper()
	var mu sync.Mutex
	errs := &[]error{}
	cfg.OpenAIKey = "test-key"
	cfg.OpenAIBaseURL = fake.URL
	cfg.OnError = func(err error) {
		mu.Lock()
		*errs = append(*errs, err)
		mu.Unlock()
		t.Logf("engine error: %v", err)
	}
	eng, err := stt.New("openai-realtime", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return eng, errs
}

// energy is the sum of squares: resampling the tones from 16 to 24 kHz
// scales it by exactly 1.5, so a lost or duplicated 20 ms piece shows.
func energy(pcm []int16) float64 {
	var e float64
	for _, v := range pcm {
		e += float64(v) * float64(v)
	}
	return e
}

func TestRealtimeReleasesResultsInItemOrderWhenCompletionsArriveOutOfOrder(t *testing.T) {
	// Later items complete first: item n waits (5-n) * 60 ms.
	fake := openaifake.New(openaifake.Options{TranscriptionDelay: func(n int) time.Duration { return time.Duration(5-n) * 60 * time.Millisecond }})
	defer fake.Close()
	eng, errs := newRealtime(t, fake, stt.Config{})
	pcm, want := toneTrack(300, 450, 600, 750, 900)
	var c collector
	st, err := eng.NewStream(context.Background(), 10000, c.add)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	feed(t, st, pcm)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := c.results()
	if strings.Join(texts(got), ",") != strings.Join(want, ",") {
		t.Fatalf("texts %v, want %v", texts(got), want)
	}
	for i, r := range got {
		onset := int64(10000 + 500 + i*1800)
		// audio_start_ms includes the server's 300 ms prefix padding.
		if r.StartMS < onset-330 || r.StartMS > onset+20 || r.EndMS < onset+580 || r.EndMS > onset+620 {
			t.Errorf("result %d at %d-%d ms, tone at %d-%d ms", i, r.StartMS, r.EndMS, onset, onset+600)
		}
	}
	sessions := fake.Sessions()
	if len(sessions) != 1 || sessions[0].Type != "transcription" || sessions[0].Updates < 1 {
		t.Fatalf("sessions %+v", sessions)
	}
	if len(*errs) != 0 {
		t.Errorf("errors: %v", *errs)
	}
}

func TestRealtimeRollsOverSessionsWithoutLosingOrDuplicatingAudio(t *testing.T) {
	tests := []struct {
		name string
		pcm  func() ([]int16, []string)
		cfg  stt.Config
	}{
		{
			name: "switches in a pause between utterances",
			pcm:  func() ([]int16, []string) { return toneTrack(300, 400, 500, 600, 700, 800, 900, 1000) },
			cfg:  stt.Config{RealtimeSessionMax: 3 * time.Second, RealtimeHardSwitch: 10 * time.Second},
		},
		{
			name: "switches hard in the middle of speech that never pauses",
			pcm: func() ([]int16, []string) {
				return concat(silence(300), tone(500, 9000, 0.3), silence(1500)), nil
			},
			cfg: stt.Config{RealtimeSessionMax: 2 * time.Second, RealtimeHardSwitch: time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The fake ends any session that receives more than 6 s of audio,
			// as the service does at 60 minutes.
			fake := openaifake.New(openaifake.Options{
				MaxSessionAudio:    6 * time.Second,
				TranscriptionDelay: func(n int) time.Duration { return time.Duration(n%3) * 40 * time.Millisecond },
			})
			defer fake.Close()
			eng, errs := newRealtime(t, fake, tt.cfg)
			pcm, want := tt.pcm()
			var c collector
			st, err := eng.NewStream(context.Background(), 0, c.add)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			// Real-time-sized pieces, paced a little so rollover dials can finish.
			const chunk = stt.SampleRate / 50
			for off := 0; off < len(pcm); off += chunk {
				if err := st.Write(pcm[off:min(off+chunk, len(pcm))]); err != nil {
					t.Fatal(err)
				}
				if off%(chunk*25) == 0 {
					time.Sleep(20 * time.Millisecond)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := st.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			got := c.results()
			sessions := fake.Sessions()
			if len(sessions) < 3 {
				t.Fatalf("%d sessions for %d ms of audio with a %v cap", len(sessions), len(pcm)/16, tt.cfg.RealtimeSessionMax)
			}
			var e float64
			for _, s := range sessions {
				if s.Expired {
					t.Errorf("session %s hit the cap", s.ID)
				}
				e += energy(s.Audio)
			}
			if want := energy(pcm) * 1.5; e < want*0.999 || e > want*1.001 {
				t.Errorf("sessions got %.4g of signal energy, the stream had %.4g at 24 kHz (%.3f%%)", e, want, 100*(e/want-1))
			}
			var prevEnd int64
			for i, r := range got {
				if r.StartMS < prevEnd-330 || r.EndMS < r.StartMS || r.EndMS > int64(len(pcm)/16) {
					t.Errorf("result %d %q at %d-%d ms after %d", i, r.Text, r.StartMS, r.EndMS, prevEnd)
				}
				prevEnd = r.EndMS
			}
			if want != nil {
				if strings.Join(texts(got), ",") != strings.Join(want, ",") {
					t.Errorf("texts %v, want %v", texts(got), want)
				}
				for i, r := range got {
					onset := int64(500 + i*1800)
					if r.StartMS < onset-330 || r.StartMS > onset+20 || r.EndMS < onset+580 || r.EndMS > onset+620 {
						t.Errorf("result %d at %d-%d ms, tone at %d-%d ms", i, r.StartMS, r.EndMS, onset, onset+600)
					}
				}
			} else {
				// One long tone, cut at session switches: every piece names it and they tile it.
				if len(got) < 2 {
					t.Errorf("results %v: want the tone cut into pieces", texts(got))
				}
				for _, r := range got {
					if r.Text != "tone 500" {
						t.Errorf("piece %q", r.Text)
					}
				}
				if len(got) > 0 && (got[0].StartMS > 300 || got[len(got)-1].EndMS < 9250) {
					t.Errorf("pieces span %d-%d ms, tone at 300-9300 ms", got[0].StartMS, got[len(got)-1].EndMS)
				}
			}
			if len(*errs) != 0 {
				t.Errorf("errors: %v", *errs)
			}
		})
	}
}

func TestRealtimeFlushWaitsForSpeechStillInProgress(t *testing.T) {
	fake := openaifake.New(openaifake.Options{TranscriptionDelay: func(int) time.Duration { return 100 * time.Millisecond }})
	defer fake.Close()
	eng, _ := newRealtime(t, fake, stt.Config{})
	var c collector
	st, err := eng.NewStream(context.Background(), 0, c.add)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	feed(t, st, concat(silence(400), tone(700, 1500, 0.3)))
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := texts(c.results()); len(got) != 1 || got[0] != "tone 700" {
		t.Fatalf("texts %v", got)
	}
	// Padding is not stream time: the next tone is timed from the real samples.
	feed(t, st, concat(silence(1000), tone(350, 600, 0.3), silence(1000)))
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := c.results()
	if len(got) != 2 || got[1].Text != "tone 350" {
		t.Fatalf("texts %v", texts(got))
	}
	if onset := int64(400 + 1500 + 1000); got[1].StartMS < onset-330 || got[1].StartMS > onset+20 {
		t.Errorf("second tone at %d ms, fed at %d ms", got[1].StartMS, onset)
	}
}
