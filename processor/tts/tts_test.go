package tts_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"testing"

	"candor/processor/stt"
	"candor/processor/stt/openaifake"
	"candor/processor/tts"
)

func rms(pcm []int16) float64 {
	var s float64
	for _, v := range pcm {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(max(len(pcm), 1)))
}

func TestEspeakSpeaksSixteenKilohertzAudio(t *testing.T) {
	v := tts.NewEspeak()
	tests := []struct {
		name         string
		text         string
		minMS, maxMS int
	}{
		{"a short greeting", "Hello, and welcome to your interview.", 1200, 4500},
		{"text that starts with a dash is spoken, not parsed as a flag", "-v is not an option here", 800, 4000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcm, err := v.Speak(context.Background(), tt.text)
			if err != nil {
				t.Fatal(err)
			}
			ms := len(pcm) * 1000 / tts.SampleRate
			if ms < tt.minMS || ms > tt.maxMS {
				t.Errorf("%d ms of audio, want %d-%d", ms, tt.minMS, tt.maxMS)
			}
			if r := rms(pcm); r < 500 {
				t.Errorf("rms %.0f: nearly silent", r)
			}
		})
	}
	if _, err := v.Speak(context.Background(), "   "); !errors.Is(err, tts.ErrEmptyText) {
		t.Errorf("blank text: %v", err)
	}
}

func TestEspeakSpeechIsRecognisable(t *testing.T) {
	pcm, err := tts.NewEspeak().Speak(context.Background(), "one two three four five")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stt.New("pocketsphinx", stt.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var text string
	st, err := eng.NewStream(context.Background(), 0, func(r stt.Result) { text += " " + r.Text })
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Write(make([]int16, 8000))
	st.Write(pcm)
	st.Write(make([]int16, 8000))
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	heard := map[string]bool{}
	for _, w := range stt.NormalizeWords(text) {
		heard[w] = true
	}
	hits := 0
	for _, w := range []string{"one", "two", "three", "four", "five"} {
		if heard[w] {
			hits++
		}
	}
	t.Logf("pocketsphinx heard %q", text)
	// pocketsphinx's US English model is trained on human voices; most of
	// espeak's words must still come through.
	if hits < 3 {
		t.Errorf("pocketsphinx heard %q in espeak's \"one two three four five\"", text)
	}
}

func TestOpenAIVoiceResamplesTheServicesPCM(t *testing.T) {
	fake := openaifake.New(openaifake.Options{Fail: func(n int) (int, string) {
		if n == 0 {
			return http.StatusServiceUnavailable, "0"
		}
		return 0, ""
	}})
	defer fake.Close()
	v := tts.NewOpenAI(tts.OpenAIConfig{APIKey: "test-key", BaseURL: fake.URL + "/v1", Voice: "verse"})
	pcm, err := v.Speak(context.Background(), "hello")
	if err != nil {
		t.Fatal(err)
	}
	// The fake speaks 60 ms of a 300 Hz tone per character at 24 kHz.
	if want := 5 * 60 * tts.SampleRate / 1000; len(pcm) < want-2 || len(pcm) > want+2 {
		t.Errorf("%d samples, want %d", len(pcm), want)
	}
	if got := openaifake.DescribeTone(pcm, tts.SampleRate); got != "tone 300" {
		t.Errorf("pitch after resampling: %q", got)
	}
	reqs := fake.Speeches()
	if len(reqs) != 1 || reqs[0].Voice != "verse" || reqs[0].ResponseFormat != "pcm" || reqs[0].Model != "gpt-4o-mini-tts" || reqs[0].Input != "hello" {
		t.Errorf("requests %+v", reqs)
	}
}

func TestOpenAIVoiceGivesUpOnAClientError(t *testing.T) {
	fake := openaifake.New(openaifake.Options{})
	defer fake.Close()
	v := tts.NewOpenAI(tts.OpenAIConfig{APIKey: "wrong", BaseURL: fake.URL})
	if _, err := v.Speak(context.Background(), "hello"); err == nil {
		t.Fatal("wrong key accepted")
	}
	if n := len(fake.Speeches()); n != 0 {
		t.Errorf("%d speeches", n)
	}
}
