package views

import (
	"strings"
	"testing"
)

func TestCandidatePage(t *testing.T) {
	tests := []struct {
		name      string
		consented bool
	}{
		{"a candidate who has not consented sees the consent box unchecked and cannot continue", false},
		{"a candidate who consented before sees the box checked and may continue", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := renderDoc(t, CandidatePage(Candidate{
				AssetVersion: "v1", Base: "/i/tok", Org: "Acme", CandidateName: "Ada " + hostile,
				PositionTitle: hostile, Questions: 3, Minutes: 11, Consented: tt.consented, VideoLimit: 1 << 20,
			}))
			d.mustHave("candidate-page", "step-welcome", "step-consent", "step-devices", "step-live", "step-closing",
				"position-title", "consent", "consent-continue", "level-meter", "camera", "join", "status",
				"captions", "end", "transport", "upload-status")
			d.mustBeInert()

			root := d.byTestID("candidate-page")[0]
			if got, _ := attr(root, "data-base"); got != "/i/tok" {
				t.Errorf("data-base = %q, want /i/tok", got)
			}
			if got, _ := attr(root, "data-video-limit"); got != "1048576" {
				t.Errorf("data-video-limit = %q, want 1048576", got)
			}
			consent := d.byTestID("consent")[0]
			if typ, _ := attr(consent, "type"); typ != "checkbox" {
				t.Errorf("consent is a %q input, want a checkbox", typ)
			}
			if _, checked := attr(consent, "checked"); checked != tt.consented {
				t.Errorf("consent checked = %v, want %v", checked, tt.consented)
			}
			if _, disabled := attr(d.byTestID("consent-continue")[0], "disabled"); disabled == tt.consented {
				t.Errorf("continue disabled = %v with consent %v", disabled, tt.consented)
			}
			// The join button waits for a working microphone.
			if _, disabled := attr(d.byTestID("join")[0], "disabled"); !disabled {
				t.Errorf("join is enabled before the microphone check")
			}
			if got := text(d.byTestID("status")[0]); got != "connecting" {
				t.Errorf("status text = %q, want connecting", got)
			}
			// Only the welcome step shows before the script runs.
			for _, id := range []string{"step-consent", "step-devices", "step-live", "step-closing"} {
				if _, hidden := attr(d.byTestID(id)[0], "hidden"); !hidden {
					t.Errorf("%s is visible before the candidate gets there", id)
				}
			}
			if !strings.Contains(d.raw, `src="/static/candidate.js?v=v1"`) || !strings.Contains(d.raw, `href="/static/candidate.css?v=v1"`) {
				t.Errorf("the page does not load its versioned assets")
			}
			if strings.Contains(d.raw, "//cdn") || strings.Contains(d.raw, "https://") {
				t.Errorf("the page loads something from another origin")
			}
		})
	}
}

func TestCandidateNoticePage(t *testing.T) {
	d := renderDoc(t, CandidateNoticePage(CandidateNotice{Code: 410, Title: "This invitation has expired", Message: hostile}))
	d.mustHave("candidate-notice")
	d.mustNotHave("join", "consent")
	d.mustBeInert()
	if got, _ := attr(d.byTestID("candidate-notice")[0], "data-code"); got != "410" {
		t.Errorf("data-code = %q, want 410", got)
	}
}
