package web

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"candor/store"
)

func TestBrowserARecordingInPartsPlaysAsOneTimeline(t *testing.T) {
	env := newDashEnv(t)
	ctx := newDashChrome(t)
	bg := context.Background()
	hash, _ := hashPassword("correct horse battery")
	tenant, _, err := env.db.CreateTenantWithOwner(bg, "Northwind Talent", "olive@example.com", "Olive Owner", hash)
	if err != nil {
		t.Fatal(err)
	}
	_, iv := env.seedInterview(tenant.ID, "Ada Lovelace", store.StatusCompleted)
	// Three WAV parts of 0.4 s, as a processor uploads them while it records.
	dir := filepath.Join(env.srv.cfg.DataDir, recordingsDir, tenant.ID, iv.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"000000000000-ab-1.wav", "000000000400-ab-2.wav", "000000000800-ab-3.wav"} {
		if err := os.WriteFile(filepath.Join(dir, name), wavBytes(12800), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.db.SetRecording(bg, tenant.ID, iv.ID, filepath.ToSlash(filepath.Join(recordingsDir, tenant.ID, iv.ID, "000000000000-ab-1.wav"))); err != nil {
		t.Fatal(err)
	}

	chromeStep(t, ctx, "sign in and open the interview",
		chromedp.Navigate(env.url+"/login"),
		chromedp.WaitVisible(byCSS(`[data-testid=login-form]`)),
		chromedp.SendKeys(byCSS(`#email`), "olive@example.com"),
		chromedp.SendKeys(byCSS(`#password`), "correct horse battery"),
		chromedp.Click(byCSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=interviews-table]`)),
		chromedp.Navigate(env.url+"/interviews/"+iv.ID),
		chromedp.WaitVisible(byCSS(`[data-testid=recording-timeline]`)),
	)
	if n := jsEval[int](t, ctx, `document.querySelectorAll("[data-testid=recording-player]").length`); n != 1 {
		t.Fatalf("%d players, want one for all parts", n)
	}
	if got := jsEval[string](t, ctx, `document.querySelector("[data-testid=recording-position]").textContent`); got != "Part 1 of 3 · 0:00" {
		t.Errorf("position before playing = %q", got)
	}
	// The timeline passes the accessibility checks of every other page.
	var report a11yReport
	report.check(t, ctx, "interview with a recording in parts")
	// A transcript line's moment (live.js seeks through the timeline) cues
	// the part holding it, at the right offset.
	jsEval[bool](t, ctx, `window.Candor.live.seek(500, false), true`)
	jsWait(t, ctx, "part 2 cued at 0.1 s", `(function () {
		var a = document.querySelector("[data-testid=recording-player]");
		return a.src.endsWith("part=2") && a.dataset.startMs === "400" && Math.abs(a.currentTime - 0.1) < 0.02;
	})()`)
	// Playing part 1 plays on through parts 2 and 3, in media order.
	chromeStep(t, ctx, "play part 1", chromedp.Click(byCSS(`[data-testid=recording-part]`)))
	jsWait(t, ctx, "the player to reach part 3", `document.querySelector("[data-testid=recording-timeline]").dataset.currentPart === "3"`)
	if src := jsEval[string](t, ctx, `document.querySelector("[data-testid=recording-player]").src`); filepath.Base(src) != "recording?part=3" {
		t.Errorf("player src = %q, want part 3", src)
	}
	jsWait(t, ctx, "the end of the last part", `document.querySelector("[data-testid=recording-player]").ended`)
	if cur := jsEval[string](t, ctx, `document.querySelector("[data-testid=recording-part][aria-current]").textContent`); cur != "Part 3 · from 0:00" {
		t.Errorf("current part label = %q", cur)
	}
}
