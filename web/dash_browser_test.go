package web

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"candor/realtime"
	"candor/store"
)

// dashShotsDir receives screenshots of the pages for a human to look at.
const dashShotsDir = "/tmp/candor-shots"

// newDashChrome starts a headless Chromium with a fresh profile; the browser is
// stopped and reaped when the test ends.
func newDashChrome(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("chromium is required at /usr/bin/chromium: %v", err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// Start the browser on the context without a deadline (a deadline on
	// the first Run would bound the browser's life, not one step).
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// chromeStep runs actions with a bound, so a broken page fails the test instead
// of hanging it.
func chromeStep(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func jsEval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// jsWait polls a JS predicate in the page until it is true.
func jsWait(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(sctx, chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func saveShot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Sticky bars would be drawn where the page is scrolled to.
	if err := chromedp.Do(sctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`window.scrollTo(0, 0), true`)(ctx, t)
		return err
	})); err != nil {
		t.Fatalf("scroll up: %v", err)
	}
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dashShotsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dashShotsDir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

func byCSS(s string) chromedp.CSS { return chromedp.CSS(s) }

func TestBrowserSetupPositionEditorAndInterviews(t *testing.T) {
	env := newDashEnv(t)
	ctx := newDashChrome(t)

	chromeStep(t, ctx, "first-run setup",
		chromedp.Navigate(env.url+"/"),
		chromedp.WaitVisible(byCSS(`[data-testid=setup-form]`)),
		chromedp.SendKeys(byCSS(`#org`), "Northwind Talent"),
		chromedp.SendKeys(byCSS(`#name`), "Olive Owner"),
		chromedp.SendKeys(byCSS(`#email`), "olive@example.com"),
		chromedp.SendKeys(byCSS(`#password`), "correct horse battery"),
		chromedp.Click(byCSS(`[data-testid=setup-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=interviews-prereq]`)),
	)
	if got := jsEval[string](t, ctx, `document.querySelector("[data-testid=org-name]").textContent`); got != "Northwind Talent" {
		t.Fatalf("org name after setup = %q", got)
	}

	// The question plan editor: two questions typed into the JS rows, then
	// reordered; one rubric row.
	chromeStep(t, ctx, "fill the position editor",
		chromedp.Navigate(env.url+"/positions/new"),
		chromedp.WaitVisible(byCSS(`[data-testid=question-list]`)),
		chromedp.SendKeys(byCSS(`#title`), "Platform engineer"),
		chromedp.SendKeys(byCSS(`#description`), "Runs our Go services."),
		chromedp.SendKeys(byCSS(`[data-testid=question-row]:nth-child(1) input`), "How do you debug a slow query?"),
		chromedp.Click(byCSS(`[data-testid=question-add]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=question-row]:nth-child(2) input`)),
		chromedp.SendKeys(byCSS(`[data-testid=question-row]:nth-child(2) input`), "Tell me about a system you built."),
		chromedp.Click(byCSS(`[data-testid=question-row]:nth-child(2) [data-up]`)),
		chromedp.SendKeys(byCSS(`[data-testid=rubric-row]:nth-child(1) [data-testid=rubric-name]`), "System design"),
		chromedp.SendKeys(byCSS(`[data-testid=rubric-row]:nth-child(1) [data-testid=rubric-description]`), "Explains trade-offs"),
		chromedp.SendKeys(byCSS(`[data-testid=rubric-row]:nth-child(1) [data-testid=rubric-weight]`), "2"),
	)
	if n := jsEval[int](t, ctx, `document.querySelectorAll("[data-testid=rubric-row]").length`); n != 1 {
		t.Errorf("the JS rubric editor shows %d rows, want 1", n)
	}
	if hidden := jsEval[bool](t, ctx, `document.querySelector("[data-testid=questions-input]").hidden`); !hidden {
		t.Errorf("the plain textarea is still shown next to the question editor")
	}
	saveShot(t, ctx, "position-editor.png")
	chromeStep(t, ctx, "save the position",
		chromedp.Click(byCSS(`[data-testid=position-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=positions-table]`)),
	)
	row := jsEval[string](t, ctx, `document.querySelector("[data-testid=position-row]").textContent`)
	for _, want := range []string{"Platform engineer", "2 questions", "1 criterion"} {
		if !strings.Contains(row, want) {
			t.Errorf("position row %q lacks %q", row, want)
		}
	}
	tenant := env.tenantOf("olive@example.com")
	ps, err := env.db.ListPositions(context.Background(), tenant)
	if err != nil || len(ps) != 1 {
		t.Fatalf("positions: %v %d", err, len(ps))
	}
	if got := strings.Join(ps[0].Questions, " | "); got != "Tell me about a system you built. | How do you debug a slow query?" {
		t.Errorf("stored questions in order: %q", got)
	}
	if len(ps[0].Rubric) != 1 || ps[0].Rubric[0] != (store.RubricItem{Name: "System design", Description: "Explains trade-offs", Weight: 2}) {
		t.Errorf("stored rubric: %+v", ps[0].Rubric)
	}

	// A candidate through the page, then an interview through the page.
	chromeStep(t, ctx, "add a candidate and schedule an interview",
		chromedp.Navigate(env.url+"/candidates"),
		chromedp.SendKeys(byCSS(`[data-testid=candidate-name-input]`), "Grace Hopper"),
		chromedp.SendKeys(byCSS(`[data-testid=candidate-email-input]`), "grace@example.com"),
		chromedp.Click(byCSS(`[data-testid=create-candidate-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=candidate-row]`)),
		chromedp.Navigate(env.url+"/interviews"),
		chromedp.WaitVisible(byCSS(`[data-testid=create-interview-form]`)),
	)
	cs, _ := env.db.ListCandidates(context.Background(), tenant)
	chromeStep(t, ctx, "schedule",
		chromedp.SetValue(byCSS(`#position_id`), ps[0].ID),
		chromedp.SetValue(byCSS(`#candidate_id`), cs[0].ID),
		chromedp.Click(byCSS(`[data-testid=create-interview-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=interview-detail]`)),
	)

	// More interviews in other states, so the list looks like a day's work.
	seedDashShowcase(t, env, tenant)
	chromeStep(t, ctx, "open the interviews list",
		chromedp.Navigate(env.url+"/interviews"),
		chromedp.WaitVisible(byCSS(`[data-testid=interviews-table]`)),
	)
	if n := jsEval[int](t, ctx, `document.querySelectorAll("[data-testid=interview-row]").length`); n < 5 {
		t.Errorf("interview rows = %d", n)
	}
	saveShot(t, ctx, "interviews.png")

	// Start answers 501 without machines: the page explains it in place.
	chromeStep(t, ctx, "press start",
		chromedp.Click(byCSS(`[data-testid=interview-row][data-status=scheduled] [data-testid=start-interview]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=action-message]`)),
	)
	jsWait(t, ctx, "the 501 explanation", `document.querySelector("[data-testid=action-message]").textContent.includes("no machine provider")`)
	if dis := jsEval[bool](t, ctx, `document.querySelector("[data-testid=interview-row][data-status=scheduled] [data-testid=start-interview]").disabled`); dis {
		t.Errorf("start button stays disabled after the refusal")
	}
	saveShot(t, ctx, "interviews-start-501.png")

	// The other pages, for a look.
	tour := []struct{ path, ready, shot string }{
		{"/positions", "positions-table", "positions.png"},
		{"/candidates", "candidates-table", "candidates.png"},
		{"/members", "members-table", "members.png"},
		{"/api-keys", "api-keys", "api-keys.png"},
		{"/settings", "secrets", "settings.png"},
	}
	for _, p := range tour {
		chromeStep(t, ctx, "open "+p.path, chromedp.Navigate(env.url+p.path), chromedp.WaitVisible(byCSS(`[data-testid=`+p.ready+`]`)))
		saveShot(t, ctx, p.shot)
	}
	chromeStep(t, ctx, "narrow window",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(env.url+"/interviews"),
		chromedp.WaitVisible(byCSS(`[data-testid=interviews-table]`)),
	)
	if w := jsEval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the page is %dpx wide in a 390px window", w)
	}
	saveShot(t, ctx, "interviews-mobile.png")
}

// seedDashShowcase stores a few interviews in various states for tenantID.
func seedDashShowcase(t *testing.T, env *dashEnv, tenantID string) {
	t.Helper()
	ctx := context.Background()
	pos, err := env.db.CreatePosition(ctx, store.Position{ID: store.NewID("pos_"), TenantID: tenantID, Title: "Product designer", Questions: []string{"Walk me through a redesign."}})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.db.SetSecret(ctx, tenantID, "OPENAI_API_KEY", "sk-test-not-shown"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.srv.newAPIKey(ctx, tenantID, "Greenhouse sync"); err != nil {
		t.Fatal(err)
	}
	hash, _ := hashPassword("recruiter password")
	if _, err := env.db.CreateUser(ctx, tenantID, "rae@example.com", "Rae Recruiter", store.RoleRecruiter, hash); err != nil {
		t.Fatal(err)
	}
	people := []struct {
		name   string
		status store.Status
	}{
		{"Ada Lovelace", store.StatusRunning},
		{"Alan Turing", store.StatusCompleted},
		{"Katherine Johnson", store.StatusFailed},
		{"Edsger Dijkstra", store.StatusCancelled},
	}
	for _, p := range people {
		email := strings.ToLower(strings.ReplaceAll(p.name, " ", ".")) + "@example.com"
		cand, err := env.db.CreateCandidate(ctx, store.Candidate{ID: store.NewID("cand_"), TenantID: tenantID, Name: p.name, Email: email})
		if err != nil {
			t.Fatal(err)
		}
		iv, err := env.db.CreateInterview(ctx, store.Interview{
			ID: store.NewID("int_"), TenantID: tenantID, PositionID: pos.ID, CandidateID: cand.ID,
			Status: store.StatusScheduled, ExpiresAt: time.Now().Add(72 * time.Hour),
		}, store.NewID("hash_"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.db.SetInterviewStatus(ctx, tenantID, iv.ID, p.status); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrowserLiveTranscript follows a running interview: entries published
// on the hub appear without reload, duplicates are ignored, a dropped
// connection resumes with since_seq, and the end of the interview stops the
// live view.
func TestBrowserLiveTranscript(t *testing.T) {
	env := newDashEnv(t)
	ctx := newDashChrome(t)
	hash, _ := hashPassword("correct horse battery")
	tenant, _, err := env.db.CreateTenantWithOwner(context.Background(), "Northwind Talent", "olive@example.com", "Olive Owner", hash)
	if err != nil {
		t.Fatal(err)
	}
	_, iv := env.seedInterview(tenant.ID, "Ada Lovelace", store.StatusRunning)

	var seq int64
	publish := func(speaker, text string) int64 {
		t.Helper()
		seq++
		ins, err := env.db.AppendEntries(context.Background(), tenant.ID, iv.ID, []store.Entry{
			{Seq: seq, Speaker: speaker, Text: text, StartMS: seq * 4000, EndMS: seq*4000 + 3000, Confidence: 0.9},
		})
		if err != nil || len(ins) != 1 {
			t.Fatalf("append entry %d: %v (%d inserted)", seq, err, len(ins))
		}
		env.hub.Publish("interview:"+iv.ID, realtime.TypeTranscriptEntry, seq, toEntryJSON(ins[0]))
		return seq
	}
	publish(store.SpeakerInterviewer, "Welcome, Ada. Shall we begin?")

	entryCount := `document.querySelectorAll("[data-testid=transcript-entry]").length`
	hasSeq := func(n int64) string {
		return fmt.Sprintf(`document.querySelector('[data-testid=transcript-entry][data-seq="%d"]') !== null`, n)
	}

	chromeStep(t, ctx, "sign in and open the interview",
		chromedp.Navigate(env.url+"/interviews/"+iv.ID),
		chromedp.WaitVisible(byCSS(`[data-testid=login-form]`)),
	)
	saveShot(t, ctx, "login.png")
	chromeStep(t, ctx, "sign in",
		chromedp.SendKeys(byCSS(`#email`), "olive@example.com"),
		chromedp.SendKeys(byCSS(`#password`), "correct horse battery"),
		chromedp.Click(byCSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=interview-detail]`)),
	)
	jsWait(t, ctx, "the live indicator", `document.querySelector("[data-testid=live-indicator]").dataset.state === "live"`)
	jsWait(t, ctx, "presence", `document.querySelector("[data-testid=presence]").textContent === "Only you are watching"`)

	// A second viewer (another tab of another member) shows up in presence.
	rae, _ := hashPassword("recruiter password")
	if _, err := env.db.CreateUser(context.Background(), tenant.ID, "rae@example.com", "Rae Recruiter", store.RoleRecruiter, rae); err != nil {
		t.Fatal(err)
	}
	// A new browser context has its own cookies, so Rae signs in beside Olive.
	tab, closeTab := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer closeTab()
	chromeStep(t, tab, "second viewer",
		chromedp.Navigate(env.url+"/login"),
		chromedp.WaitVisible(byCSS(`[data-testid=login-form]`)),
		chromedp.SendKeys(byCSS(`#email`), "rae@example.com"),
		chromedp.SendKeys(byCSS(`#password`), "recruiter password"),
		chromedp.Click(byCSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=interviews-table]`)),
		chromedp.Navigate(env.url+"/interviews/"+iv.ID),
		chromedp.WaitVisible(byCSS(`[data-testid=interview-detail]`)),
	)
	jsWait(t, ctx, "the second viewer in presence", `document.querySelector("[data-testid=presence]").textContent === "You and Rae Recruiter are watching"`)
	closeTab()
	jsWait(t, ctx, "the second viewer to leave", `document.querySelector("[data-testid=presence]").textContent === "Only you are watching"`)

	s2 := publish(store.SpeakerCandidate, "Yes, I'm ready. <b>Thanks</b> for having me.")
	jsWait(t, ctx, "entry 2 without reload", hasSeq(s2))
	if got := jsEval[string](t, ctx, fmt.Sprintf(`document.querySelector('[data-seq="%d"]').dataset.speaker`, s2)); got != "candidate" {
		t.Errorf("speaker = %q", got)
	}
	if got := jsEval[string](t, ctx, fmt.Sprintf(`document.querySelector('[data-seq="%d"] .entry-text').textContent`, s2)); got != "Yes, I'm ready. <b>Thanks</b> for having me." {
		t.Errorf("entry text = %q (markup must stay text)", got)
	}

	// A duplicate and an older seq are ignored.
	stored, _ := env.db.Entries(context.Background(), tenant.ID, iv.ID, 0)
	env.hub.Publish("interview:"+iv.ID, realtime.TypeTranscriptEntry, stored[1].Seq, toEntryJSON(stored[1]))
	env.hub.Publish("interview:"+iv.ID, realtime.TypeTranscriptEntry, stored[0].Seq, toEntryJSON(stored[0]))
	s3 := publish(store.SpeakerInterviewer, "Tell me about a system you built.")
	jsWait(t, ctx, "entry 3", hasSeq(s3))
	if n := jsEval[int](t, ctx, entryCount); n != 3 {
		t.Errorf("entries after duplicates = %d, want 3", n)
	}

	// A reader who scrolled up to reread is not yanked down; the others are
	// offered a way back to the latest entry.
	for i := 0; i < 12; i++ {
		publish(store.SpeakerCandidate, fmt.Sprintf("A longer answer, part %d, so that the transcript scrolls.", i+1))
	}
	jsWait(t, ctx, "the batch", hasSeq(seq))
	jsWait(t, ctx, "auto-scroll to the bottom", `(() => { const l = document.querySelector("[data-testid=transcript]"); return l.scrollHeight > l.clientHeight && l.scrollHeight - l.scrollTop - l.clientHeight < 40 })()`)
	jsEval[bool](t, ctx, `(() => { const l = document.querySelector("[data-testid=transcript]"); l.style.scrollBehavior = "auto"; l.scrollTop = 0; l.dispatchEvent(new Event("scroll")); return true })()`)
	held := publish(store.SpeakerInterviewer, "Interesting. What would you change?")
	jsWait(t, ctx, "the held entry", hasSeq(held))
	if below := jsEval[float64](t, ctx, `(() => { const l = document.querySelector("[data-testid=transcript]"); return l.scrollHeight - l.scrollTop - l.clientHeight })()`); below < 200 {
		t.Errorf("the transcript scrolled to %vpx from the bottom while the reader was reading above", below)
	}
	jsWait(t, ctx, "the jump button", `!document.querySelector("[data-testid=jump-latest]").hidden`)
	chromeStep(t, ctx, "jump to latest", chromedp.Click(byCSS(`[data-testid=jump-latest]`)))
	jsWait(t, ctx, "back at the bottom", `(() => { const l = document.querySelector("[data-testid=transcript]"); return l.scrollHeight - l.scrollTop - l.clientHeight < 40 })()`)

	// Drop the connection; what is published meanwhile arrives on resume.
	jsEval[bool](t, ctx, `window.Candor.live.drop(), true`)
	jsWait(t, ctx, "the reconnecting state", `document.querySelector("[data-testid=live-indicator]").dataset.state !== "live"`)
	s4 := publish(store.SpeakerCandidate, "I built a queue that survived a data-center failover.")
	jsWait(t, ctx, "entry 4 after reconnect", hasSeq(s4))
	jsWait(t, ctx, "live again", `document.querySelector("[data-testid=live-indicator]").dataset.state === "live"`)
	if n := jsEval[int](t, ctx, entryCount); int64(n) != s4 {
		t.Errorf("entries after resume = %d, want %d", n, s4)
	}
	order := jsEval[string](t, ctx, `Array.from(document.querySelectorAll("[data-testid=transcript-entry]")).map(e => e.dataset.seq).join(",")`)
	var want []string
	for i := int64(1); i <= s4; i++ {
		want = append(want, fmt.Sprint(i))
	}
	if order != strings.Join(want, ",") {
		t.Errorf("entry order = %s", order)
	}
	// A retired processor's late entry (epoch 1, its own number 2) gets
	// the next seq but was spoken 6 s in: it is slotted where it was said.
	late, err := env.db.Deliver(context.Background(), tenant.ID, iv.ID, 1, []store.Entry{
		{Seq: 2, Speaker: store.SpeakerCandidate, Text: "Heard before the hand-over.", StartMS: 6000, EndMS: 7000, Confidence: 0.9},
	})
	if err != nil || len(late) != 1 || late[0].Seq != s4+1 {
		t.Fatalf("late entry: %+v, %v", late, err)
	}
	env.hub.Publish("interview:"+iv.ID, realtime.TypeTranscriptEntry, late[0].Seq, toEntryJSON(late[0]))
	jsWait(t, ctx, "the late entry", hasSeq(late[0].Seq))
	order = jsEval[string](t, ctx, `Array.from(document.querySelectorAll("[data-testid=transcript-entry]")).slice(0, 3).map(e => e.dataset.seq).join(",")`)
	if want := fmt.Sprintf("1,%d,2", late[0].Seq); order != want {
		t.Errorf("the first entries are %s, want %s: the late entry belongs between the ones spoken at 4 s and 8 s", order, want)
	}
	saveShot(t, ctx, "interview-live.png")

	// The interview ends: the badge follows and the live view stops.
	done, err := env.db.SetInterviewStatus(context.Background(), tenant.ID, iv.ID, store.StatusCompleted)
	if err != nil {
		t.Fatal(err)
	}
	env.srv.publishStatus(done)
	jsWait(t, ctx, "the completed badge", `document.querySelector("[data-testid=interview-status] [data-testid=status-badge]").dataset.status === "completed"`)
	jsWait(t, ctx, "the live indicator to go", `document.querySelector("[data-testid=live-indicator]").hidden`)
	if n := jsEval[int](t, ctx, entryCount); int64(n) != s4+1 {
		t.Errorf("entries after the end = %d, want %d", n, s4+1)
	}

	// Reloaded after the end, the page shows the stored transcript and does
	// not go live.
	chromeStep(t, ctx, "reload", chromedp.Navigate(env.url+"/interviews/"+iv.ID), chromedp.WaitVisible(byCSS(`[data-testid=transcript]`)))
	if n := jsEval[int](t, ctx, entryCount); int64(n) != s4+1 {
		t.Errorf("stored transcript entries = %d, want %d", n, s4+1)
	}
	if order := jsEval[string](t, ctx, `Array.from(document.querySelectorAll("[data-testid=transcript-entry]")).slice(0, 3).map(e => e.dataset.seq).join(",")`); order != fmt.Sprintf("1,%d,2", s4+1) {
		t.Errorf("the reloaded page begins %s: the late entry belongs where it was spoken", order)
	}
	if live := jsEval[string](t, ctx, `document.querySelector("[data-testid=interview-detail]").dataset.live`); live != "false" {
		t.Errorf("a completed interview renders data-live=%s", live)
	}
}

func TestBrowserLiveTimelineAndList(t *testing.T) {
	env := newDashEnv(t)
	ctx := newDashChrome(t)
	bg := context.Background()
	hash, _ := hashPassword("correct horse battery")
	tenant, _, err := env.db.CreateTenantWithOwner(bg, "Northwind Talent", "olive@example.com", "Olive Owner", hash)
	if err != nil {
		t.Fatal(err)
	}
	_, iv := env.seedInterview(tenant.ID, "Ada Lovelace", store.StatusRunning)
	_, sched := env.seedInterview(tenant.ID, "Grace Hopper", store.StatusScheduled)
	if err := env.srv.recordEvent(bg, tenant.ID, iv.ID, "candidate.consented", nil); err != nil {
		t.Fatal(err)
	}

	eventCount := `document.querySelectorAll("[data-testid=timeline-list] [data-testid=event]").length`
	hasEvent := func(typ string) string {
		return fmt.Sprintf(`document.querySelector('[data-testid=timeline-list] [data-type="%s"]') !== null`, typ)
	}

	chromeStep(t, ctx, "sign in and open the interview",
		chromedp.Navigate(env.url+"/login"),
		chromedp.WaitVisible(byCSS(`[data-testid=login-form]`)),
		chromedp.SendKeys(byCSS(`#email`), "olive@example.com"),
		chromedp.SendKeys(byCSS(`#password`), "correct horse battery"),
		chromedp.Click(byCSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(byCSS(`[data-testid=interviews-table]`)),
		chromedp.Navigate(env.url+"/interviews/"+iv.ID),
		chromedp.WaitVisible(byCSS(`[data-testid=interview-detail]`)),
	)
	jsWait(t, ctx, "the live indicator", `document.querySelector("[data-testid=live-indicator]").dataset.state === "live"`)
	if !jsEval[bool](t, ctx, `document.querySelector("[data-testid=machine-facts]").hidden`) {
		t.Errorf("the machine facts show before any machine was launched")
	}

	// A machine is launched: the timeline and the machine card follow.
	if err := env.srv.recordEvent(bg, tenant.ID, iv.ID, "machine.launched", map[string]any{
		"machine_id": "mch_1", "provider": "fly", "region": "ams",
	}); err != nil {
		t.Fatal(err)
	}
	jsWait(t, ctx, "machine.launched on the timeline", hasEvent("machine.launched"))
	jsWait(t, ctx, "the machine card", `!document.querySelector("[data-testid=machine-facts]").hidden && document.querySelector("[data-testid=machine-none]").hidden`)
	if got := jsEval[string](t, ctx, `document.querySelector("[data-testid=machine-provider]").textContent + "/" + document.querySelector("[data-testid=machine-region]").textContent + "/" + document.querySelector("[data-testid=machine-state] .badge").textContent`); got != "fly/ams/running" {
		t.Errorf("machine card = %q", got)
	}
	if got := jsEval[string](t, ctx, `document.querySelector('[data-type="machine.launched"] .event-data').textContent`); !strings.Contains(got, `"region":"ams"`) {
		t.Errorf("event data = %q", got)
	}

	// An event recorded while the connection is down arrives on resume
	// (the page refetches the stored events), and none is shown twice.
	jsEval[bool](t, ctx, `window.Candor.live.drop(), true`)
	jsWait(t, ctx, "the reconnecting state", `document.querySelector("[data-testid=live-indicator]").dataset.state !== "live"`)
	if err := env.srv.recordEvent(bg, tenant.ID, iv.ID, "heartbeat.lost", map[string]any{"media_ms": 1200}); err != nil {
		t.Fatal(err)
	}
	jsWait(t, ctx, "heartbeat.lost after reconnect", hasEvent("heartbeat.lost"))
	jsWait(t, ctx, "live again", `document.querySelector("[data-testid=live-indicator]").dataset.state === "live"`)
	if err := env.srv.recordEvent(bg, tenant.ID, iv.ID, "machine.replaced", map[string]any{"new_machine_id": "mch_2"}); err != nil {
		t.Fatal(err)
	}
	jsWait(t, ctx, "machine.replaced", hasEvent("machine.replaced"))
	stored, err := env.db.Events(bg, tenant.ID, iv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := jsEval[int](t, ctx, eventCount); n != len(stored) {
		t.Errorf("timeline shows %d events, %d stored", n, len(stored))
	}
	var want []string
	for _, ev := range stored {
		want = append(want, fmt.Sprint(ev.ID))
	}
	if got := jsEval[string](t, ctx, `Array.from(document.querySelectorAll("[data-testid=timeline-list] [data-testid=event]")).map(e => e.dataset.eventId).join(",")`); got != strings.Join(want, ",") {
		t.Errorf("timeline ids = %s, want %s", got, strings.Join(want, ","))
	}
	saveShot(t, ctx, "interview-timeline-live.png")

	// The list follows status changes of every interview of the tenant.
	chromeStep(t, ctx, "open the list",
		chromedp.Navigate(env.url+"/interviews"),
		chromedp.WaitVisible(byCSS(`[data-testid=interviews-table]`)),
	)
	jsWait(t, ctx, "the list to subscribe", `document.querySelector("[data-testid=interviews]").dataset.liveState === "live"`)
	row := func(id string) string {
		return fmt.Sprintf(`document.querySelector('[data-testid=interview-row][data-id="%s"]')`, id)
	}
	if got := jsEval[string](t, ctx, row(sched.ID)+`.querySelector("[data-testid=cancel-interview]") ? "yes" : "no"`); got != "yes" {
		t.Fatalf("the scheduled row has no Cancel button")
	}
	if _, err := env.lc.Cancel(bg, tenant.ID, sched.ID); err != nil {
		t.Fatal(err)
	}
	jsWait(t, ctx, "the cancelled badge", row(sched.ID)+`.querySelector("[data-testid=status-badge]").dataset.status === "cancelled"`)
	if got := jsEval[int](t, ctx, row(sched.ID)+`.querySelectorAll("button[data-action]").length`); got != 0 {
		t.Errorf("a cancelled row keeps %d lifecycle buttons", got)
	}
	if !jsEval[bool](t, ctx, row(sched.ID)+`.querySelector("[data-testid=copy-invite]").hidden`) {
		t.Errorf("a cancelled row still offers its invite link")
	}
	done, err := env.db.SetInterviewStatus(bg, tenant.ID, iv.ID, store.StatusCompleted)
	if err != nil {
		t.Fatal(err)
	}
	env.srv.publishStatus(done)
	jsWait(t, ctx, "the completed badge", row(iv.ID)+`.querySelector("[data-testid=status-badge]").dataset.status === "completed" && !`+row(iv.ID)+`.querySelector("[data-testid=end-interview]")`)
	if got := jsEval[string](t, ctx, row(iv.ID)+`.querySelector("[data-testid=status-badge]").textContent`); got != "Completed" {
		t.Errorf("badge text = %q", got)
	}
	saveShot(t, ctx, "interviews-live.png")
}
