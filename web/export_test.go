package web

import (
	"bytes"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// seedTranscript makes an interview of a candidate called name, with an
// interviewer question and two candidate answers (one with characters that
// the text formats must escape), and returns its ID.
func (e *testEnv) seedTranscript(t *testing.T, tn tenant, name string) string {
	t.Helper()
	var p, c, iv idJSON
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/positions", Key: tn.Key, Body: map[string]any{
		"title": "Backend engineer", "description": "Go and SQLite",
		"questions": []string{"Tell me about a system you built."},
		"rubric": []map[string]any{
			{"name": "Communication", "description": "explains clearly", "weight": 1},
			{"name": "Technical depth", "description": "knows the internals", "weight": 3},
		},
	}}, &p)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/candidates", Key: tn.Key, Body: map[string]any{
		"name": name, "email": "cand-" + strings.ToLower(tn.Slug) + "@example.com",
	}}, &c)
	e.must(t, 201, request{Method: "POST", Path: "/api/v1/interviews", Key: tn.Key, Body: map[string]any{
		"position_id": p.ID, "candidate_id": c.ID,
	}}, &iv)
	started := e.start(t, tn, iv.ID)
	res := e.postEntries(t, iv.ID, started.Bridge,
		map[string]any{"seq": 1, "speaker": "interviewer", "text": "Tell me about a system you built?", "start_ms": 0, "end_ms": 2500},
		map[string]any{"seq": 2, "speaker": "candidate", "text": "I built a queue in Go that moved payments between banks every night.", "start_ms": 3100, "end_ms": 9000},
		map[string]any{"seq": 3, "speaker": "candidate", "text": "Latency went <50 ms & errors --> zero, Привет мир.", "start_ms": 9400, "end_ms": 13000},
	)
	if res.Status != 200 {
		t.Fatalf("post entries: %d %s", res.Status, res.Body)
	}
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + iv.ID + "/end", Key: tn.Key}, nil)
	return iv.ID
}

var cueTiming = regexp.MustCompile(`\d --> \d`)

func TestTranscriptExports(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	ivID := e.seedTranscript(t, a, "Ada Lovelace")
	get := func(t *testing.T, format string) response {
		t.Helper()
		res := e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/transcript?format=" + format, Key: a.Key}, nil)
		want := `attachment; filename="transcript-` + ivID + "." + format + `"`
		if got := res.Header.Get("Content-Disposition"); got != want {
			t.Errorf("Content-Disposition %q, want %q", got, want)
		}
		return res
	}

	t.Run("json stays the default", func(t *testing.T) {
		var out struct {
			Entries []entryJSON `json:"entries"`
		}
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/transcript", Key: a.Key}, &out)
		if len(out.Entries) != 3 {
			t.Fatalf("%d entries, want 3", len(out.Entries))
		}
	})

	t.Run("csv has the header row and every entry, quoted where needed", func(t *testing.T) {
		res := get(t, "csv")
		rows, err := csv.NewReader(bytes.NewReader(res.Body)).ReadAll()
		if err != nil {
			t.Fatalf("parse csv: %v\n%s", err, res.Body)
		}
		if strings.Join(rows[0], ",") != "seq,speaker,start_ms,end_ms,text" || len(rows) != 4 {
			t.Fatalf("rows %q", rows)
		}
		if rows[2][4] != "I built a queue in Go that moved payments between banks every night." || rows[2][1] != "candidate" || rows[2][2] != "3100" {
			t.Errorf("row 2 %q", rows[2])
		}
	})

	t.Run("txt reads as a conversation", func(t *testing.T) {
		body := string(get(t, "txt").Body)
		if !strings.Contains(body, "[0:03] Candidate: I built a queue") || !strings.Contains(body, "[0:00] Interviewer: Tell me") {
			t.Errorf("txt:\n%s", body)
		}
	})

	// ffmpeg parses both subtitle formats and converts each to the other:
	// the cues, their times and their text survive.
	for _, tc := range []struct{ format, to, want string }{
		{"vtt", "srt", "00:00:09,400 --> 00:00:13,000"},
		{"srt", "webvtt", "00:09.400 --> 00:13.000"},
	} {
		t.Run("ffmpeg reads the "+tc.format+" back", func(t *testing.T) {
			res := get(t, tc.format)
			if tc.format == "vtt" {
				body := string(res.Body)
				if !strings.HasPrefix(body, "WEBVTT\n") || !strings.Contains(body, "<v Candidate>I built a queue") ||
					!strings.Contains(body, "<v Interviewer>Tell me") || !strings.Contains(body, "&lt;50 ms &amp; errors --&gt; zero") {
					t.Errorf("vtt:\n%s", body)
				}
			}
			dir := t.TempDir()
			in := filepath.Join(dir, "in."+tc.format)
			if err := os.WriteFile(in, res.Body, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("ffmpeg", "-v", "error", "-i", in, "-f", tc.to, "-").Output()
			if err != nil {
				t.Fatalf("ffmpeg cannot read the %s: %v\n%s", tc.format, err, res.Body)
			}
			text := string(out)
			for _, want := range []string{tc.want, "I built a queue in Go", "Привет мир", "Tell me about a system you built?"} {
				if !strings.Contains(text, want) {
					t.Errorf("ffmpeg's %s lacks %q:\n%s", tc.to, want, text)
				}
			}
			if n := len(cueTiming.FindAllString(text, -1)); n != 3 {
				t.Errorf("ffmpeg found %d cues, want 3:\n%s", n, text)
			}
		})
	}

	t.Run("an unknown format is a 400 naming the formats", func(t *testing.T) {
		res := e.do(t, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/transcript?format=docx", Key: a.Key})
		if res.Status != 400 || !strings.Contains(string(res.Body), "json, txt, csv, vtt, srt") {
			t.Errorf("%d %s", res.Status, res.Body)
		}
	})
}

func TestReportPDF(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext (poppler-utils) is not installed: scripts/deps.sh installs it")
	}
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	const name = "Зоя Ковалёва-Ødegård"
	ivID := e.seedTranscript(t, a, name)
	res := e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/report.pdf", Key: a.Key}, nil)
	if ct := res.Header.Get("Content-Type"); ct != "application/pdf" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="report-`+ivID+`.pdf"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	path := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(path, res.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	text := strings.Join(strings.Fields(string(out)), " ")
	for _, want := range []string{name, "Backend engineer", "I built a queue in Go that moved payments", "Привет мир", "Scorecard", "Transcript", "Interviewer"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF's text lacks %q:\n%s", want, text)
		}
	}

	b := e.tenant(t, "Bobco")
	if res := e.do(t, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/report.pdf", Key: b.Key}); res.Status != 404 {
		t.Errorf("another tenant's report: %d, want 404", res.Status)
	}
}
