package web

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"candor/store"
)

// transcriptFormat is one way GET …/transcript?format= renders entries.
type transcriptFormat struct {
	ext, contentType string
	write            func(w io.Writer, es []store.Entry) error
}

var transcriptFormats = map[string]transcriptFormat{
	"txt": {"txt", "text/plain; charset=utf-8", writeTranscriptText},
	"csv": {"csv", "text/csv; charset=utf-8", writeTranscriptCSV},
	"vtt": {"vtt", "text/vtt; charset=utf-8", writeTranscriptVTT},
	"srt": {"srt", "application/x-subrip; charset=utf-8", writeTranscriptSRT},
}

// exportTranscript answers es in format (not json) as a download.
func exportTranscript(c echo.Context, interviewID, format string, es []store.Entry) error {
	f, ok := transcriptFormats[format]
	if !ok {
		return invalid("format", "%q is not one of json, txt, csv, vtt, srt", format)
	}
	var buf bytes.Buffer
	if err := f.write(&buf, es); err != nil {
		return fmt.Errorf("export transcript as %s: %w", format, err)
	}
	attachment(c, "transcript-"+interviewID+"."+f.ext)
	return c.Blob(http.StatusOK, f.contentType, buf.Bytes())
}

// attachment marks the answer as a download named name. Names are built
// from IDs only (ASCII, no quotes), never from personal data.
func attachment(c echo.Context, name string) {
	c.Response().Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
}

func speakerLabel(speaker string) string {
	switch speaker {
	case store.SpeakerCandidate:
		return "Candidate"
	case store.SpeakerInterviewer:
		return "Interviewer"
	}
	return speaker
}

// cueLines is text as the non-empty lines of one subtitle cue: a blank line
// would end the cue early in both WebVTT and SRT.
func cueLines(text string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		out = []string{"…"}
	}
	return out
}

// cueTimes returns an entry's start and end for a cue, with end after
// start (players and ffmpeg drop empty cues).
func cueTimes(e store.Entry) (start, end int64) {
	start, end = max(e.StartMS, 0), e.EndMS
	if end <= start {
		end = start + 1
	}
	return start, end
}

// clockMS formats ms as hh:mm:ss<sep>mmm.
func clockMS(ms int64, sep string) string {
	h, m, s := ms/3_600_000, ms/60_000%60, ms/1000%60
	return fmt.Sprintf("%02d:%02d:%02d%s%03d", h, m, s, sep, ms%1000)
}

var vttEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// writeTranscriptVTT writes WebVTT with one cue per entry, its speaker as a
// voice span (<v Candidate>).
func writeTranscriptVTT(w io.Writer, es []store.Entry) error {
	var b strings.Builder
	b.WriteString("WEBVTT\n")
	for _, e := range es {
		start, end := cueTimes(e)
		fmt.Fprintf(&b, "\n%d\n%s --> %s\n", e.Seq, clockMS(start, "."), clockMS(end, "."))
		for _, l := range cueLines(e.Text) {
			fmt.Fprintf(&b, "<v %s>%s</v>\n", speakerLabel(e.Speaker), vttEscaper.Replace(l))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTranscriptSRT writes SubRip: cues numbered from 1, the speaker
// named at the start of the cue.
func writeTranscriptSRT(w io.Writer, es []store.Entry) error {
	var b strings.Builder
	for i, e := range es {
		start, end := cueTimes(e)
		fmt.Fprintf(&b, "%d\n%s --> %s\n%s: %s\n\n", i+1, clockMS(start, ","), clockMS(end, ","),
			speakerLabel(e.Speaker), strings.Join(cueLines(e.Text), "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTranscriptCSV writes seq,speaker,start_ms,end_ms,text. A text that a
// spreadsheet would run as a formula (=, +, -, @ first) gets a leading
// apostrophe, the usual defence against CSV injection.
func writeTranscriptCSV(w io.Writer, es []store.Entry) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"seq", "speaker", "start_ms", "end_ms", "text"})
	for _, e := range es {
		text := e.Text
		if text != "" && strings.ContainsRune("=+-@\t\r", rune(text[0])) {
			text = "'" + text
		}
		cw.Write([]string{strconv.FormatInt(e.Seq, 10), e.Speaker,
			strconv.FormatInt(e.StartMS, 10), strconv.FormatInt(e.EndMS, 10), text})
	}
	cw.Flush()
	return cw.Error()
}

// writeTranscriptText writes one "[mm:ss] Speaker: text" line per entry.
func writeTranscriptText(w io.Writer, es []store.Entry) error {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "[%s] %s: %s\n", fmtMediaClock(e.StartMS), speakerLabel(e.Speaker), strings.Join(cueLines(e.Text), " "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtMediaClock is m:ss, or h:mm:ss past an hour.
func fmtMediaClock(ms int64) string {
	s := max(ms, 0) / 1000
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
