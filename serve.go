package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"candor/fly"
	"candor/processor"
	"candor/processor/contract"
	"candor/realtime"
	"candor/store"
	"candor/store/replica"
	"candor/web"
	"candor/web/lifecycle"
	"candor/web/mail"
	"candor/web/scorecard"
)

// serveControl runs the control plane until ctx is cancelled: HTTP is shut
// down first, then the machines and the hub, then the database.
func serveControl(ctx context.Context, cfg serveConfig, env map[string]string, stdout io.Writer, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("--data=%q cannot be created: %w (choose a writable directory with --data or CANDOR_DATA)", cfg.Data, err)
	}
	key, err := store.LoadSecretKey(cfg.Data, env["CANDOR_SECRET_KEY"])
	if err != nil {
		return fmt.Errorf("CANDOR_SECRET_KEY: %w", err)
	}
	dbPath := filepath.Join(cfg.Data, dbFileName)
	db, err := store.Open(ctx, dbPath, store.Options{SecretKey: key, ExternalCheckpoints: cfg.ReplicateTo != ""})
	if err != nil {
		return err
	}
	rep, err := startReplication(ctx, cfg, dbPath, env, log)
	if err != nil {
		db.Close()
		return err
	}
	// The database closes before replication stops, so Litestream's last
	// sync sees every commit and no connection of ours holds the file.
	defer func() {
		db.Close()
		if rep != nil {
			closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := rep.Close(closeCtx); err != nil {
				log.Warn("replication: last sync", "err", err)
			}
		}
	}()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("--addr=%q: %w (pick a free address with --addr or CANDOR_ADDR)", cfg.Addr, err)
	}
	defer ln.Close()

	// One registry for every metric the control plane has, served at /metrics.
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hub := realtime.New(realtime.Options{Registerer: registry}, log)
	defer hub.Close()

	installID, err := db.InstallID(ctx)
	if err != nil {
		return err
	}
	machines, err := newMachines(ctx, cfg, env, installID, log)
	if err != nil {
		return err
	}
	defer machines.Close()

	var mailer *mail.SMTP
	if cfg.SMTPURL != "" {
		if mailer, err = mail.New(cfg.SMTPURL, cfg.MailFrom); err != nil {
			return fmt.Errorf("CANDOR_SMTP_URL: %w", err)
		}
		log.Info("email on", "smtp", mailer.String(), "from", cfg.MailFrom)
	} else {
		log.Info("email off: set CANDOR_SMTP_URL and CANDOR_MAIL_FROM to send invitations and password resets")
	}
	lc, err := lifecycle.New(lifecycle.Config{
		PublicURL:           cfg.PublicURL,
		SecretKey:           key,
		DefaultRegion:       cfg.DefaultRegion,
		ProcessorEnv:        processorEnv(cfg, env),
		HeartbeatTimeout:    cfg.HeartbeatTimeout,
		ReplaceAfter:        cfg.ReplaceAfter,
		DrainTimeout:        cfg.DrainTimeout,
		ReconcileInterval:   cfg.ReconcileInterval,
		AllowPrivateTargets: cfg.AllowPrivateTargets,
		Regions:             cfg.Regions,
		ICEServers:          env[contract.EnvICEServers],
		TURNSecret:          env[contract.EnvTURNSecret],
		Registerer:          registry,
	}, db, hub, machines, log)
	if err != nil {
		return err
	}
	defer lc.Close()

	webCfg := web.Config{
		Addr:                cfg.Addr,
		PublicURL:           cfg.PublicURL,
		DataDir:             cfg.Data,
		Version:             version,
		DefaultRegion:       cfg.DefaultRegion,
		PricePerMachineHour: cfg.PricePerHour,
		SecretKey:           key,
		SecureCookies:       cfg.SecureCookies,
		Registry:            registry,
		AllowPrivateTargets: cfg.AllowPrivateTargets,
		Evaluator:           evaluatorOf(cfg, env),
		WebhookRetryScale:   cfg.WebhookRetryScale,
		OnFly:               env["FLY_APP_NAME"] != "",
		FlyCost:             flyCost(cfg),
		ICEServers:          env[contract.EnvICEServers],
		TURNSecret:          env[contract.EnvTURNSecret],
		TrustedProxies:      cfg.TrustedProxies,
		ReminderBefore:      cfg.ReminderBefore,
		MetricsToken:        env["CANDOR_METRICS_TOKEN"],
	}
	if mailer != nil {
		webCfg.Mailer = mailer // a nil *SMTP in the interface would read as "on"
	}
	srv, err := web.New(webCfg, db, hub, lc, log)
	if err != nil {
		return err
	}
	defer srv.Close()

	// Reminders run beside HTTP and are stopped and waited for before srv
	// closes.
	reminderCtx, stopReminders := context.WithCancel(ctx)
	reminders := make(chan struct{})
	go func() {
		defer close(reminders)
		sendReminders(reminderCtx, srv, time.Minute, log)
	}()
	defer func() { stopReminders(); <-reminders }()

	// The lifecycle's loops (supervision, reconciliation) stop before
	// HTTP's deferred shutdown completes the rest.
	loopsCtx, stopLoops := context.WithCancel(ctx)
	loopsDone := make(chan struct{})
	go func() {
		defer close(loopsDone)
		lc.Run(loopsCtx)
	}()
	defer func() {
		stopLoops()
		<-loopsDone
	}()

	httpSrv := srv.HTTPServer()
	// Requests live until HTTP shuts down, not until the stop signal: the
	// processors drain through the bridge in between (below).
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	httpSrv.BaseContext = func(net.Listener) context.Context { return serveCtx }
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	log.Info("control plane listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "provisioner", cfg.Provisioner, "data", cfg.Data)
	fmt.Fprintf(stdout, "Candor %s is running. Open the dashboard: %s/\n", version, cfg.PublicURL)

	if cfg.MetricsAddr != "" {
		// Metrics on their own address, which the operator keeps private.
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr=%q: %w (pick a free address)", cfg.MetricsAddr, err)
		}
		metricsSrv := &http.Server{Handler: srv.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		go metricsSrv.Serve(mln)
		defer metricsSrv.Close()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	// A graceful stop ends the processors while the bridge still serves:
	// each finalizes what it heard, delivers its spool and uploads its
	// recording before it exits (after HTTP's shutdown that would be
	// refused, and a local processor's spool is removed with its data
	// dir). Supervision stops first, so nothing replaces them meanwhile;
	// their interviews stay running, and the next start's reconciliation
	// moves each to a new processor. (A crash leaves them running; the
	// next start adopts them.)
	stopLoops()
	<-loopsDone
	lc.Stopping()
	if err := machines.Close(); err != nil {
		log.Warn("stop processors", "err", err)
	}
	stopServing()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("http shutdown", "err", err)
	}
	<-served
	log.Info("control plane stopped")
	return nil
}

// startReplication starts Litestream when --replicate-to is set; nil
// otherwise.
func startReplication(ctx context.Context, cfg serveConfig, dbPath string, env map[string]string, log *slog.Logger) (*replica.Replicator, error) {
	if cfg.ReplicateTo == "" {
		return nil, nil
	}
	work := cfg.ReplicateWorkDir
	if work == "" {
		work = replica.WorkDirFor(dbPath)
	}
	absWork, _ := filepath.Abs(work)
	absData, _ := filepath.Abs(cfg.Data)
	if rel, err := filepath.Rel(absData, absWork); err == nil && !strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("--replicate-work-dir=%q is inside the data dir: choose a directory outside %s (flag --replicate-work-dir or env CANDOR_REPLICATE_WORK_DIR)", work, cfg.Data)
	}
	rep, err := replica.Start(ctx, dbPath, replica.Config{URL: cfg.ReplicateTo, WorkDir: work, Env: env, Log: log})
	if err != nil {
		return nil, err
	}
	log.Info("replicating the database", "to", replica.Redact(cfg.ReplicateTo), "work_dir", work)
	return rep, nil
}

// newMachines builds the interview machine backend chosen by --provisioner.
func newMachines(ctx context.Context, cfg serveConfig, env map[string]string, installID string, log *slog.Logger) (fly.Machines, error) {
	switch cfg.Provisioner {
	case fly.ProviderFly:
		return fly.NewFly(fly.FlyConfig{
			InstallID:       installID,
			Regions:         cfg.Regions,
			MediaPorts:      cfg.FlyMediaPorts,
			MediaTCP:        cfg.FlyMediaTCP,
			OperatorSecrets: operatorProviderSettings(env),
			APIBaseURL:      env["FLY_FLAPS_BASE_URL"],
			Token:           env["FLY_API_TOKEN"],
			Org:             env["FLY_ORG"],
			Image:           env["FLY_PROCESSOR_IMAGE"],
			AppPrefix:       cfg.FlyAppPrefix,
			ProxyBaseURL:    cfg.FlyProxyURL,
			DefaultRegion:   cfg.DefaultRegion,
			CPUs:            cfg.FlyCPUs,
			MemoryMB:        cfg.FlyMemoryMB,
			WarmPerRegion:   flyWarmPool(cfg),
		}, log)
	default:
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the candor executable for local processors: %w", err)
		}
		return fly.NewLocal(fly.LocalConfig{
			Executable: exe,
			Args:       []string{"--role=processor"},
			DataDir:    cfg.Data,
			BaseEnv:    processorBaseEnv(cfg, env),
			WarmPool:   cfg.WarmPool,
		}, log)
	}
}

// operatorProviderNames are the operator's provider settings that Fly
// machines get as app secrets (under a tenant's own): without them a machine
// with --stt=openai and no tenant key exits at configuration time. Local
// processors get them through processorBaseEnv.
var operatorProviderNames = []string{contract.EnvOpenAIKey, contract.EnvOpenAIBaseURL}

func operatorProviderSettings(env map[string]string) map[string]string {
	out := map[string]string{}
	for _, name := range operatorProviderNames {
		if v := env[name]; v != "" {
			out[name] = v
		}
	}
	return out
}

// processorBaseEnv is the environment every local processor starts with:
// what it needs to find its tools and engines, nothing of the control plane's
// own secrets.
func processorBaseEnv(cfg serveConfig, env map[string]string) map[string]string {
	base := map[string]string{
		contract.EnvSTT:         cfg.STT,
		contract.EnvInterviewer: cfg.Interviewer,
		// The flag's spelling ("info"), not slog's ("INFO"): the processor
		// parses it as a flag value.
		contract.EnvLogLevel:  strings.ToLower(cfg.LogLevel.String()),
		contract.EnvLogFormat: cfg.LogFormat,
	}
	for _, name := range []string{"PATH", "HOME", "TMPDIR", "LANG", contract.EnvOpenAIKey, contract.EnvOpenAIBaseURL} {
		if v, ok := env[name]; ok {
			base[name] = v
		}
	}
	return base
}

// serveProcessor runs the per-interview worker. Its settings come from the
// environment the machine was started with; flags given explicitly win.
func serveProcessor(ctx context.Context, cfg serveConfig, env map[string]string, log *slog.Logger) error {
	penv := make(map[string]string, len(env)+len(cfg.explicit))
	for k, v := range env {
		penv[k] = v
	}
	for k, v := range cfg.explicit {
		penv[k] = v
	}
	pcfg, err := processor.ConfigFromEnv(penv)
	if err != nil {
		processor.ReportStartError(ctx, penv, err)
		return err
	}
	return processor.Run(ctx, pcfg, log.With("role", "processor"))
}

// flyWarmPool keeps --warm-pool stopped machines per tenant in the default
// region: starting a stopped machine is far faster than creating one.
func flyWarmPool(cfg serveConfig) map[string]int {
	if cfg.WarmPool == 0 || cfg.DefaultRegion == "" {
		return nil
	}
	return map[string]int{cfg.DefaultRegion: cfg.WarmPool}
}

// processorPassThrough names the processor settings an operator sets on the
// control plane for every interview machine (WebRTC behind NAT, the realtime
// interviewer's model).
var processorPassThrough = []string{
	contract.EnvICEServers, contract.EnvWebRTCUDPPort, contract.EnvWebRTCTCPPort, contract.EnvPublicIPs,
	contract.EnvRealtimeModel, contract.EnvRealtimeVoice, contract.EnvRealtimeSessionMax, contract.EnvTTS,
}

// processorEnv is what every interview's processor gets on top of what its
// machine backend sets, whichever backend runs it.
func processorEnv(cfg serveConfig, env map[string]string) map[string]string {
	out := map[string]string{contract.EnvSTT: cfg.STT, contract.EnvInterviewer: cfg.Interviewer,
		contract.EnvRecordingSegment: cfg.RecordingSegment, contract.EnvRecordingSegmentMB: cfg.RecordingSegmentMB,
		contract.EnvEndAfterSilence: cfg.EndAfterSilence}
	for _, name := range processorPassThrough {
		if v := env[name]; v != "" {
			out[name] = v
		}
	}
	return out
}

// evaluatorOf is the scorecard evaluator cfg asks for, nil for none.
func evaluatorOf(cfg serveConfig, env map[string]string) web.Evaluator {
	if cfg.Evaluator != scorecard.EvaluatorOpenAI {
		return nil
	}
	return &scorecard.OpenAI{BaseURL: cfg.EvalBaseURL, APIKey: env["OPENAI_API_KEY"], Model: cfg.EvalModel}
}

// sendReminders emails due interview reminders every interval until ctx
// ends. Each pass is bounded; a failing pass is logged and retried on the
// next tick.
func sendReminders(ctx context.Context, srv *web.Server, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := srv.SendDueReminders(ctx, time.Now()); err != nil {
			log.Warn("interview reminders", "err", err)
		} else if n > 0 {
			log.Info("interview reminders sent", "count", n)
		}
	}
}

// flyCost is the cost model the usage card shows with the fly provisioner.
func flyCost(cfg serveConfig) *fly.CostModel {
	if cfg.Provisioner != fly.ProviderFly {
		return nil
	}
	m := fly.DefaultCostModel(cfg.PricePerHour, cfg.FlyMediaPorts[0] > 0)
	return &m
}
