package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"candor/processor/stt"
)

// runEvalSTT serves `candor eval-stt --corpus DIR`: word error rate and
// real-time factor of one speech engine over a folder of WAV files.
func runEvalSTT(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("candor eval-stt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	corpus := fs.String("corpus", "", "folder of WAV files with a refs.txt (<file> <reference text> per line)")
	engine := fs.String("engine", firstNonEmpty(env["CANDOR_STT"], "pocketsphinx"), "pocketsphinx, openai or openai-realtime")
	model := fs.String("model", "", "model name for the OpenAI engines (default: the engine's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *corpus == "" {
		return errors.New("--corpus is required (build one with scripts/make-stt-corpus.sh DIR)")
	}
	eng, err := stt.New(*engine, stt.Config{
		OpenAIKey:     env["OPENAI_API_KEY"],
		OpenAIBaseURL: env["OPENAI_BASE_URL"],
		Model:         *model,
	})
	if err != nil {
		return err
	}
	rep, err := stt.Evaluate(ctx, *corpus, eng, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "engine=%s files=%d words=%d errors=%d WER=%.1f%% audio=%.1fs processing=%.1fs RTF=%.3f\n",
		eng.Name(), rep.Files, rep.Words, rep.Errors, 100*rep.WER, rep.AudioSeconds, rep.ProcessingSeconds, rep.RTF)
	return nil
}
