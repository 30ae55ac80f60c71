package web

import (
	"net/url"
	"strings"
	"testing"

	"candor/web/scorecard"
	"candor/web/scorecard/chatfake"
)

func TestDashboardScorecardReviewsRankingWebhooksRetention(t *testing.T) {
	fake := chatfake.Start("sk-eval", chatfake.Inventing)
	defer fake.Close()
	e := newTestEnv(t, withEvaluator(&scorecard.OpenAI{BaseURL: fake.URL, APIKey: "sk-eval", Model: "gpt-eval"}))
	a := e.tenant(t, "Acme")
	ivID := e.seedTranscript(t, a, "Ada Lovelace")
	e.ensureCompletedEvent(t, a.ID, ivID)
	waitUntil(t, "the scorecard is ready", func() bool { return e.scorecard(t, a.Key, ivID).Status == "ready" })
	var iv interviewJSON
	e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivID, Key: a.Key}, &iv)

	de := &dashEnv{t: t, srv: e.srv, db: e.db, hub: e.hub, url: e.ts.URL}
	b := de.login("acme@example.com", "correct horse battery")

	page := b.get("/interviews/" + ivID)
	wantDashStatus(t, page, 200)
	card := page.byTestID("scorecard")
	if len(card) != 1 || dashAttr(card[0], "data-status") != "ready" {
		t.Fatalf("scorecard card missing or not ready:\n%s", page.body)
	}
	if rows := page.byTestID("score-row"); len(rows) != 2 {
		t.Errorf("%d criteria rows, want 2", len(rows))
	}
	evs := page.byTestID("evidence")
	if len(evs) == 0 {
		t.Fatal("no evidence links")
	}
	for _, ev := range evs {
		seq := dashAttr(ev, "data-seq")
		if dashAttr(ev, "href") != "#entry-"+seq || dashAttr(ev, "data-play-ms") == "" {
			t.Errorf("evidence link %v does not point at its entry and moment", ev.Attr)
		}
		if strings.Contains(dashText(ev), chatfake.InventedQuote) {
			t.Error("the page shows the invented quote")
		}
	}
	if dashAttr(evs[0], "data-play-ms") != "3100" { // entry 2 starts at 3.1 s
		t.Errorf("evidence plays from %s ms, want 3100", dashAttr(evs[0], "data-play-ms"))
	}
	if !page.has("dropped-quotes") || !page.has("stats") {
		t.Error("the dropped-quote note or the stats are missing")
	}
	for _, id := range []string{"export-pdf", "export-csv", "export-vtt", "export-srt", "export-txt"} {
		if !page.has(id) {
			t.Errorf("no %s button", id)
		}
	}
	if got := dashAttr(page.byTestID("export-pdf")[0], "href"); got != "/api/v1/interviews/"+ivID+"/report.pdf" {
		t.Errorf("PDF button links %s", got)
	}

	// A review from the page shows beside the AI's scores.
	form := url.Values{"recommendation": {"yes"}, "note": {"solid answers"}, "score:Communication": {"4"}, "score:Technical depth": {"2"}}
	wantDashRedirect(t, b.post("/interviews/"+ivID+"/review", form), "/interviews/"+ivID)
	page = b.get("/interviews/" + ivID)
	human := page.byTestID("human-score")
	if len(human) != 2 || strings.TrimSpace(dashText(human[0])) != "4.00" || strings.TrimSpace(dashText(human[1])) != "2.00" {
		t.Errorf("reviewer scores %q", []string{dashText(human[0]), dashText(human[1])})
	}
	if !strings.Contains(dashText(page.byTestID("overall-human")[0]), "2.50") { // (4·1 + 2·3) / 4
		t.Errorf("reviewers' overall: %q", dashText(page.byTestID("overall-human")[0]))
	}

	// The position page ranks its candidates; a status filter narrows it.
	page = b.get("/positions/" + iv.PositionID)
	rows := page.byTestID("ranking-row")
	if len(rows) != 1 || strings.TrimSpace(dashText(page.byTestID("rank-human")[0]))[:4] != "2.50" {
		t.Fatalf("ranking:\n%v", len(rows))
	}
	if rows := b.get("/positions/" + iv.PositionID + "?status=running").byTestID("ranking-row"); len(rows) != 0 {
		t.Errorf("the running filter shows %d completed interviews", len(rows))
	}

	// Webhooks: a private target is refused with the reason.
	page = b.get("/webhooks")
	wantDashStatus(t, page, 200)
	page = b.post("/webhooks", url.Values{"url": {"https://127.0.0.1/hook"}, "events": {"scorecard.ready"}})
	if page.status != 422 || !strings.Contains(page.body, "private") {
		t.Errorf("a loopback webhook: %d", page.status)
	}

	// Retention: saved, shown, and in the audit log.
	wantDashRedirect(t, b.post("/retention", url.Values{"recordings_days": {"7"}, "transcripts_days": {""}}), "/retention")
	page = b.get("/retention")
	if v := dashAttr(page.byTestID("recordings-days")[0], "value"); v != "7" {
		t.Errorf("recordings days %q", v)
	}
	if len(page.byTestID("audit-entry")) == 0 {
		t.Error("the audit log on the page is empty")
	}
	if page := b.post("/retention", url.Values{"recordings_days": {"0"}}); page.status != 422 {
		t.Errorf("0 days: %d", page.status)
	}
}
