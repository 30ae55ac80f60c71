package tts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"candor/processor/contract"
	"candor/processor/media"
)

// FliteVoices are the CMU voices Debian's flite package ships that a plan
// may name (contract.PlanVoices), most natural first (judged by
// pocketsphinx's word error rate on each voice's rendering of a question
// plan; the figures are in README's voices section).
var FliteVoices = contract.EngineVoices("flite")

// Flite runs Debian's flite (CMU Flite) once per utterance. Its diphone and
// clustergen voices sound far less robotic than espeak-ng's formant
// synthesis, and it is as small and as offline.
type Flite struct {
	Path  string // default: flite from PATH
	Voice string // -voice: slt, rms, awb (default slt)
}

var _ Voice = (*Flite)(nil)

// NewFlite returns the flite voice named voice ("" for slt).
func NewFlite(voice string) *Flite {
	if voice == "" {
		voice = FliteVoices[0]
	}
	return &Flite{Voice: voice}
}

// Speak synthesises text with flite into a temporary WAV (flite seeks in
// its output, so it cannot write a pipe) and returns it at 16 kHz.
func (f *Flite) Speak(ctx context.Context, text string) ([]int16, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, ErrEmptyText
	}
	if !slices.Contains(FliteVoices, f.Voice) {
		// flite itself falls back to its built-in voice without a word.
		return nil, fmt.Errorf("flite: unknown voice %q (use one of %s)", f.Voice, strings.Join(FliteVoices, ", "))
	}
	path := f.Path
	if path == "" {
		path = "flite"
	}
	dir, err := os.MkdirTemp("", "candor-flite-")
	if err != nil {
		return nil, fmt.Errorf("flite: %w", err)
	}
	defer os.RemoveAll(dir)
	// Text goes in a file (-f), never the command line: it may start
	// with "-", and flite reads an argument with a space as text but one
	// without as a file name.
	in, out := filepath.Join(dir, "text.txt"), filepath.Join(dir, "speech.wav")
	if err := os.WriteFile(in, []byte(text+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("flite: %w", err)
	}
	args := []string{"-voice", f.Voice, "-f", in, "-o", out}
	cmd := exec.CommandContext(ctx, path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("flite -voice %s: %w (%s)", f.Voice, err, strings.TrimSpace(stderr.String()))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("flite output: %w", err)
	}
	pcm, _, _, err := media.DecodeWAV(b) // already 16 kHz mono
	if err != nil {
		return nil, fmt.Errorf("flite output: %w", err)
	}
	return pcm, nil
}

func init() {
	Register(VoiceSpec{
		Name: "flite", Prestart: true,
		New: func(cfg VoiceConfig) (Voice, error) {
			return offlineVoice(cfg.Hint, "flite")
		},
	})
}

// offlineVoice is the offline voice a plan's hint names
// (contract.PlanVoices: "flite-slt", "espeak-en-us", or a bare espeak-ng
// voice), else engine's default. A position's choice of voice wins over the
// processor's offline engine; flite falls back to espeak-ng where it is not
// installed, so an interview always has a voice.
func offlineVoice(hint, engine string) (Voice, error) {
	if e, _ := contract.SplitPlanVoice(hint); e != "" {
		engine = e
	}
	_, name := contract.SplitPlanVoice(hint)
	if engine == "flite" {
		if _, err := exec.LookPath("flite"); err == nil {
			if name != "" && !slices.Contains(FliteVoices, name) {
				return nil, fmt.Errorf("flite: unknown voice %q (use one of %s)", name, strings.Join(FliteVoices, ", "))
			}
			return NewFlite(name), nil
		}
		name = "" // an espeak-ng voice of the same name would be a guess
	}
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		return nil, fmt.Errorf("espeak-ng: %w (install Debian's flite or espeak-ng)", err)
	}
	v := NewEspeak()
	if name != "" {
		v.Voice = name
	}
	return v, nil
}
