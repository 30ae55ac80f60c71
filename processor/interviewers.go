package processor

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"candor/processor/contract"
)

// InterviewerSpec is an interviewer as it registers itself (see
// registerInterviewer): what the processor's and the control plane's
// configuration need to know about it, and how a session builds it.
type InterviewerSpec struct {
	Name string
	// OpenAI says the interviewer talks to an OpenAI-compatible API, so it
	// runs only where contract.CheckOpenAIKey passes.
	OpenAI bool
	// Settings are the environment settings it reads.
	Settings []string
	// STT is the speech engine it gets when CANDOR_STT is unset ("" is the
	// speech package's default).
	STT string
	// New builds it for a session. transcribes says it transcribes the
	// candidate itself, so the session runs no speech stream.
	New func(interviewerParams) (iv Interviewer, transcribes bool)
}

// interviewerParams is what a session gives an interviewer.
type interviewerParams struct {
	cfg    Config
	plan   contract.Plan
	resume Resume
	log    *slog.Logger
}

// DefaultInterviewer is the interviewer of a processor that names none.
const DefaultInterviewer = "scripted"

var interviewers = map[string]InterviewerSpec{}

func registerInterviewer(spec InterviewerSpec) {
	if _, dup := interviewers[spec.Name]; dup || spec.Name == "" || spec.New == nil {
		panic(fmt.Sprintf("processor: bad or duplicate registration of interviewer %q", spec.Name))
	}
	interviewers[spec.Name] = spec
}

// LookupInterviewer returns the interviewer registered as name ("" is
// DefaultInterviewer).
func LookupInterviewer(name string) (InterviewerSpec, bool) {
	if name == "" {
		name = DefaultInterviewer
	}
	spec, ok := interviewers[name]
	return spec, ok
}

// InterviewerNames lists the registered interviewers, the default first.
func InterviewerNames() []string {
	var names []string
	for name := range interviewers {
		names = append(names, name)
	}
	slices.Sort(names)
	if i := slices.Index(names, DefaultInterviewer); i > 0 {
		names = slices.Insert(slices.Delete(names, i, i+1), 0, DefaultInterviewer)
	}
	return names
}

func init() {
	registerInterviewer(InterviewerSpec{
		Name: "scripted",
		New: func(p interviewerParams) (Interviewer, bool) {
			return &Scripted{Plan: p.plan, Pause: p.cfg.Timing.AnswerPause, BriefWords: 6, Resume: p.resume}, false
		},
	})
	registerInterviewer(InterviewerSpec{
		Name: "openai-realtime", OpenAI: true, STT: realtimeSTT,
		Settings: []string{contract.EnvOpenAIKey, contract.EnvOpenAIBaseURL, contract.EnvRealtimeModel,
			contract.EnvRealtimeVoice, contract.EnvRealtimeSessionMax},
		// With CANDOR_STT=openai-realtime too, its own session transcribes
		// the candidate (the same audio would otherwise be transcribed
		// twice, as two entries); with another engine it runs beside it
		// with its own input transcription off.
		New: func(p interviewerParams) (Interviewer, bool) {
			rt := &Realtime{
				Plan:   p.plan,
				Resume: p.resume,
				Config: RealtimeConfig{
					APIKey:              p.cfg.OpenAIKey,
					BaseURL:             p.cfg.OpenAIBaseURL,
					PublicTargetsOnly:   p.cfg.PublicTargetsOnly,
					Model:               p.cfg.RealtimeModel,
					Voice:               p.cfg.RealtimeVoice,
					SessionMax:          p.cfg.RealtimeSessionMax,
					TranscribeCandidate: p.cfg.STT == realtimeSTT,
				},
				Log: p.log,
			}
			return rt, rt.Config.TranscribeCandidate
		},
	})
}

// realtimeSTT is the speech engine that the realtime interviewer's own
// session stands in for.
const realtimeSTT = "openai-realtime"

func interviewerList() string { return strings.Join(InterviewerNames(), ", ") }
