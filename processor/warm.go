package processor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"candor/processor/stt"
	"candor/processor/tts"

	"candor/processor/contract"
)

// warm is what an idle (warm-pool) processor prepares before its claim, so
// that the claim only adopts it: the spool file already created (creating a
// SQLite file and its schema is the slow part of opening one) and the speech
// decoder already running with its model loaded. A pooled processor's claim
// then costs little more than reading the bridge state.
//
// Only the offline pocketsphinx decoder is started early: the OpenAI engines
// need the tenant's key, which comes with the claim, and an idle Realtime
// session would run into the service's session cap.
type warm struct {
	cfg   Config        // the spawn config it was prepared for
	ready chan struct{} // closed once the fields below are set
	done  chan struct{} // closed when the preparing goroutine has returned

	spoolPath string // a created, closed spool; "" when it could not be made

	// The speech stream runs in work, which the claiming session adopts as
	// its own work context (or which discard cancels).
	work     context.Context
	stopWork context.CancelFunc
	stream   stt.Stream // nil when not prepared
	engine   string
	// onResult is where the stream's results go once claimed; results
	// before that cannot exist (no audio is written before the claim).
	onResult atomic.Pointer[func(stt.Result)]

	stopVoice context.CancelFunc // ends the voice warm-up early (a claim came)
	once      sync.Once
}

// warmSpoolName is the spool an idle processor creates; the claim renames it
// to the interview's spool name, which a replacement looks for.
const warmSpoolName = "spool-warm.db"

// prepareWarm starts preparing an idle processor in the background. The
// caller owns the result: it adopts it in a claim or discards it.
func prepareWarm(ctx context.Context, cfg Config, log *slog.Logger) *warm {
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	voiceCtx, stopVoice := context.WithCancel(ctx)
	w := &warm{cfg: cfg, ready: make(chan struct{}), done: make(chan struct{}), work: work, stopWork: stopWork, stopVoice: stopVoice}
	go func() {
		defer close(w.done)
		defer stopVoice()
		w.prepare(log)
		close(w.ready)
		w.warmVoice(voiceCtx, log)
	}()
	return w
}

func (w *warm) prepare(log *slog.Logger) {
	cfg := w.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		log.Warn("warm pool: data dir not prepared; the claim will create it", "err", err)
		return
	}
	path := filepath.Join(cfg.DataDir, warmSpoolName)
	if sp, err := openSpool(w.work, path); err != nil {
		log.Warn("warm pool: spool not prepared; the claim will create it", "err", err)
	} else if err := sp.Close(); err == nil {
		w.spoolPath = path
	}
	if spec, ok := stt.Lookup(cfg.STT); !ok || !spec.Prestart {
		log.Info("warm pool: the speech engine starts at the claim (it needs what the claim brings)", "stt", cfg.STT)
		return
	}
	engine, err := stt.New(cfg.STT, stt.Config{Logger: log})
	if err != nil {
		log.Warn("warm pool: speech engine not started; the claim will start it", "err", err)
		return
	}
	// Base 0: the claim learns the resume point and shifts every result by it.
	stream, err := engine.NewStream(w.work, 0, func(r stt.Result) {
		if f := w.onResult.Load(); f != nil {
			(*f)(r)
		}
	})
	if err != nil {
		log.Warn("warm pool: speech stream not started; the claim will start it", "err", err)
		return
	}
	w.stream, w.engine = stream, engine.Name()
}

// warmVoice synthesizes a word once so the voice's binary and data are in
// memory before the interviewer's greeting; a claim cuts it short.
func (w *warm) warmVoice(ctx context.Context, log *slog.Logger) {
	if spec, ok := tts.Lookup(w.cfg.TTS); !ok || !spec.Prestart {
		return // a voice behind the network: nothing local to warm
	}
	v, err := newVoice(w.cfg, contract.Plan{})
	if err != nil {
		return
	}
	if _, err := v.Speak(ctx, "Hello."); err != nil && ctx.Err() == nil {
		log.Debug("warm pool: voice warm-up", "err", err)
	}
}

// take waits until the preparation is done and hands it over; the caller
// must adopt what it uses and call discard for the rest.
func (w *warm) take() *warm {
	w.stopVoice()
	<-w.ready
	return w
}

// streamFor returns the prepared stream when cfg (the claimed config) would
// start the same engine, else nil.
func (w *warm) streamFor(cfg Config) stt.Stream {
	if w.stream == nil || cfg.STT != w.cfg.STT {
		return nil
	}
	return w.stream
}

// claimSpool moves the prepared spool to path unless a spool is already
// there (a replacement on the same disk keeps its predecessor's spool).
func (w *warm) claimSpool(path string) {
	if w.spoolPath == "" {
		return
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return
	}
	if os.Rename(w.spoolPath, path) == nil {
		w.spoolPath = ""
	}
}

// discard releases what was not adopted; when adopted, the stream and its
// context belong to the claiming session. It does not wait for the voice
// warm-up (stopped): the server waits for done before it exits.
func (w *warm) discard(adopted bool) {
	w.once.Do(func() {
		w.stopVoice()
		<-w.ready
		if !adopted {
			if w.stream != nil {
				w.stream.Close()
			}
			w.stopWork()
		}
		if w.spoolPath != "" {
			os.Remove(w.spoolPath)
			os.Remove(w.spoolPath + "-wal")
			os.Remove(w.spoolPath + "-shm")
		}
	})
}
