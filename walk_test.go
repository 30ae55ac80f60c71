package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"candor/web/mail/mailtest"
)

// TestWalkFromInterviewToSearchedMoment walks the daily path of issue 14
// against a real SMTP server: the owner invites a member by email, the
// member sets a password from the mail and schedules an interview with a
// window (position with its own interviewer name and flite voice); the
// candidate gets the invitation mail, follows its link and is interviewed in
// Chromium with a fake microphone playing LibriVox speech; a reload rejoins
// the live step; the page ends by itself after the closing line
// (countdown); the member finds the interview by a word the candidate said
// and plays the recording from that line.
func TestWalkFromInterviewToSearchedMoment(t *testing.T) {
	smtpSrv := mailtest.Start(t, "", "")
	st := startStack(t, "--smtp-url="+smtpSrv.URL(), "--mail-from=Acme Hiring <hiring@acme.test>")
	speech := makeSpeech(t, []string{"0880", "0890"})

	var pos, cand, iv struct {
		ID              string `json:"id"`
		InviteURL       string `json:"invite_url"`
		InterviewerName string `json:"interviewer_name"`
		Voice           string `json:"voice"`
	}
	st.api(t, "POST", "/api/v1/positions", map[string]any{
		"title": "Backend Engineer", "questions": []string{"Tell me about a book you have read recently."},
		"interviewer_name": "Ada", "voice": "flite-slt",
	}, &pos)
	if pos.InterviewerName != "Ada" || pos.Voice != "flite-slt" {
		t.Fatalf("position = %+v", pos)
	}
	st.api(t, "POST", "/api/v1/candidates", map[string]any{"name": "Grace Hopper", "email": "grace@example.com"}, &cand)

	// The owner invites a recruiter by email.
	br := newBrowser(t, speech.path44k)
	rec := br.tab(t)
	mustRun(t, rec, "the owner invites a member",
		chromedp.Navigate(st.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), ownerEmail),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), ownerPass),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=nav]`)),
		chromedp.Navigate(st.url+"/members"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=add-member-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=add-member-form] #name`), "Rae Recruiter"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=add-member-form] #email`), "rae@example.com"),
		chromedp.SetValue(chromedp.CSS(`[data-testid=add-member-form] #role`), "recruiter"),
		chromedp.Click(chromedp.CSS(`[data-testid=add-member-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=member-pending]`)),
	)
	evaluate[bool](t, rec, `document.querySelector("[data-testid=logout]").form.submit(), true`)
	mustRun(t, rec, "the owner signs out", chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-form]`)))

	// The member sets a password from the mail and schedules the interview
	// with a window.
	invitation := smtpSrv.Wait(t, "rae@example.com", "", 30*time.Second)
	mustRun(t, rec, "the member sets a password from the mail",
		chromedp.Navigate(mailLink(t, invitation, st.url+"/invitation/")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=set-password-form]`)),
		chromedp.SendKeys(chromedp.CSS(`#password`), "rae's own password"),
		chromedp.SendKeys(chromedp.CSS(`#confirm`), "rae's own password"),
		chromedp.Click(chromedp.CSS(`[data-testid=set-password-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=org-name]`)),
	)
	opens, closes := time.Now().Add(-time.Minute), time.Now().Add(2*time.Hour)
	tz := evaluate[float64](t, rec, `new Date().getTimezoneOffset()`)
	local := func(at time.Time) string {
		return at.Add(-time.Duration(tz) * time.Minute).UTC().Format("2006-01-02T15:04")
	}
	mustRun(t, rec, "the member schedules the interview with a window",
		chromedp.Navigate(st.url+"/interviews"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=create-interview-form]`)),
		chromedp.SetValue(chromedp.CSS(`#position_id`), pos.ID),
		chromedp.SetValue(chromedp.CSS(`#candidate_id`), cand.ID),
		chromedp.SetValue(chromedp.CSS(`#available_from`), local(opens)),
		chromedp.SetValue(chromedp.CSS(`#expires_at`), local(closes)),
		chromedp.Click(chromedp.CSS(`[data-testid=create-interview-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=interview-detail]`)),
	)
	iv.ID = evaluate[string](t, rec, `document.querySelector("[data-testid=interview-detail]").dataset.interview`)
	shoot(t, rec, "walk", "member-scheduled")

	// The candidate gets the invitation mail and follows its link.
	mailed := smtpSrv.Wait(t, "grace@example.com", "", 30*time.Second)
	iv.InviteURL = mailLink(t, mailed, st.url+"/i/")
	rt := st.realtime(t, iv.ID)
	page := br.tab(t)
	mustRun(t, page, "open the invite and join",
		chromedp.Navigate(iv.InviteURL+"?raw=1&closing_s=4"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=start]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=start]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=consent]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=consent]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=consent-continue]:not([disabled])`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=join]:not([disabled])`)),
		chromedp.Click(chromedp.CSS(`[data-testid=join]`)),
	)
	waitStatus(t, page, "live", 120*time.Second)

	// The interviewer greets with the position's name, asks, hears the
	// answer and closes; the page then says it is over.
	waitUntil(t, speech.duration+90*time.Second, "the closing banner", func() bool {
		return evaluate[bool](t, page, `!document.querySelector("[data-testid=closing-banner]").hidden`)
	})
	shoot(t, page, "walk", "candidate-closing-banner")
	ivs := rt.entries("interviewer")
	if len(ivs) < 3 || !strings.Contains(ivs[0].Text, "I am Ada") {
		t.Errorf("interviewer said %+v, want a greeting by Ada, the question and the closing", ivs)
	}
	// Greeting and question are stamped where each starts on the media
	// clock, not both at 0:00.
	if len(ivs) >= 2 && ivs[1].StartMS <= ivs[0].StartMS {
		t.Errorf("greeting at %d ms and question at %d ms: the question must start after the greeting", ivs[0].StartMS, ivs[1].StartMS)
	}

	// A reload rejoins: the live step, the conversation so far, the hint
	// of where the interview stands, and the countdown again.
	before := evaluate[int](t, page, `document.querySelectorAll("[data-testid=caption]").length`)
	mustRun(t, page, "reload", chromedp.Reload())
	waitUntil(t, 30*time.Second, "the rejoined live step", func() bool {
		return evaluate[bool](t, page, `!document.querySelector("[data-testid=step-live]").hidden`)
	})
	if after := evaluate[int](t, page, `document.querySelectorAll("[data-testid=caption]").length`); after < before || after == 0 {
		t.Errorf("after the reload the page shows %d captions, before %d", after, before)
	}
	waitUntil(t, 60*time.Second, "the closing banner after the reload", func() bool {
		return evaluate[bool](t, page, `!document.querySelector("[data-testid=closing-banner]").hidden`)
	})
	if hint := evaluate[string](t, page, `document.querySelector("[data-testid=hint]").textContent`); strings.Contains(hint, "speak first") {
		t.Errorf("after the reload the hint says %q", hint)
	}
	shoot(t, page, "walk", "candidate-rejoined")

	// Nobody presses anything: the countdown ends the interview.
	waitStatus(t, page, "ended", 60*time.Second)
	shoot(t, page, "walk", "candidate-ended")
	var got struct {
		Status string `json:"status"`
	}
	waitUntil(t, 60*time.Second, "completed interview", func() bool {
		st.api(t, "GET", "/api/v1/interviews/"+iv.ID, nil, &got)
		return got.Status == "completed"
	})
	var evs struct {
		Events []struct{ Type string } `json:"events"`
	}
	st.api(t, "GET", "/api/v1/interviews/"+iv.ID+"/events", nil, &evs)
	if !slices.ContainsFunc(evs.Events, func(e struct{ Type string }) bool { return e.Type == "candidate.ended" }) {
		t.Errorf("events %+v lack candidate.ended (the page's countdown)", evs.Events)
	}

	// The recruiter searches for a word the candidate said.
	var tr struct {
		Entries []rtEntry `json:"entries"`
	}
	st.api(t, "GET", "/api/v1/interviews/"+iv.ID+"/transcript", nil, &tr)
	// The latest line with a distinctive word: playing "from that line"
	// then means from somewhere past the start of the recording.
	word, seq, startMS := "", int64(0), int64(-1)
	for _, e := range tr.Entries {
		if e.Speaker != "candidate" || e.StartMS <= startMS {
			continue
		}
		for _, w := range strings.Fields(e.Text) {
			if len(w) >= 6 {
				word, seq, startMS = strings.ToLower(w), e.Seq, e.StartMS
				break
			}
		}
	}
	if word == "" {
		t.Fatalf("no candidate word to search for in %+v", tr.Entries)
	}
	mustRun(t, rec, "the member searches",
		chromedp.Navigate(st.url+"/search?q="+url.QueryEscape(word)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=search-results]`)),
	)
	shoot(t, rec, "walk", "recruiter-search")
	link := fmt.Sprintf(`a[href="/interviews/%s#entry-%d"]`, iv.ID, seq)
	if !evaluate[bool](t, rec, fmt.Sprintf(`document.querySelector(%q) !== null`, link)) {
		t.Fatalf("no search hit links to line %d of the interview for %q", seq, word)
	}
	mustRun(t, rec, "open the hit",
		chromedp.Click(chromedp.CSS(link)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=recording-player]`)),
	)
	waitUntil(t, 20*time.Second, "the searched line marked", func() bool {
		return evaluate[bool](t, rec, fmt.Sprintf(`document.querySelector("#entry-%d.current") !== null`, seq))
	})
	mustRun(t, rec, "play from that line", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#entry-%d [data-testid=seek]`, seq))))
	waitUntil(t, 30*time.Second, "the recording playing from the line", func() bool {
		return evaluate[bool](t, rec, fmt.Sprintf(`(function(){
			var a = document.querySelector("[data-testid=recording-player]");
			var at = (parseInt(a.getAttribute("data-start-ms"), 10) || 0) + a.currentTime * 1000;
			return !a.paused && a.currentTime > 0 && at >= %d - 500 && at <= %d + 3000;
		})()`, startMS, startMS))
	})
	shoot(t, rec, "walk", "recruiter-playing")
	waitNoProcessors(t, st.dir)
}

// mailLink is the one link of m that starts with prefix.
func mailLink(t testing.TB, m mailtest.Message, prefix string) string {
	t.Helper()
	for _, l := range m.Links() {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("mail %q to %s has no link under %s: %v", m.Subject, m.To, prefix, m.Links())
	return ""
}
