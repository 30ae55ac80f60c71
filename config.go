package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"candor/fly"
	"candor/processor"
	"candor/processor/contract"
	"candor/processor/stt"
	"candor/store/replica"
	"candor/web/mail"
)

// serveConfig is what `candor [serve]` runs with: every field comes from a
// flag, else its environment twin, else a default.
type serveConfig struct {
	Role          string
	Addr          string
	Data          string
	PublicURL     string
	Provisioner   string
	STT           string
	Interviewer   string
	WarmPool      int
	LogLevel      slog.Level
	LogFormat     string
	DefaultRegion string
	PricePerHour  float64
	SecureCookies bool
	// HeartbeatTimeout is how long a running interview's processor may stay
	// silent before supervision investigates it.
	HeartbeatTimeout time.Duration
	// ReplaceAfter is how long a silent processor may stay unreachable
	// from the control plane before it is replaced.
	ReplaceAfter time.Duration
	// DrainTimeout is how long a processor replaced while it may still be
	// alive may deliver what it heard before the hand-over.
	DrainTimeout time.Duration
	// ReconcileInterval is how often machines are reconciled with the
	// store after the pass at start-up.
	ReconcileInterval time.Duration

	// RecordingSegment and RecordingSegmentMB bound the parts processors
	// upload their recordings in (passed to them as they are).
	RecordingSegment, RecordingSegmentMB string
	// EndAfterSilence reaches processors as contract.EnvEndAfterSilence.
	EndAfterSilence string
	// ReplicateTo is the Litestream replica URL ("" = no replication);
	// ReplicateWorkDir holds Litestream's working files.
	ReplicateTo      string
	ReplicateWorkDir string
	// AllowPrivateTargets lets tenant URLs be http and private.
	AllowPrivateTargets bool
	// MetricsAddr is a separate listen address for /metrics.
	MetricsAddr string
	// TrustedProxies are peers whose client-address headers are believed.
	TrustedProxies []netip.Prefix
	// SMTPURL and MailFrom turn email on (invitations, reminders, member
	// invitations, password resets); ReminderBefore is how long before an
	// interview's window closes an unjoined candidate is reminded.
	SMTPURL        string
	MailFrom       string
	ReminderBefore time.Duration

	FlyAppPrefix string
	FlyProxyURL  string
	FlyCPUs      int
	FlyMemoryMB  int
	// Regions is CANDOR_REGIONS: where interview machines may run, in
	// fallback order (a capacity error moves to the next).
	Regions []string
	// FlyMediaPorts is CANDOR_FLY_MEDIA_PORTS ("lo-hi"): direct WebRTC over
	// UDP to Fly machines, one port of the range per machine; zero: off.
	FlyMediaPorts [2]int
	FlyMediaTCP   bool

	// Evaluator is none or openai; EvalModel and EvalBaseURL configure
	// the openai one (scorecards).
	Evaluator, EvalModel, EvalBaseURL string
	// WebhookRetryScale multiplies the webhook retry schedule.
	WebhookRetryScale float64

	// explicit holds the settings given on the command line (or in the
	// environment), as opposed to defaults; the processor role forwards them.
	explicit map[string]string
}

// setting is one flag with its environment twin.
type setting struct {
	flag, env, def, help string
	check                func(v string) error
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		for _, ok := range values {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("use %s", strings.Join(values, " or "))
	}
}

func wholeNumber(v string) error {
	if n, err := strconv.Atoi(v); err != nil || n < 0 {
		return errors.New("use a whole number ≥ 0")
	}
	return nil
}

func positiveNumber(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 {
		return errors.New("use a number ≥ 0")
	}
	return nil
}

func nonNegativeDuration(v string) error {
	if d, err := time.ParseDuration(v); err != nil || d < 0 {
		return errors.New("use a duration such as 2m, or 0 for never")
	}
	return nil
}

func positiveDuration(v string) error {
	if d, err := time.ParseDuration(v); err != nil || d <= 0 {
		return errors.New("use a duration such as 3s")
	}
	return nil
}

func replicaURL(v string) error {
	if v == "" {
		return nil
	}
	return replica.CheckURL(v)
}

func minDuration100ms(v string) error {
	if d, err := time.ParseDuration(v); err != nil || d < 100*time.Millisecond {
		return errors.New("use a duration of at least 100ms, such as 60s")
	}
	return nil
}

func megabytes(v string) error {
	if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 4000 {
		return errors.New("use a number of megabytes from 1 to 4000")
	}
	return nil
}

func hostPort(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return errors.New("use host:port, e.g. 127.0.0.1:8080")
	}
	return nil
}

func optionalHostPort(v string) error {
	if v == "" {
		return nil
	}
	return hostPort(v)
}

// redactValue is v as an error may quote it: a URL's password (an SMTP or
// replica URL may carry one) is never printed.
func redactValue(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	return v
}

// parsePrefixes reads a comma-separated list of addresses and CIDRs.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func prefixList(v string) error {
	_, err := parsePrefixes(v)
	if err != nil {
		return fmt.Errorf("%v: use addresses or CIDRs separated by commas, e.g. 10.0.0.0/8,192.0.2.1", err)
	}
	return nil
}

func absoluteURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("use an absolute http(s) URL such as https://candor.example.com")
	}
	return nil
}

var serveSettings = []setting{
	{"role", "CANDOR_ROLE", "control", "what this process serves: control or processor", oneOf("control", "processor")},
	{"addr", "CANDOR_ADDR", "127.0.0.1:8080", "listen address", hostPort},
	{"data", "CANDOR_DATA", "./data", "data directory (SQLite database, keys, recordings)", nil},
	{"public-url", "CANDOR_PUBLIC_URL", "", "the one URL by which browsers and processors reach the control plane (default: derived from --addr)", absoluteURL},
	{"provisioner", "CANDOR_PROVISIONER", fly.DefaultProvider, "where interview processors run: " + fly.ProviderHelp(), oneOf(fly.ProviderNames()...)},
	{"stt", "CANDOR_STT", stt.DefaultEngine, "speech-to-text engine", oneOf(stt.EngineNames()...)},
	{"interviewer", "CANDOR_INTERVIEWER", processor.DefaultInterviewer, "AI interviewer", oneOf(processor.InterviewerNames()...)},
	{"warm-pool", "CANDOR_WARM_POOL", "1", "idle processors kept ready for the next interview", wholeNumber},
	{"log-level", "CANDOR_LOG_LEVEL", "info", "debug, info, warn or error", oneOf("debug", "info", "warn", "error")},
	{"log-format", "CANDOR_LOG_FORMAT", "text", "text or json", oneOf("text", "json")},
	{"default-region", "CANDOR_DEFAULT_REGION", "", "region for interviews that name none (fly: e.g. iad)", nil},
	{"price-per-machine-hour", "CANDOR_PRICE_PER_MACHINE_HOUR", "0.0079", "USD per machine-hour for cost estimates (Fly shared-cpu-1x 1 GB)", positiveNumber},
	{"secure-cookies", "CANDOR_SECURE_COOKIES", "", "mark cookies Secure (default: when --public-url is https)", oneOf("", "true", "false")},
	{"heartbeat-timeout", "CANDOR_HEARTBEAT_TIMEOUT", "3s", "investigate a processor that sends no heartbeat for this long (it beats every second): machine state and a direct health probe", positiveDuration},
	{"replace-after", "CANDOR_REPLACE_AFTER", "15s", "replace a silent processor that the control plane cannot reach either for this long (one that answers is kept)", positiveDuration},
	{"drain-timeout", "CANDOR_DRAIN_TIMEOUT", "10m", "how long a processor replaced while unreachable may still deliver what it heard before the hand-over, once it is reachable again", positiveDuration},
	{"reconcile-interval", "CANDOR_RECONCILE_INTERVAL", "1m", "how often interview machines are reconciled with the database (orphans destroyed, lost ones replaced)", positiveDuration},
	{"recording-segment", "CANDOR_RECORDING_SEGMENT", "60s", "a processor uploads the recording in parts of this much audio as it goes, so a crash loses at most one part", minDuration100ms},
	{"end-after-silence", "CANDOR_END_AFTER_SILENCE", "2m", "end an interview this long after the interviewer's closing line once the candidate has stopped talking (0 = never; speech keeps it open)", nonNegativeDuration},
	{"recording-segment-mb", "CANDOR_RECORDING_SEGMENT_MB", "16", "upper bound of one recording part in MB (a WAV part grows ~1.9 MB a minute)", megabytes},
	{"replicate-to", "CANDOR_REPLICATE_TO", "", "stream the database to a Litestream replica: file:///dir or s3://bucket/path (S3 credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, endpoint from AWS_ENDPOINT_URL_S3 or ?endpoint=); off when empty", replicaURL},
	{"replicate-work-dir", "CANDOR_REPLICATE_WORK_DIR", "", "Litestream's working files, outside the data dir (default: a directory under $TMPDIR named after the database)", nil},
	{"metrics-addr", "CANDOR_METRICS_ADDR", "", "serve /metrics (no auth) on this separate address, e.g. 127.0.0.1:9090; on the public address /metrics needs CANDOR_METRICS_TOKEN as a bearer token", optionalHostPort},
	{"trusted-proxies", "CANDOR_TRUSTED_PROXIES", "", "comma-separated addresses or CIDRs of reverse proxies whose Fly-Client-IP / X-Forwarded-For names the client (on Fly, FLY_APP_NAME set, Fly-Client-IP is used anyway)", prefixList},
	{"allow-private-targets", "CANDOR_ALLOW_PRIVATE_TARGETS", "false", "let tenant URLs (OPENAI_BASE_URL) be http and reach loopback/private addresses: for self-hosted model servers and tests", oneOf("true", "false")},
	{"smtp-url", "CANDOR_SMTP_URL", "", "turns email on: smtp://user:pass@host:port (STARTTLS when offered, default port 587) or smtps://user:pass@host:port (TLS, default 465)", nil},
	{"mail-from", "CANDOR_MAIL_FROM", "", "sender of Candor's email, e.g. \"Acme Hiring <hiring@acme.example>\" (needed with --smtp-url)", nil},
	{"reminder-before", "CANDOR_REMINDER_BEFORE", "24h", "remind a candidate who has not joined this long before their interview's window closes", positiveDuration},
	{"fly-app-prefix", "CANDOR_FLY_APP_PREFIX", "candor", "Fly app name prefix; each tenant gets <prefix>-<tenant slug>", nil},
	{"fly-proxy-url", "CANDOR_FLY_PROXY_URL", "", "how the control plane reaches interview machines, {app} being the tenant app (default https://{app}.fly.dev; http://{app}.flycast inside Fly's private network)", nil},
	{"fly-cpus", "CANDOR_FLY_CPUS", "1", "CPUs per interview machine", wholeNumber},
	{"fly-memory-mb", "CANDOR_FLY_MEMORY_MB", "1024", "memory per interview machine in MB", wholeNumber},
	{"evaluator", "CANDOR_EVALUATOR", "none", "scores completed interviews against the rubric: none (stats only) or openai (any Chat Completions server with JSON-schema output)", oneOf("none", "openai")},
	{"eval-model", "CANDOR_EVAL_MODEL", "gpt-4o-mini", "the evaluator's chat model", nil},
	{"eval-base-url", "CANDOR_EVAL_BASE_URL", "", "the evaluator's OpenAI-compatible server (default OPENAI_BASE_URL, else https://api.openai.com)", absoluteURL},
	{"webhook-retry-scale", "CANDOR_WEBHOOK_RETRY_SCALE", "1", "multiplies the webhook retry schedule (0.001 makes hours seconds, for tests)", positiveNumber},
	{"regions", "CANDOR_REGIONS", "", "comma-separated regions interview machines may run in, in fallback order (fly: e.g. iad,ord,fra); default: the default region", regionList},
	{"fly-media-ports", "CANDOR_FLY_MEDIA_PORTS", "", "direct WebRTC over UDP to Fly machines: a port range like 40000-40999, one port per live machine of a tenant (needs a dedicated IPv4 per tenant app, billed monthly); empty: TURN or WebSocket only", portRange},
	{"fly-media-tcp", "CANDOR_FLY_MEDIA_TCP", "false", "also offer ICE over TCP on each Fly machine's media port", oneOf("true", "false")},
}

var regionCodeRE = regexp.MustCompile(`^[a-z]{3}$`)

func regionList(v string) error {
	for _, r := range strings.Split(v, ",") {
		if r = strings.TrimSpace(r); r != "" && !regionCodeRE.MatchString(r) {
			return fmt.Errorf("%q is not a region code: list codes like iad,ord,fra", r)
		}
	}
	return nil
}

// parsePortRange reads "lo-hi" (or one port).
func parsePortRange(v string) ([2]int, error) {
	if v == "" {
		return [2]int{}, nil
	}
	a, b, found := strings.Cut(v, "-")
	if !found {
		b = a
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return [2]int{}, errors.New("use a port range like 40000-40999")
	}
	return [2]int{lo, hi}, nil
}

func portRange(v string) error { _, err := parsePortRange(v); return err }

// parseServeConfig reads flags and their environment twins. A bad value
// stops start-up with one line naming the setting and the fix.
func parseServeConfig(args []string, env map[string]string, stderr io.Writer) (serveConfig, error) {
	fs := flag.NewFlagSet("candor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := make(map[string]*string, len(serveSettings))
	for _, s := range serveSettings {
		vals[s.flag] = fs.String(s.flag, s.def, s.help+" (env "+s.env+")")
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: candor [serve] [flags]\n       candor admin bootstrap --tenant NAME --email E --password P [--data DIR]\n       candor eval-stt --corpus DIR [--engine NAME] [--transport wav|webm|ogg|whip]\n       candor backup --data DIR --to FILE\n       candor restore --from FILE | --from-replica URL --data DIR [--force]\n       candor bench realtime|machines|backup\n       candor version\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return serveConfig{}, err
	}
	if fs.NArg() > 0 {
		return serveConfig{}, fmt.Errorf("unexpected argument %q: see candor -h", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	cfg := serveConfig{explicit: map[string]string{}}
	get := map[string]string{}
	for _, s := range serveSettings {
		v, source := *vals[s.flag], "--"+s.flag
		if !given[s.flag] {
			if ev, ok := env[s.env]; ok && ev != "" {
				v, source = ev, s.env
			}
		}
		if given[s.flag] || source == s.env {
			cfg.explicit[s.env] = v
		}
		if s.check != nil {
			if err := s.check(v); err != nil {
				return serveConfig{}, fmt.Errorf("%s=%q is not valid: %v (flag --%s or env %s)", source, redactValue(v), err, s.flag, s.env)
			}
		}
		get[s.flag] = v
	}
	cfg.Role = get["role"]
	cfg.Addr = get["addr"]
	cfg.Data = get["data"]
	cfg.PublicURL = strings.TrimRight(get["public-url"], "/")
	cfg.Provisioner = get["provisioner"]
	cfg.STT = get["stt"]
	cfg.Interviewer = get["interviewer"]
	cfg.WarmPool, _ = strconv.Atoi(get["warm-pool"])
	_ = cfg.LogLevel.UnmarshalText([]byte(get["log-level"]))
	cfg.LogFormat = get["log-format"]
	cfg.DefaultRegion = get["default-region"]
	cfg.PricePerHour, _ = strconv.ParseFloat(get["price-per-machine-hour"], 64)
	cfg.HeartbeatTimeout, _ = time.ParseDuration(get["heartbeat-timeout"])
	cfg.ReconcileInterval, _ = time.ParseDuration(get["reconcile-interval"])
	cfg.RecordingSegment = get["recording-segment"]
	cfg.EndAfterSilence = get["end-after-silence"]
	cfg.RecordingSegmentMB = get["recording-segment-mb"]
	cfg.ReplicateTo = get["replicate-to"]
	cfg.ReplicateWorkDir = get["replicate-work-dir"]
	cfg.AllowPrivateTargets = get["allow-private-targets"] == "true"
	cfg.TrustedProxies, _ = parsePrefixes(get["trusted-proxies"])
	cfg.SMTPURL = get["smtp-url"]
	cfg.MailFrom = get["mail-from"]
	cfg.ReminderBefore, _ = time.ParseDuration(get["reminder-before"])
	cfg.MetricsAddr = get["metrics-addr"]
	cfg.ReplaceAfter, _ = time.ParseDuration(get["replace-after"])
	cfg.DrainTimeout, _ = time.ParseDuration(get["drain-timeout"])
	cfg.FlyAppPrefix = get["fly-app-prefix"]
	cfg.FlyProxyURL = strings.TrimRight(get["fly-proxy-url"], "/")
	cfg.FlyCPUs, _ = strconv.Atoi(get["fly-cpus"])
	cfg.FlyMemoryMB, _ = strconv.Atoi(get["fly-memory-mb"])
	cfg.Evaluator = get["evaluator"]
	cfg.EvalModel = get["eval-model"]
	cfg.EvalBaseURL = get["eval-base-url"]
	if cfg.EvalBaseURL == "" {
		cfg.EvalBaseURL = env["OPENAI_BASE_URL"]
	}
	if cfg.EvalBaseURL == "" {
		cfg.EvalBaseURL = "https://api.openai.com"
	}
	cfg.WebhookRetryScale, _ = strconv.ParseFloat(get["webhook-retry-scale"], 64)
	for _, r := range strings.Split(get["regions"], ",") {
		if r = strings.TrimSpace(r); r != "" && !slices.Contains(cfg.Regions, r) {
			cfg.Regions = append(cfg.Regions, r)
		}
	}
	if cfg.DefaultRegion != "" && len(cfg.Regions) > 0 && !slices.Contains(cfg.Regions, cfg.DefaultRegion) {
		return serveConfig{}, fmt.Errorf("--default-region=%q is not in --regions=%q: add it to CANDOR_REGIONS or pick one of them", cfg.DefaultRegion, get["regions"])
	}
	cfg.FlyMediaPorts, _ = parsePortRange(get["fly-media-ports"])
	cfg.FlyMediaTCP = get["fly-media-tcp"] == "true"
	if cfg.PublicURL == "" {
		cfg.PublicURL = derivePublicURL(cfg.Addr)
	}
	switch get["secure-cookies"] {
	case "true":
		cfg.SecureCookies = true
	case "":
		cfg.SecureCookies = strings.HasPrefix(cfg.PublicURL, "https://")
	}
	if cfg.Role == "control" && cfg.SMTPURL != "" {
		// The URL holds the SMTP password: the error names the setting,
		// never the value.
		if _, err := mail.New(cfg.SMTPURL, cfg.MailFrom); err != nil {
			return serveConfig{}, fmt.Errorf("email settings are not valid: %v (flags --smtp-url and --mail-from, or env CANDOR_SMTP_URL and CANDOR_MAIL_FROM)", err)
		}
	}
	if cfg.Role == "control" {
		if err := checkControlEnv(cfg, env); err != nil {
			return serveConfig{}, err
		}
	}
	return cfg, nil
}

// checkControlEnv validates the settings that only live in the environment
// (they are secrets, so they have no flags).
func checkControlEnv(cfg serveConfig, env map[string]string) error {
	provider, _ := fly.LookupProvider(cfg.Provisioner)
	for _, name := range provider.Settings {
		if env[name] == "" {
			return fmt.Errorf("%s is not set: the %s provisioner needs it (set it in the environment, or use --provisioner=%s)", name, provider.Name, fly.DefaultProvider)
		}
	}
	if !provider.Direct {
		if strings.HasPrefix(cfg.PublicURL, "http://127.") || strings.HasPrefix(cfg.PublicURL, "http://localhost") {
			return fmt.Errorf("--public-url=%q cannot be reached from Fly machines: set --public-url (env CANDOR_PUBLIC_URL) to the control plane's public address", cfg.PublicURL)
		}
	}
	if _, err := contract.ParseICEServers(env[contract.EnvICEServers], env[contract.EnvTURNSecret], "check", time.Now()); err != nil {
		return fmt.Errorf("%s: %v", contract.EnvICEServers, err)
	}
	engine, _ := stt.Lookup(cfg.STT)
	interviewer, _ := processor.LookupInterviewer(cfg.Interviewer)
	needsOpenAI := engine.OpenAI || interviewer.OpenAI || cfg.Evaluator == "openai"
	if needsOpenAI && contract.CheckOpenAIKey(env[contract.EnvOpenAIKey], env[contract.EnvOpenAIBaseURL]) != nil {
		return fmt.Errorf("OPENAI_API_KEY is not set: --stt=%s/--interviewer=%s/--evaluator=%s need it (set it, or OPENAI_BASE_URL for a local OpenAI-compatible server, in the environment; or use --stt=%s --interviewer=%s --evaluator=none)",
			cfg.STT, cfg.Interviewer, cfg.Evaluator, stt.DefaultEngine, processor.DefaultInterviewer)
	}
	return nil
}

// derivePublicURL turns a listen address into the URL a browser on this
// machine would use: a wildcard host becomes 127.0.0.1.
func derivePublicURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
