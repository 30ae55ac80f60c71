package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"candor/store"
)

// axeVersion is the axe-core the accessibility checks run (scripts/deps.sh
// installs it into .cache/axe).
const axeVersion = "4.14.1"

// axeSource reads axe.min.js from CANDOR_AXE_JS or the repository's
// .cache/axe; the check fails (not skips) without it, as CI installs it.
var axeSource = sync.OnceValues(func() (string, error) {
	path := os.Getenv("CANDOR_AXE_JS")
	if path == "" {
		_, file, _, _ := runtime.Caller(0)
		path = filepath.Join(filepath.Dir(file), "..", ".cache", "axe", "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("axe-core %s not found (run scripts/deps.sh): %w", axeVersion, err)
	}
	if !strings.Contains(string(b[:min(len(b), 200)]), axeVersion) {
		return "", fmt.Errorf("%s is not axe-core %s", path, axeVersion)
	}
	return string(b), nil
})

// axeViolation is one rule broken on a page, with the elements it hit.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// runAxe injects axe-core into the current page and returns its WCAG 2.2 A
// and AA violations.
func runAxe(t *testing.T, ctx context.Context) []axeViolation {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`(function(){ if (window.axe) return true; `+src+`; return true; })()`)); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	raw, err := chromedp.Run(sctx, chromedp.Evaluate[string](`axe.run(document, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
		resultTypes: ["violations"]
	}).then(r => JSON.stringify(r.violations))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run axe-core: %v", err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatalf("axe-core result: %v", err)
	}
	return vs
}

// a11yReport collects what axe found on every page, for the test's log and
// its failure.
type a11yReport struct {
	mu    sync.Mutex
	lines []string
}

// check runs axe on the page as it is and fails on any serious or critical
// violation; minor and moderate ones are logged.
func (r *a11yReport) check(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	vs := runAxe(t, ctx)
	counts := map[string]int{}
	for _, v := range vs {
		counts[v.Impact]++
		var where []string
		for _, n := range v.Nodes {
			where = append(where, fmt.Sprint(n.Target...))
			if len(where) == 3 {
				break
			}
		}
		msg := fmt.Sprintf("%s: %s [%s] %s (%d nodes: %s)", page, v.ID, v.Impact, v.Help, len(v.Nodes), strings.Join(where, ", "))
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("axe: %s\n  %s", msg, firstLine(v))
		} else {
			t.Logf("axe (not failing): %s", msg)
		}
	}
	r.mu.Lock()
	r.lines = append(r.lines, fmt.Sprintf("%-48s critical %d, serious %d, moderate %d, minor %d", page, counts["critical"], counts["serious"], counts["moderate"], counts["minor"]))
	r.mu.Unlock()
}

func firstLine(v axeViolation) string {
	if len(v.Nodes) == 0 {
		return ""
	}
	s, _, _ := strings.Cut(v.Nodes[0].Summary, "\n  ")
	return s
}

// TestAccessibility opens every dashboard and candidate page, at 1280 px
// and 390 px, runs axe-core on each and fails on any serious or critical
// WCAG 2.2 A/AA violation. Screenshots land in /tmp/candor-shots/a11y-*.
func TestAccessibility(t *testing.T) {
	env := newDashEnv(t)
	ctx := newDashChrome(t)
	bg := context.Background()
	hash, _ := hashPassword("correct horse battery")
	tenant, owner, err := env.db.CreateTenantWithOwner(bg, "Northwind Talent", "olive@example.com", "Olive Owner", hash)
	if err != nil {
		t.Fatal(err)
	}
	pos, scheduled := env.seedInterview(tenant.ID, "Ada Lovelace", store.StatusScheduled)
	_, running := env.seedInterview(tenant.ID, "Grace Hopper", store.StatusRunning)
	_, completed := env.seedInterview(tenant.ID, "Katherine Johnson", store.StatusRunning)
	if _, err := env.db.AppendEntries(bg, tenant.ID, running.ID, []store.Entry{
		{Seq: 1, Speaker: store.SpeakerInterviewer, Text: "Hello, I am Candor. Could you introduce yourself?", StartMS: 0, EndMS: 3000},
		{Seq: 2, Speaker: store.SpeakerCandidate, Text: "I build compilers and teach.", StartMS: 3500, EndMS: 6000},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.db.AppendEntries(bg, tenant.ID, completed.ID, []store.Entry{
		{Seq: 1, Speaker: store.SpeakerInterviewer, Text: "Tell me about orbital mechanics.", StartMS: 0, EndMS: 3000},
		{Seq: 2, Speaker: store.SpeakerCandidate, Text: "I computed trajectories by hand.", StartMS: 3500, EndMS: 6000},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.db.AppendEvent(bg, tenant.ID, completed.ID, "machine.launched", map[string]any{"provider": "local", "region": "local", "url": "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.db.SetInterviewStatus(bg, tenant.ID, completed.ID, store.StatusCompleted); err != nil {
		t.Fatal(err)
	}
	cancelled, err := env.db.CreateInterview(bg, store.Interview{ID: store.NewID("int_"), TenantID: tenant.ID, PositionID: pos.ID, CandidateID: scheduled.CandidateID,
		Status: store.StatusScheduled, ExpiresAt: time.Now().Add(time.Hour)}, store.NewID("hash_"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.db.SetInterviewStatus(bg, tenant.ID, cancelled.ID, store.StatusCancelled); err != nil {
		t.Fatal(err)
	}
	// The candidate's own link.
	invited := store.Interview{ID: store.NewID("int_"), TenantID: tenant.ID, PositionID: pos.ID, CandidateID: scheduled.CandidateID,
		Status: store.StatusScheduled, ExpiresAt: time.Now().Add(time.Hour)}
	if _, err := env.db.CreateInterview(bg, invited, tokenHash(env.srv.inviteToken(invited.ID))); err != nil {
		t.Fatal(err)
	}
	if _, err := env.db.CreateUser(bg, tenant.ID, "vic@example.com", "Vic Viewer", store.RoleViewer, hash); err != nil {
		t.Fatal(err)
	}
	_ = owner
	// Pages of issue 14 part A: a member's live invitation link, and an
	// interview whose window has not opened yet.
	invitee, err := env.db.AddMember(bg, tenant.ID, "newcomer@example.com", "Nia Newcomer", store.RoleRecruiter)
	if err != nil {
		t.Fatal(err)
	}
	inviteLink := randomToken()
	if err := env.db.CreatePersonToken(bg, store.PersonToken{Hash: tokenHash(inviteLink), PersonID: invitee.PersonID,
		Purpose: store.TokenInvite, TenantID: tenant.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	opens := time.Now().Add(48 * time.Hour)
	early := store.Interview{ID: store.NewID("int_"), TenantID: tenant.ID, PositionID: pos.ID, CandidateID: scheduled.CandidateID,
		Status: store.StatusScheduled, AvailableFrom: &opens, ExpiresAt: opens.Add(time.Hour)}
	if _, err := env.db.CreateInterview(bg, early, tokenHash(env.srv.inviteToken(early.ID))); err != nil {
		t.Fatal(err)
	}

	report := &a11yReport{}
	pages := []struct {
		name, path, ready string
		// prepare runs after load, e.g. to submit a form and get its
		// errors.
		prepare func(t *testing.T)
	}{
		{name: "interviews", path: "/interviews", ready: "interviews-table"},
		{name: "interviews-filtered", path: "/interviews?q=ada&sort=candidate", ready: "interviews-table"},
		{name: "interview-scheduled", path: "/interviews/" + scheduled.ID, ready: "interview-detail"},
		{name: "interview-running", path: "/interviews/" + running.ID, ready: "interview-detail"},
		{name: "interview-completed", path: "/interviews/" + completed.ID, ready: "interview-detail", prepare: func(t *testing.T) {
			chromeStep(t, ctx, "open technical details", chromedp.Click(byCSS(`[data-testid=technical-details] summary`)))
		}},
		{name: "interview-cancelled", path: "/interviews/" + cancelled.ID, ready: "interview-detail"},
		{name: "positions", path: "/positions", ready: "positions-table"},
		{name: "position-new", path: "/positions/new", ready: "position-form"},
		{name: "position-edit", path: "/positions/" + pos.ID, ready: "position-form"},
		{name: "position-errors", path: "/positions/new", ready: "position-form", prepare: func(t *testing.T) {
			chromeStep(t, ctx, "submit an empty position",
				chromedp.Click(byCSS(`[data-testid=position-submit]`)),
				chromedp.WaitVisible(byCSS(`[data-testid=form-error]`)))
		}},
		{name: "candidates", path: "/candidates", ready: "candidates-table"},
		{name: "candidate-errors", path: "/candidates", ready: "create-candidate-form", prepare: func(t *testing.T) {
			chromeStep(t, ctx, "submit an empty candidate",
				chromedp.Click(byCSS(`[data-testid=create-candidate-submit]`)),
				chromedp.WaitVisible(byCSS(`[data-testid=form-error]`)))
		}},
		{name: "candidate-record", path: "/candidates/" + scheduled.CandidateID, ready: "candidate-form"},
		{name: "search", path: "/search?q=" + url.QueryEscape("trajectories"), ready: "search-results"},
		{name: "members", path: "/members", ready: "page-title"},
		{name: "api-keys", path: "/api-keys", ready: "page-title"},
		{name: "settings", path: "/settings", ready: "page-title"},
		{name: "not-found", path: "/interviews/int_nope", ready: "error-page"},
		// The chooser has no navigation (it is also a sign-in step), so it
		// is not the last page: sign-out needs the menu.
		{name: "choose-organization", path: "/login/organization", ready: "choose-org"},
		{name: "account", path: "/account", ready: "change-password-form"},
		{name: "webhooks", path: "/webhooks", ready: "add-webhook-form"},
		{name: "retention", path: "/retention", ready: "retention-form"},
	}
	candidateSteps := []string{"welcome", "consent", "devices", "live", "closing"}

	for _, width := range []int64{1280, 390} {
		height := int64(860)
		if width == 390 {
			height = 844
		}
		chromeStep(t, ctx, fmt.Sprintf("viewport %d", width), chromedp.EmulateViewport(width, height))
		// Signed out: the login page and the candidate's pages.
		chromeStep(t, ctx, "the login page", chromedp.Navigate(env.url+"/login"), chromedp.WaitVisible(byCSS(`[data-testid=login-form]`)))
		report.check(t, ctx, fmt.Sprintf("login@%d", width))
		saveShot(t, ctx, fmt.Sprintf("a11y-login@%d.png", width))

		chromeStep(t, ctx, "the candidate's invite page", chromedp.Navigate(env.url+"/i/"+env.srv.inviteToken(invited.ID)), chromedp.WaitVisible(byCSS(`[data-step=welcome]`)))
		for _, step := range candidateSteps {
			// Each step as the candidate would see it: the others hidden.
			jsEval[bool](t, ctx, fmt.Sprintf(`document.querySelectorAll("[data-step]").forEach(s => s.hidden = s.getAttribute("data-step") !== %q), true`, step))
			name := fmt.Sprintf("candidate-%s@%d", step, width)
			report.check(t, ctx, name)
			saveShot(t, ctx, "a11y-"+name+".png")
		}
		chromeStep(t, ctx, "a bad invite link", chromedp.Navigate(env.url+"/i/not-a-token"), chromedp.WaitVisible(byCSS(`body`)))
		report.check(t, ctx, fmt.Sprintf("candidate-bad-link@%d", width))
		saveShot(t, ctx, fmt.Sprintf("a11y-candidate-bad-link@%d.png", width))

		for _, sp := range []struct{ name, path, ready string }{
			{"forgot-password", "/password/forgot", "forgot"},
			{"member-invitation", invitationPath + inviteLink, "set-password-form"},
			{"spent-link", resetPath + "not-a-token", "link-invalid"},
			{"candidate-not-open-yet", "/i/" + env.srv.inviteToken(early.ID), "notice-time"},
		} {
			chromeStep(t, ctx, "open "+sp.name, chromedp.Navigate(env.url+sp.path), chromedp.WaitVisible(byCSS(`[data-testid=`+sp.ready+`]`)))
			name := fmt.Sprintf("%s@%d", sp.name, width)
			report.check(t, ctx, name)
			saveShot(t, ctx, "a11y-"+name+".png")
		}

		chromeStep(t, ctx, "sign in",
			chromedp.Navigate(env.url+"/login"),
			chromedp.WaitVisible(byCSS(`[data-testid=login-form]`)),
			chromedp.SendKeys(byCSS(`#email`), "olive@example.com"),
			chromedp.SendKeys(byCSS(`#password`), "correct horse battery"),
			chromedp.Click(byCSS(`[data-testid=login-submit]`)),
			chromedp.WaitVisible(byCSS(`[data-testid=interviews-table]`)),
		)
		for _, p := range pages {
			chromeStep(t, ctx, "open "+p.path, chromedp.Navigate(env.url+p.path), chromedp.WaitVisible(byCSS(`[data-testid=`+p.ready+`]`)))
			if p.prepare != nil {
				p.prepare(t)
			}
			name := fmt.Sprintf("%s@%d", p.name, width)
			report.check(t, ctx, name)
			saveShot(t, ctx, "a11y-"+name+".png")
			if width == 390 {
				// Nothing may push the page sideways at a phone's width.
				if w := jsEval[float64](t, ctx, `document.documentElement.scrollWidth`); w > 392 {
					t.Errorf("%s: the page is %.0f px wide at a 390 px viewport", name, w)
				}
			}
		}
		jsEval[bool](t, ctx, `document.querySelector("[data-testid=logout]").form.submit(), true`)
		chromeStep(t, ctx, "sign out", chromedp.WaitVisible(byCSS(`[data-testid=login-form]`)))
	}
	t.Logf("axe-core %s, WCAG 2.2 A/AA:\n%s", axeVersion, strings.Join(report.lines, "\n"))
}
