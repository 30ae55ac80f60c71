package processor

import (
	"log/slog"
	"strings"

	"candor/processor/contract"
	"candor/processor/internal/registry"
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

var interviewers = registry.New[InterviewerSpec]("interviewer", DefaultInterviewer)

func registerInterviewer(spec InterviewerSpec) {
	if spec.New == nil {
		panic("processor: interviewer " + spec.Name + " registered without New")
	}
	interviewers.Register(spec.Name, spec)
}

// LookupInterviewer returns the interviewer registered as name ("" is
// DefaultInterviewer).
func LookupInterviewer(name string) (InterviewerSpec, bool) { return interviewers.Lookup(name) }

// InterviewerNames lists the registered interviewers, the default first.
func InterviewerNames() []string { return interviewers.Names() }

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
