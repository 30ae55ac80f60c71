package contract

// Names of the environment a processor is started with (DESIGN §4). The
// machine backends set them, the control plane fills in its part, and the
// processor's config reads them.
const (
	// The interview's identity (the seed's names).
	EnvSessionID   = "SESSION_ID"
	EnvTenantID    = "TENANT_ID"
	EnvCandidateID = "CANDIDATE_ID"
	EnvPositionID  = "POSITION_ID"

	EnvControlURL     = "CANDOR_CONTROL_URL"     // the control plane's --public-url
	EnvProcessorToken = "CANDOR_PROCESSOR_TOKEN" // this machine's bridge credential (new on every launch)
	EnvPoolToken      = "CANDOR_POOL_TOKEN"      // credential of POST /claim on an idle warm processor
	EnvPlanFile       = "CANDOR_PLAN_FILE"       // path of the interview plan (JSON Plan)
	EnvMachineID      = "CANDOR_MACHINE_ID"      // a local child's machine id, to tell it from a reused pid
	EnvRole           = "CANDOR_ROLE"
	EnvAddr           = "CANDOR_ADDR"
	EnvPort           = "PORT"
	EnvData           = "CANDOR_DATA"
	EnvLogLevel       = "CANDOR_LOG_LEVEL"
	EnvLogFormat      = "CANDOR_LOG_FORMAT"

	// EnvClientToken is the interview's client token: what API clients
	// present (the start answer's processor.token) and the key of the
	// candidate token. Every processor of the interview gets the same one,
	// so a client that retries across a hand-over keeps being accepted.
	EnvClientToken = "CANDOR_CLIENT_TOKEN"

	// Speech and the interviewer.
	EnvSTT                = "CANDOR_STT"
	EnvInterviewer        = "CANDOR_INTERVIEWER"
	EnvTTS                = "CANDOR_TTS"
	EnvOpenAIKey          = "OPENAI_API_KEY"
	EnvOpenAIBaseURL      = "OPENAI_BASE_URL"
	EnvRealtimeModel      = "CANDOR_REALTIME_MODEL"
	EnvRealtimeVoice      = "CANDOR_REALTIME_VOICE"
	EnvRealtimeSessionMax = "CANDOR_REALTIME_SESSION_MAX"

	// The recording: a WAV part is closed and uploaded every
	// CANDOR_RECORDING_SEGMENT of audio (a Go duration, default 60s) or
	// CANDOR_RECORDING_SEGMENT_MB megabytes, whichever comes first.
	EnvRecordingSegment   = "CANDOR_RECORDING_SEGMENT"
	EnvRecordingSegmentMB = "CANDOR_RECORDING_SEGMENT_MB"

	// WebRTC ingest.
	EnvICEServers    = "CANDOR_ICE_SERVERS"
	EnvWebRTCUDPPort = "CANDOR_WEBRTC_UDP_PORT"
	EnvWebRTCTCPPort = "CANDOR_WEBRTC_TCP_PORT"
	EnvPublicIPs     = "CANDOR_PUBLIC_IPS"
	// EnvWebRTCBindHost is where the UDP media port is bound: on Fly
	// "fly-global-services", the one address Fly delivers UDP to (TCP
	// binds every address, as Fly requires).
	EnvWebRTCBindHost = "CANDOR_WEBRTC_BIND_HOST"
	// EnvTURNSecret (control plane only) is the TURN REST shared secret:
	// TURN servers in EnvICEServers without credentials get time-limited
	// ones per interview (TURNCredentials).
	EnvTURNSecret = "CANDOR_TURN_SECRET"
)
