package tts_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"candor/processor/stt"
	"candor/processor/tts"
)

func needFlite(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("flite"); err != nil {
		t.Skip("flite is not installed (scripts/deps.sh installs it)")
	}
}

func TestFliteVoicesSpeakSixteenKilohertzAudio(t *testing.T) {
	needFlite(t)
	for _, voice := range tts.FliteVoices {
		t.Run(voice, func(t *testing.T) {
			v := tts.NewFlite(voice)
			for _, text := range []string{"Hello, and welcome to your interview.", "-voice is not an option here"} {
				pcm, err := v.Speak(context.Background(), text)
				if err != nil {
					t.Fatal(err)
				}
				if ms := len(pcm) * 1000 / tts.SampleRate; ms < 800 || ms > 5000 {
					t.Errorf("%q: %d ms of audio, want 0.8-5 s", text, ms)
				}
				if r := rms(pcm); r < 300 {
					t.Errorf("%q: rms %.0f, nearly silent", text, r)
				}
			}
			if _, err := v.Speak(context.Background(), " \n "); !errors.Is(err, tts.ErrEmptyText) {
				t.Errorf("blank text: %v", err)
			}
		})
	}
	if _, err := (&tts.Flite{Voice: "no-such-voice"}).Speak(context.Background(), "hello"); err == nil {
		t.Error("an unknown voice did not fail")
	}
}

// intelligibilityPlan is what an interviewer says in a typical interview:
// greeting, questions, follow-up and closing.
var intelligibilityPlan = []string{
	"Hello, I am Candor, and I will be your interviewer for the backend engineer role today. Thank you for joining.",
	"Could you introduce yourself and tell me about your background?",
	"Tell me about a project you are proud of and the part you played in it.",
	"How do you decide when a piece of code needs tests?",
	"Describe a time you disagreed with a colleague and how you resolved it.",
	"What are you looking for in your next role?",
	"Could you tell me a little more about that?",
	"Those are all my questions. Thank you for your time, we will be in touch soon.",
}

// recognise runs pocketsphinx over pcm (with a little silence around it)
// and returns what it heard.
func recognise(t *testing.T, eng stt.Engine, pcm []int16) string {
	t.Helper()
	var heard []string
	st, err := eng.NewStream(context.Background(), 0, func(r stt.Result) { heard = append(heard, r.Text) })
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Write(make([]int16, 8000))
	st.Write(pcm)
	st.Write(make([]int16, 16000))
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return strings.Join(heard, " ")
}

// TestVoiceIntelligibility measures each offline voice the way a candidate
// would suffer it: pocketsphinx (trained on human speech) transcribes each
// voice's rendering of a question plan, and the word error rate is a proxy
// for how easy the voice is to understand. The default flite voice must do
// at least as well as espeak-ng. Run with -v for the figures.
func TestVoiceIntelligibility(t *testing.T) {
	needFlite(t)
	if os.Getenv("CANDOR_EVAL_VOICES") == "" {
		// Minutes of pocketsphinx on a loaded machine: run on demand.
		t.Skip("set CANDOR_EVAL_VOICES=1 to measure the voices (minutes of pocketsphinx)")
	}
	eng, err := stt.New("pocketsphinx", stt.Config{})
	if err != nil {
		t.Fatal(err)
	}
	voices := []struct {
		name  string
		voice tts.Voice
	}{{"espeak-ng en-us", tts.NewEspeak()}}
	for _, v := range tts.FliteVoices {
		voices = append(voices, struct {
			name  string
			voice tts.Voice
		}{"flite " + v, tts.NewFlite(v)})
	}
	wer := map[string]float64{}
	for _, v := range voices {
		// One stream per voice, lines apart by a second of silence:
		// pocketsphinx starts once per voice, not once per line.
		var pcm []int16
		for _, line := range intelligibilityPlan {
			s, err := v.voice.Speak(context.Background(), line)
			if err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
			pcm = append(append(pcm, s...), make([]int16, tts.SampleRate)...)
		}
		errs, words := stt.WordErrors(strings.Join(intelligibilityPlan, " "), recognise(t, eng, pcm))
		wer[v.name] = float64(errs) / float64(words)
		t.Logf("%-16s WER %5.1f%% (%d errors in %d words)", v.name, 100*wer[v.name], errs, words)
	}
	def := "flite " + tts.FliteVoices[0]
	if wer[def] > wer["espeak-ng en-us"] {
		t.Errorf("the default voice %s (WER %.1f%%) is less intelligible than espeak-ng (%.1f%%)", def, 100*wer[def], 100*wer["espeak-ng en-us"])
	}
}
