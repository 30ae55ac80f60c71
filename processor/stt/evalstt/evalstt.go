// Package evalstt is the `candor eval-stt` command: word error rate and
// real-time factor of a registered speech engine over a corpus, optionally
// carried through one of the processor's ingest paths first.
package evalstt

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"candor/processor/contract"
	"candor/processor/stt"
)

// Run serves `candor eval-stt --corpus DIR`: word error rate and
// real-time factor of one speech engine over a folder of WAV files, either
// read as they are or first carried through one of the processor's ingest
// paths (--transport), to measure what that path costs in accuracy.
func Run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("candor eval-stt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	corpus := fs.String("corpus", "", "folder of WAV files with a refs.txt (<file> <reference text> per line)")
	engine := fs.String("engine", cmp.Or(env[contract.EnvSTT], stt.DefaultEngine), strings.Join(stt.EngineNames(), ", "))
	model := fs.String("model", "", "model name for the OpenAI engines (default: the engine's)")
	transport := fs.String("transport", "wav", "how the audio reaches the engine: wav (the file as is), webm or ogg (Opus chunks through /process-audio's reassembler and decoder), whip (Opus over WebRTC to the WHIP server)")
	bitrate := fs.String("opus-bitrate", "32k", "Opus bitrate for the webm, ogg and whip transports (WebRTC sends speech at about 32 kbit/s)")
	realtime := fs.Bool("realtime", true, "whip: send the audio at its own pace (false: ten times faster)")
	keep := fs.String("transcoded", "", "keep the transcoded corpus in this folder (default: a temporary folder, removed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *corpus == "" {
		return errors.New("--corpus is required (build one with scripts/make-stt-corpus.sh DIR)")
	}
	if !slices.Contains(evalTransports, *transport) {
		return fmt.Errorf("--transport %q: use one of %s", *transport, strings.Join(evalTransports, ", "))
	}
	if *keep != "" {
		src, err1 := filepath.Abs(*corpus)
		dst, err2 := filepath.Abs(*keep)
		if err1 != nil || err2 != nil || src == dst {
			return errors.New("--transcoded must be another folder than --corpus: the transcoded files keep the corpus's names")
		}
	}
	eng, err := stt.New(*engine, stt.Config{
		OpenAIKey:     env[contract.EnvOpenAIKey],
		OpenAIBaseURL: env[contract.EnvOpenAIBaseURL],
		Model:         *model,
	})
	if err != nil {
		return err
	}
	dir := *corpus
	if *transport != "wav" {
		dir = *keep
		if dir == "" {
			tmp, err := os.MkdirTemp("", "candor-eval-"+*transport+"-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		opts := transportOptions{Name: *transport, OpusBitrate: *bitrate, Realtime: *realtime}
		if err := transcodeCorpus(ctx, *corpus, dir, opts, stderr); err != nil {
			return err
		}
	}
	rep, err := stt.Evaluate(ctx, dir, eng, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "engine=%s transport=%s files=%d words=%d errors=%d WER=%.1f%% audio=%.1fs processing=%.1fs RTF=%.3f\n",
		eng.Name(), *transport, rep.Files, rep.Words, rep.Errors, 100*rep.WER, rep.AudioSeconds, rep.ProcessingSeconds, rep.RTF)
	return nil
}
