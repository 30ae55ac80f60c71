package views

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
	"golang.org/x/net/html"

	"candor/store"
)

// hostile is user content that must come out as text, never as markup.
const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>`

// doc is a rendered component, parsed.
type doc struct {
	t    *testing.T
	raw  string
	root *html.Node
}

func renderDoc(t *testing.T, c templ.Component) doc {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	root, err := html.Parse(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc{t: t, raw: buf.String(), root: root}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func (d doc) all(match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for n := range d.root.Descendants() {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
	}
	return out
}

func (d doc) byTestID(id string) []*html.Node {
	return d.all(func(n *html.Node) bool { v, _ := attr(n, "data-testid"); return v == id })
}

func (d doc) has(id string) bool { return len(d.byTestID(id)) > 0 }

func (d doc) mustHave(ids ...string) {
	d.t.Helper()
	for _, id := range ids {
		if !d.has(id) {
			d.t.Errorf("no element with data-testid=%q", id)
		}
	}
}

func (d doc) mustNotHave(ids ...string) {
	d.t.Helper()
	for _, id := range ids {
		if d.has(id) {
			d.t.Errorf("unexpected element with data-testid=%q", id)
		}
	}
}

func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

// mustBeInert checks that hostile content appears as text and created no
// element or attribute.
func (d doc) mustBeInert() {
	d.t.Helper()
	if strings.Contains(d.raw, hostile) {
		d.t.Errorf("hostile content rendered unescaped")
	}
	for _, n := range d.all(func(n *html.Node) bool { return n.Data == "script" || n.Data == "img" }) {
		if strings.Contains(text(n), "alert") {
			d.t.Errorf("hostile content became a <%s> element", n.Data)
		}
		if _, ok := attr(n, "onerror"); ok {
			d.t.Errorf("hostile content became an onerror attribute")
		}
	}
	found := false
	for n := range d.root.Descendants() {
		if n.Type == html.TextNode && strings.Contains(n.Data, hostile) {
			found = true
		}
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if strings.Contains(a.Val, hostile) {
					found = true
				}
			}
		}
	}
	if !found {
		d.t.Errorf("hostile content not shown as text at all")
	}
}

func (d doc) csrfFieldsEqual(token string) {
	d.t.Helper()
	forms := d.all(func(n *html.Node) bool {
		m, _ := attr(n, "method")
		return n.Data == "form" && strings.EqualFold(m, "post")
	})
	for _, f := range forms {
		ok := false
		for n := range f.Descendants() {
			if n.Type == html.ElementNode && n.Data == "input" {
				if name, _ := attr(n, "name"); name == "_csrf" {
					v, _ := attr(n, "value")
					ok = v == token
				}
			}
		}
		if !ok {
			action, _ := attr(f, "action")
			d.t.Errorf("form %s has no _csrf field with the session token", action)
		}
	}
}

var (
	owner     = &User{ID: "usr_1", Name: "Ada Owner", Email: "ada@example.com", Role: store.RoleOwner}
	recruiter = &User{ID: "usr_2", Name: "Rae Recruiter", Email: "rae@example.com", Role: store.RoleRecruiter}
	viewer    = &User{ID: "usr_3", Name: "Vic Viewer", Email: "vic@example.com", Role: store.RoleViewer}
	when      = time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)
)

func pageAs(u *User) Page {
	return Page{Title: "T", Org: "Acme " + hostile, User: u, CSRF: "tok123", AssetVersion: "v1"}
}

func samplePosition() store.Position {
	return store.Position{
		ID: "pos_1", Title: "Engineer " + hostile, Description: hostile,
		Questions: []string{"Why us?", hostile},
		Rubric:    []store.RubricItem{{Name: "Clarity", Description: hostile, Weight: 2}},
		CreatedAt: when, UpdatedAt: when,
	}
}

func sampleInterviews() Interviews {
	return Interviews{
		Rows: []InterviewRow{
			{Interview: store.Interview{ID: "iv_1", Status: store.StatusScheduled, CreatedAt: when}, CandidateName: hostile, CandidateEmail: "c@example.com", PositionTitle: "Engineer", InviteURL: "http://x/i/abc"},
			{Interview: store.Interview{ID: "iv_2", Status: store.StatusRunning, CreatedAt: when}, CandidateName: "Bo", PositionTitle: "Engineer", InviteURL: "http://x/i/def"},
			{Interview: store.Interview{ID: "iv_3", Status: store.StatusCompleted, CreatedAt: when}, CandidateName: "Cy", PositionTitle: "Engineer"},
		},
		Positions:  []store.Position{samplePosition()},
		Candidates: []store.Candidate{{ID: "cand_1", Name: "Bo", Email: "bo@example.com"}},
	}
}

func TestLayoutShowsNavigationOrgAndUser(t *testing.T) {
	p := pageAs(owner)
	p.Nav = "positions"
	p.Flash = &Flash{Kind: "success", Message: "Saved " + hostile}
	d := renderDoc(t, PositionsPage(p, nil))
	d.mustHave("app", "nav", "nav-interviews", "nav-positions", "nav-candidates", "nav-members", "nav-api-keys", "nav-settings", "org-name", "user-menu", "user-role", "logout", "flash", "page-title")
	if cur, _ := attr(d.byTestID("nav-positions")[0], "aria-current"); cur != "page" {
		t.Errorf("active nav item has aria-current=%q, want page", cur)
	}
	if got := text(d.byTestID("org-name")[0]); got != "Acme "+hostile {
		t.Errorf("org name = %q", got)
	}
	d.mustBeInert()
	d.csrfFieldsEqual("tok123")
	metas := d.all(func(n *html.Node) bool { v, _ := attr(n, "name"); return n.Data == "meta" && v == "csrf-token" })
	if len(metas) != 1 {
		t.Fatalf("want one csrf-token meta, got %d", len(metas))
	}
	if !strings.Contains(d.raw, `/static/app.css?v=v1`) || !strings.Contains(d.raw, `/static/app.js?v=v1`) {
		t.Errorf("assets are not versioned")
	}
}

func TestInterviewsPage(t *testing.T) {
	t.Run("a recruiter sees the create form, copy links and lifecycle buttons", func(t *testing.T) {
		d := renderDoc(t, InterviewsPage(pageAs(recruiter), sampleInterviews()))
		d.mustHave("create-interview", "create-interview-form", "status-filter", "filter-all", "filter-running", "interviews-table", "copy-invite", "start-interview", "end-interview", "action-message")
		d.mustNotHave("interviews-empty", "interviews-prereq", "readonly-note")
		if n := len(d.byTestID("interview-row")); n != 3 {
			t.Errorf("rows = %d, want 3", n)
		}
		badges := d.byTestID("status-badge")
		var got []string
		for _, b := range badges {
			s, _ := attr(b, "data-status")
			got = append(got, s)
		}
		if strings.Join(got, ",") != "scheduled,running,completed" {
			t.Errorf("badges = %v", got)
		}
		// A completed interview has no invite link and no lifecycle button.
		if n := len(d.byTestID("copy-invite")); n != 2 {
			t.Errorf("copy buttons = %d, want 2", n)
		}
		copyURL, _ := attr(d.byTestID("copy-invite")[0], "data-copy")
		if copyURL != "http://x/i/abc" {
			t.Errorf("copy button carries %q", copyURL)
		}
		d.mustBeInert()
		d.csrfFieldsEqual("tok123")
	})
	t.Run("a viewer sees no write controls", func(t *testing.T) {
		d := renderDoc(t, InterviewsPage(pageAs(viewer), sampleInterviews()))
		d.mustHave("interviews-table", "readonly-note")
		d.mustNotHave("create-interview", "start-interview", "end-interview", "cancel-interview")
		if _, ok := attr(d.byTestID("interviews")[0], "data-can-write"); ok {
			t.Errorf("a viewer's list is marked data-can-write")
		}
	})
	t.Run("the list names its tenant topic and offers retry and cancel where they fit", func(t *testing.T) {
		data := sampleInterviews()
		data.TenantID = "ten_1"
		data.Rows = append(data.Rows,
			InterviewRow{Interview: store.Interview{ID: "iv_4", Status: store.StatusFailed, CreatedAt: when}, CandidateName: "Di", InviteURL: "http://x/i/ghi", CanRetry: true},
			InterviewRow{Interview: store.Interview{ID: "iv_5", Status: store.StatusFailed, CreatedAt: when}, CandidateName: "Ed", InviteURL: "http://x/i/jkl"},
		)
		d := renderDoc(t, InterviewsPage(pageAs(recruiter), data))
		sec := d.byTestID("interviews")[0]
		if v, _ := attr(sec, "data-tenant"); v != "ten_1" {
			t.Errorf("data-tenant = %q", v)
		}
		if _, ok := attr(sec, "data-can-write"); !ok {
			t.Errorf("a recruiter's list is not marked data-can-write")
		}
		if !strings.Contains(d.raw, "/static/live.js?v=v1") {
			t.Errorf("the list does not load live.js")
		}
		actions := map[string][]string{}
		for _, row := range d.byTestID("interview-row") {
			id, _ := attr(row, "data-id")
			for n := range row.Descendants() {
				if tid, _ := attr(n, "data-testid"); n.Type == html.ElementNode && n.Data == "button" {
					actions[id] = append(actions[id], tid)
				}
			}
		}
		want := map[string]string{
			"iv_1": "copy-invite,start-interview,cancel-interview",
			"iv_2": "copy-invite,end-interview",
			"iv_3": "",
			"iv_4": "copy-invite,retry-interview,cancel-interview",
			"iv_5": "",
		}
		for id, w := range want {
			if got := strings.Join(actions[id], ","); got != w {
				t.Errorf("%s buttons = %q, want %q", id, got, w)
			}
		}
	})
	t.Run("without positions or candidates the page says what to do first", func(t *testing.T) {
		d := renderDoc(t, InterviewsPage(pageAs(owner), Interviews{}))
		d.mustHave("interviews-prereq", "prereq-position", "prereq-candidate", "interviews-empty")
		d.mustNotHave("create-interview-form", "interviews-table")
		if !strings.Contains(text(d.byTestID("interviews-empty")[0]), "Create a position") {
			t.Errorf("empty state does not say to create a position first")
		}
	})
	t.Run("the active filter is marked", func(t *testing.T) {
		data := sampleInterviews()
		data.Filter = store.StatusRunning
		data.Rows = nil
		d := renderDoc(t, InterviewsPage(pageAs(owner), data))
		if cur, _ := attr(d.byTestID("filter-running")[0], "aria-current"); cur != "true" {
			t.Errorf("running filter not marked current")
		}
		d.mustHave("interviews-empty")
	})
	t.Run("form errors are shown next to their field", func(t *testing.T) {
		data := sampleInterviews()
		data.Errors = FormErrors{"position_id": "Choose a position."}
		d := renderDoc(t, InterviewsPage(pageAs(owner), data))
		d.mustHave("error-position_id")
		sel := d.all(func(n *html.Node) bool { id, _ := attr(n, "id"); return id == "position_id" })[0]
		if v, _ := attr(sel, "aria-invalid"); v != "true" {
			t.Errorf("invalid select not marked aria-invalid")
		}
	})
}

func sampleDetail(status store.Status) InterviewDetail {
	started := when.Add(time.Minute)
	return InterviewDetail{
		Interview: store.Interview{ID: "iv_9", Status: status, CreatedAt: when, StartedAt: &started, ExpiresAt: when.Add(24 * time.Hour)},
		Candidate: store.Candidate{ID: "cand_1", Name: hostile, Email: "c@example.com"},
		Position:  samplePosition(),
		Machine:   &store.Machine{Provider: "local", Region: "ams", State: "running"},
		Entries: []store.Entry{
			{Seq: 1, Speaker: "interviewer", Text: "Hello, tell me about yourself.", StartMS: 0},
			{Seq: 2, Speaker: "candidate", Text: hostile, StartMS: 65000},
		},
		Events:         []store.Event{{Type: "machine.launched", At: when, Data: json.RawMessage(`{"provider":"local"}`)}},
		MachineSeconds: 125,
		InviteURL:      "http://x/i/tok",
	}
}

func TestInterviewPage(t *testing.T) {
	t.Run("a running interview renders its transcript for the live view to extend", func(t *testing.T) {
		d := renderDoc(t, InterviewPage(pageAs(recruiter), sampleDetail(store.StatusRunning)))
		d.mustHave("interview-detail", "interview-status", "transcript", "live-indicator", "presence", "machine", "machine-provider", "machine-region", "machine-state", "machine-time", "timeline", "event", "candidate-name", "position-title", "end-interview", "copy-invite")
		d.mustNotHave("recording")
		root := d.byTestID("interview-detail")[0]
		for k, want := range map[string]string{"data-interview": "iv_9", "data-last-seq": "2", "data-live": "true", "data-status": "running"} {
			if got, _ := attr(root, k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		entries := d.byTestID("transcript-entry")
		if len(entries) != 2 {
			t.Fatalf("entries = %d, want 2", len(entries))
		}
		if sp, _ := attr(entries[1], "data-speaker"); sp != "candidate" {
			t.Errorf("speaker = %q", sp)
		}
		if seq, _ := attr(entries[1], "data-seq"); seq != "2" {
			t.Errorf("seq = %q", seq)
		}
		if !strings.Contains(text(entries[1]), "1:05") {
			t.Errorf("entry does not show its media-clock time: %q", text(entries[1]))
		}
		if got := text(d.byTestID("machine-time")[0]); got != "2m 05s" {
			t.Errorf("machine time = %q", got)
		}
		d.mustBeInert()
	})
	t.Run("a completed interview with a recording shows the player and is not live", func(t *testing.T) {
		data := sampleDetail(store.StatusCompleted)
		data.InviteURL = ""
		data.RecordingURL = "/api/v1/interviews/iv_9/recording"
		d := renderDoc(t, InterviewPage(pageAs(viewer), data))
		d.mustHave("recording", "recording-player")
		d.mustNotHave("end-interview", "start-interview", "copy-invite")
		if live, _ := attr(d.byTestID("interview-detail")[0], "data-live"); live != "false" {
			t.Errorf("data-live = %q", live)
		}
		src, _ := attr(d.byTestID("recording-player")[0], "src")
		if src != "/api/v1/interviews/iv_9/recording" {
			t.Errorf("player src = %q", src)
		}
	})
	t.Run("a recording in two parts (a replaced processor) has one player and a link per part", func(t *testing.T) {
		data := sampleDetail(store.StatusCompleted)
		data.RecordingURL = "/api/v1/interviews/iv_9/recording"
		data.RecordingParts = []RecordingPart{
			{URL: "/api/v1/interviews/iv_9/recording", StartMS: 0},
			{URL: "/api/v1/interviews/iv_9/recording?part=2", StartMS: 87_000},
		}
		d := renderDoc(t, InterviewPage(pageAs(viewer), data))
		players, labels := d.byTestID("recording-player"), d.byTestID("recording-part")
		if len(players) != 1 || len(labels) != 2 {
			t.Fatalf("%d players, %d labels", len(players), len(labels))
		}
		if src, _ := attr(players[0], "src"); src != "/api/v1/interviews/iv_9/recording" {
			t.Errorf("player src = %q, want part 1", src)
		}
		if href, _ := attr(labels[1], "href"); href != "/api/v1/interviews/iv_9/recording?part=2" {
			t.Errorf("second part links to %q", href)
		}
		if start, _ := attr(labels[1], "data-part-start-ms"); start != "87000" {
			t.Errorf("second part starts at %q", start)
		}
		if got := text(labels[1]); !strings.Contains(got, "Part 2") || !strings.Contains(got, fmtClock(87_000)) {
			t.Errorf("second label = %q", got)
		}
	})
	t.Run("an interview without transcript or machine says so", func(t *testing.T) {
		data := sampleDetail(store.StatusScheduled)
		data.Entries, data.Machine, data.Events = nil, nil, nil
		d := renderDoc(t, InterviewPage(pageAs(owner), data))
		d.mustHave("transcript-empty", "start-interview", "cancel-interview", "machine-none", "timeline-empty")
		d.mustNotHave("transcript-entry", "event", "retry-interview")
		for id, wantHidden := range map[string]bool{
			"transcript-empty": false, "machine-none": false, "timeline-empty": false,
			// Rendered hidden so the live view can fill them in.
			"machine-facts": true, "timeline-list": true,
		} {
			if _, hidden := attr(d.byTestID(id)[0], "hidden"); hidden != wantHidden {
				t.Errorf("%s hidden = %v, want %v", id, hidden, wantHidden)
			}
		}
	})
	t.Run("timeline events carry their id for the live view to skip", func(t *testing.T) {
		data := sampleDetail(store.StatusRunning)
		data.Events = []store.Event{{ID: 41, Type: "machine.launched", At: when}, {ID: 42, Type: "processor.ready", At: when}}
		d := renderDoc(t, InterviewPage(pageAs(owner), data))
		var ids []string
		for _, n := range d.byTestID("event") {
			id, _ := attr(n, "data-event-id")
			ids = append(ids, id)
		}
		if strings.Join(ids, ",") != "41,42" {
			t.Errorf("event ids = %v", ids)
		}
	})
	t.Run("the candidate's video plays beside the audio recording", func(t *testing.T) {
		data := sampleDetail(store.StatusCompleted)
		data.RecordingURL = "/api/v1/interviews/iv_9/recording"
		data.VideoURL = "/api/v1/interviews/iv_9/video"
		d := renderDoc(t, InterviewPage(pageAs(viewer), data))
		d.mustHave("video", "interview-video", "recording-player")
		v := d.byTestID("interview-video")[0]
		if v.Data != "video" {
			t.Errorf("interview-video is a <%s>, want <video>", v.Data)
		}
		if src, _ := attr(v, "src"); src != "/api/v1/interviews/iv_9/video" {
			t.Errorf("video src = %q", src)
		}
		if _, ok := attr(v, "controls"); !ok {
			t.Errorf("the video has no controls")
		}
	})
	t.Run("without a video there is no video card", func(t *testing.T) {
		data := sampleDetail(store.StatusCompleted)
		data.RecordingURL = "/api/v1/interviews/iv_9/recording"
		d := renderDoc(t, InterviewPage(pageAs(viewer), data))
		d.mustHave("recording-player")
		d.mustNotHave("video", "interview-video")
	})
	t.Run("a failed interview that never ran offers Retry and Cancel", func(t *testing.T) {
		data := sampleDetail(store.StatusFailed)
		data.Interview.StartedAt = nil
		data.CanRetry = true
		d := renderDoc(t, InterviewPage(pageAs(recruiter), data))
		d.mustHave("retry-interview", "cancel-interview", "copy-invite")
		d.mustNotHave("start-interview", "end-interview")
		btn := d.byTestID("retry-interview")[0]
		if a, _ := attr(btn, "data-action"); a != "start" {
			t.Errorf("retry posts %q, want start", a)
		}
		d = renderDoc(t, InterviewPage(pageAs(viewer), data))
		d.mustNotHave("retry-interview", "cancel-interview")
	})
	t.Run("a failed interview that ran offers nothing", func(t *testing.T) {
		data := sampleDetail(store.StatusFailed)
		data.InviteURL = ""
		d := renderDoc(t, InterviewPage(pageAs(owner), data))
		d.mustNotHave("retry-interview", "cancel-interview", "start-interview", "end-interview", "copy-invite")
	})
}

func TestPositionPages(t *testing.T) {
	t.Run("the list links each position and counts its plan", func(t *testing.T) {
		d := renderDoc(t, PositionsPage(pageAs(owner), []store.Position{samplePosition()}))
		d.mustHave("new-position", "positions-table", "position-row", "position-link")
		if got := text(d.byTestID("position-questions")[0]); got != "2 questions" {
			t.Errorf("questions cell = %q", got)
		}
		if got := text(d.byTestID("position-rubric")[0]); got != "1 criterion" {
			t.Errorf("rubric cell = %q", got)
		}
		d.mustBeInert()
	})
	t.Run("an empty list invites writers to create one", func(t *testing.T) {
		d := renderDoc(t, PositionsPage(pageAs(owner), nil))
		d.mustHave("positions-empty", "new-position")
		v := renderDoc(t, PositionsPage(pageAs(viewer), nil))
		v.mustNotHave("new-position")
	})
	t.Run("the editor holds questions one per line and rubric rows", func(t *testing.T) {
		d := renderDoc(t, PositionPage(pageAs(owner), PositionFormFrom(samplePosition()), nil))
		d.mustHave("position-form", "position-title-input", "questions-input", "rubric-rows", "rubric-row", "rubric-name", "rubric-weight", "position-submit", "question-plan", "rubric")
		if got := text(d.byTestID("questions-input")[0]); got != "Why us?\n"+hostile {
			t.Errorf("questions textarea = %q", got)
		}
		if w, _ := attr(d.byTestID("rubric-weight")[0], "value"); w != "2" {
			t.Errorf("weight = %q", w)
		}
		// One filled row plus empty rows to add criteria without JS.
		if n := len(d.byTestID("rubric-row")); n < 2 {
			t.Errorf("rubric rows = %d, want the filled one and spares", n)
		}
		form := d.byTestID("position-form")[0]
		if action, _ := attr(form, "action"); action != "/positions/pos_1" {
			t.Errorf("form action = %q", action)
		}
		d.mustBeInert()
		d.csrfFieldsEqual("tok123")
	})
	t.Run("a viewer sees the fields disabled and no save button", func(t *testing.T) {
		d := renderDoc(t, PositionPage(pageAs(viewer), PositionFormFrom(samplePosition()), nil))
		d.mustNotHave("position-submit", "rubric-add")
		d.mustHave("readonly-note")
		for _, fs := range d.all(func(n *html.Node) bool { return n.Data == "fieldset" }) {
			if _, ok := attr(fs, "disabled"); !ok {
				t.Errorf("fieldset not disabled for a viewer")
			}
		}
	})
	t.Run("errors are shown next to their fields", func(t *testing.T) {
		f := PositionForm{Rubric: []RubricRow{{Name: "X", Weight: "heavy"}}}
		d := renderDoc(t, PositionPage(pageAs(owner), f, FormErrors{"title": "Give the position a title.", "rubric_weight_0": "A weight is a number."}))
		d.mustHave("error-title", "error-rubric_weight_0")
		if w, _ := attr(d.byTestID("rubric-weight")[0], "value"); w != "heavy" {
			t.Errorf("mistyped weight not shown back: %q", w)
		}
	})
}

func TestCandidatesPage(t *testing.T) {
	cands := []store.Candidate{{ID: "cand_1", Name: hostile, Email: "a@example.com", CreatedAt: when}}
	d := renderDoc(t, CandidatesPage(pageAs(recruiter), Candidates{Candidates: cands}))
	d.mustHave("create-candidate-form", "candidates-table", "candidate-row", "candidate-name")
	d.mustBeInert()
	d.csrfFieldsEqual("tok123")

	v := renderDoc(t, CandidatesPage(pageAs(viewer), Candidates{}))
	v.mustHave("candidates-empty", "readonly-note")
	v.mustNotHave("create-candidate-form")
}

func TestMembersPage(t *testing.T) {
	users := []store.User{
		{ID: owner.ID, Name: owner.Name, Email: owner.Email, Role: store.RoleOwner, CreatedAt: when},
		{ID: "usr_9", Name: hostile, Email: "h@example.com", Role: store.RoleViewer, CreatedAt: when},
	}
	t.Run("an owner manages everyone but themselves", func(t *testing.T) {
		d := renderDoc(t, MembersPage(pageAs(owner), Members{Users: users}))
		d.mustHave("add-member-form", "members-table", "role-form", "remove-member")
		if n := len(d.byTestID("role-form")); n != 1 {
			t.Errorf("role forms = %d, want 1 (not for the owner themselves)", n)
		}
		if n := len(d.byTestID("remove-member")); n != 1 {
			t.Errorf("remove buttons = %d, want 1", n)
		}
		d.mustBeInert()
		d.csrfFieldsEqual("tok123")
	})
	t.Run("a recruiter only reads", func(t *testing.T) {
		d := renderDoc(t, MembersPage(pageAs(recruiter), Members{Users: users}))
		d.mustHave("members-table")
		d.mustNotHave("add-member-form", "role-form", "remove-member")
	})
}

func TestAPIKeysPage(t *testing.T) {
	used := when.Add(time.Hour)
	keys := []store.APIKey{
		{ID: "key_1", Name: hostile, Prefix: "cnd_abcd1234", CreatedAt: when, LastUsedAt: &used},
		{ID: "key_2", Name: "old", Prefix: "cnd_zzzz0000", CreatedAt: when, RevokedAt: &used},
	}
	d := renderDoc(t, APIKeysPage(pageAs(recruiter), APIKeys{Keys: keys, Created: "cnd_plaintextvalue", CreatedName: "ci"}))
	d.mustHave("created-key", "created-key-value", "create-key-form", "keys-table", "key-prefix", "key-revoked", "revoke-key")
	if n := len(d.byTestID("revoke-key")); n != 1 {
		t.Errorf("revoke buttons = %d, want 1 (revoked keys have none)", n)
	}
	if got := text(d.byTestID("created-key-value")[0]); got != "cnd_plaintextvalue" {
		t.Errorf("created key = %q", got)
	}
	d.mustBeInert()

	v := renderDoc(t, APIKeysPage(pageAs(viewer), APIKeys{Keys: keys}))
	v.mustNotHave("create-key-form", "revoke-key", "created-key")
}

func TestSettingsPageNeverRendersValues(t *testing.T) {
	secrets := []store.SecretInfo{{Name: "OPENAI_API_KEY", UpdatedAt: when}}
	d := renderDoc(t, SettingsPage(pageAs(owner), Settings{Secrets: secrets}))
	d.mustHave("set-secret-form", "secret-row", "secret-state", "replace-secret", "delete-secret")
	if got := text(d.byTestID("secret-state")[0]); !strings.HasPrefix(got, "set · updated ") {
		t.Errorf("secret state = %q", got)
	}
	for _, in := range d.all(func(n *html.Node) bool { name, _ := attr(n, "name"); return n.Data == "input" && name == "value" }) {
		if typ, _ := attr(in, "type"); typ != "password" {
			t.Errorf("value input of type %q", typ)
		}
		if v, ok := attr(in, "value"); ok && v != "" {
			t.Errorf("value input prefilled with %q", v)
		}
	}
	d.csrfFieldsEqual("tok123")

	r := renderDoc(t, SettingsPage(pageAs(recruiter), Settings{Secrets: secrets}))
	r.mustHave("secret-row", "readonly-note")
	r.mustNotHave("set-secret-form", "replace-secret", "delete-secret")
}

func TestAuthPages(t *testing.T) {
	p := Page{CSRF: "pre123", AssetVersion: "v1"}
	s := renderDoc(t, SetupPage(p, SetupForm{Org: hostile, Email: "a@example.com"}, FormErrors{"password": "Use at least 8 characters."}))
	s.mustHave("setup-form", "setup-submit", "error-password")
	s.mustNotHave("nav", "user-menu")
	s.mustBeInert()
	s.csrfFieldsEqual("pre123")

	l := renderDoc(t, LoginPage(p, LoginForm{Email: "a@example.com", Next: "/positions"}, FormErrors{"": "Email or password is wrong."}))
	l.mustHave("login-form", "login-submit", "form-error")
	l.csrfFieldsEqual("pre123")
	if strings.Contains(l.raw, `name="password" value=`) {
		t.Errorf("password echoed back")
	}
}

func TestErrorPage(t *testing.T) {
	d := renderDoc(t, ErrorPage(pageAs(owner), 404, "Page not found", hostile))
	d.mustHave("error-page", "nav")
	if code, _ := attr(d.byTestID("error-page")[0], "data-code"); code != "404" {
		t.Errorf("code = %q", code)
	}
	d.mustBeInert()
	anon := renderDoc(t, ErrorPage(Page{}, 500, "Something went wrong", "x"))
	anon.mustHave("error-page")
	anon.mustNotHave("nav")
}
