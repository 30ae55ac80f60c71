package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"candor/web/scorecard/chatfake"
)

// TestScorecardOfALibriVoxInterview runs a real interview — the control
// plane, a local processor with pocketsphinx, a LibriVox recording (Debian's
// pocketsphinx test data) as the candidate through the processor's
// /process-audio — and checks the scorecard the (fake) evaluator gives it:
// every quote is a verbatim piece of the entry it cites, every rubric
// criterion is there, the stats describe the recording. With
// CANDOR_DEMO_OUT=dir it also writes scorecard.json and a screenshot of the
// interview page there.
func TestScorecardOfALibriVoxInterview(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pocketsphinx on real recordings")
	}
	fake := chatfake.Start("sk-demo", chatfake.Quoting)
	defer fake.Close()
	t.Setenv("OPENAI_API_KEY", "sk-demo")
	st := startStack(t, "--evaluator=openai", "--eval-model=fake-evaluator", "--eval-base-url="+fake.URL)

	var pos, cand, iv struct {
		ID string `json:"id"`
	}
	st.api(t, "POST", "/api/v1/positions", map[string]any{
		"title": "Audiobook narrator", "description": "Reads classic novels aloud.",
		"questions": []string{"Please read the opening of the chapter?"},
		"rubric": []map[string]any{
			{"name": "Diction", "description": "clear, well-paced reading", "weight": 2},
			{"name": "Storytelling", "description": "brings the characters and the plot across", "weight": 1},
		},
	}, &pos)
	st.api(t, "POST", "/api/v1/candidates", map[string]any{"name": "Marianne Dashwood", "email": "marianne@example.com"}, &cand)
	st.api(t, "POST", "/api/v1/interviews", map[string]any{"position_id": pos.ID, "candidate_id": cand.ID}, &iv)
	var started struct {
		Processor struct{ URL, Token string } `json:"processor"`
	}
	st.api(t, "POST", "/api/v1/interviews/"+iv.ID+"/start", nil, &started)

	clips := []string{"0870", "0880", "0890"}
	speech := makeSpeech(t, clips)
	wav, err := os.ReadFile(filepath.Join(filepath.Dir(speech.path44k), "speech16k.wav"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"audio_chunk": base64.StdEncoding.EncodeToString(wav), "speaker": "candidate",
		"sequence_number": 1, "mime_type": "audio/wav"})
	req, _ := http.NewRequest("POST", started.Processor.URL+"/process-audio", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+started.Processor.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("process-audio: %v %v\n%s", err, res, st.logTail())
	}
	res.Body.Close()
	st.api(t, "POST", "/api/v1/interviews/"+iv.ID+"/end", nil, nil)
	// Completion scores the interview: the scorer consumes the
	// interview.completed outbox row the end wrote. Nothing is asked.

	type scorecardAnswer struct {
		Status   string `json:"status"`
		Criteria []struct {
			Name     string `json:"name"`
			Score    int    `json:"score"`
			Evidence []struct {
				Seq   int64  `json:"seq"`
				Quote string `json:"quote"`
			} `json:"evidence"`
		} `json:"criteria"`
		Overall struct {
			Score float64 `json:"score"`
		} `json:"overall"`
		Stats struct {
			CandidateWords  int   `json:"candidate_words"`
			CandidateTalkMS int64 `json:"candidate_talk_ms"`
		} `json:"stats"`
	}
	var sc scorecardAnswer
	var raw json.RawMessage
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st.api(t, "GET", "/api/v1/interviews/"+iv.ID+"/scorecard", nil, &raw)
		json.Unmarshal(raw, &sc)
		if sc.Status == "ready" || sc.Status == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scorecard still %q after 3 minutes\n%s", sc.Status, st.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if sc.Status != "ready" || len(sc.Criteria) != 2 {
		t.Fatalf("scorecard %s", raw)
	}
	var tr struct {
		Entries []struct {
			Seq     int64  `json:"seq"`
			Speaker string `json:"speaker"`
			Text    string `json:"text"`
		} `json:"entries"`
	}
	st.api(t, "GET", "/api/v1/interviews/"+iv.ID+"/transcript", nil, &tr)
	text := map[int64]string{}
	for _, e := range tr.Entries {
		text[e.Seq] = e.Text
	}
	quotes := 0
	for _, c := range sc.Criteria {
		for _, ev := range c.Evidence {
			quotes++
			if !strings.Contains(text[ev.Seq], ev.Quote) {
				t.Errorf("quote %q is not in entry %d (%q)", ev.Quote, ev.Seq, text[ev.Seq])
			}
		}
	}
	if quotes == 0 || sc.Stats.CandidateWords < 20 || sc.Stats.CandidateTalkMS < 5000 {
		t.Errorf("%d quotes, stats %+v", quotes, sc.Stats)
	}

	out := os.Getenv("CANDOR_DEMO_OUT")
	if out == "" {
		return
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, raw, "", "  ")
	os.WriteFile(filepath.Join(out, "scorecard.json"), pretty.Bytes(), 0o644)
	trRaw, _ := json.MarshalIndent(tr, "", "  ")
	os.WriteFile(filepath.Join(out, "transcript.json"), trRaw, 0o644)
	br := newBrowser(t, speech.path44k)
	page := br.tab(t)
	mustRun(t, page, "open the interview page",
		chromedp.Navigate(st.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), ownerEmail),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), ownerPass),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=nav]`)),
		chromedp.Navigate(st.url+"/interviews/"+iv.ID),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=scorecard][data-status=ready]`)),
	)
	png := runAction(t, page, "screenshot", chromedp.FullScreenshot(100))
	os.WriteFile(filepath.Join(out, "interview-page.png"), png, 0o644)
	// Click the first evidence quote: the recording plays from its entry.
	mustRun(t, page, "click a quote", chromedp.Click(chromedp.CSS(`a.evidence`)))
	time.Sleep(1500 * time.Millisecond)
	playing := evaluate[bool](t, page, `(function(){var a=document.querySelector("audio");return !!a && !a.paused && a.currentTime>0})()`)
	t.Logf("after clicking the first quote the recording is playing: %v", playing)
	png = runAction(t, page, "screenshot after click", chromedp.FullScreenshot(100))
	os.WriteFile(filepath.Join(out, "interview-page-quote-clicked.png"), png, 0o644)
}
