package web

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"candor/store"
)

func TestReviews(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	ivID := e.seedTranscript(t, a, "Ada Lovelace")
	path := "/api/v1/interviews/" + ivID + "/reviews"
	review := func(comm, depth int, rec, note string) map[string]any {
		return map[string]any{"criteria": []map[string]any{
			{"name": "Technical depth", "score": depth, "note": "knows queues"},
			{"name": "communication", "score": comm},
		}, "recommendation": rec, "note": note}
	}
	owner := e.login(t, a, store.RoleOwner)
	recruiter := e.login(t, a, store.RoleRecruiter)
	viewer := e.login(t, a, store.RoleViewer)

	var first, second reviewJSON
	e.must(t, 201, request{Method: "POST", Path: path, Session: &owner, CSRF: owner.CSRF, Body: review(2, 2, "no", "first look")}, &first)
	e.must(t, 200, request{Method: "POST", Path: path, Session: &owner, CSRF: owner.CSRF, Body: review(4, 5, "strong_yes", "changed my mind")}, &second)
	if second.Overall == nil || *second.Overall != 4.75 { // (4·1 + 5·3) / 4
		t.Errorf("overall %v, want 4.75 from the rubric's weights", second.Overall)
	}
	if second.Criteria[0].Name != "Communication" || second.Criteria[1].Note != "knows queues" || second.Reviewer.Kind != "user" {
		t.Errorf("review %+v", second)
	}
	e.must(t, 201, request{Method: "POST", Path: path, Session: &recruiter, CSRF: recruiter.CSRF, Body: review(3, 3, "yes", "")}, nil)
	var byKey reviewJSON
	e.must(t, 201, request{Method: "POST", Path: path, Key: a.Key, Body: review(1, 1, "strong_no", "from our ATS")}, &byKey)
	if byKey.Reviewer.Kind != "api_key" || !strings.HasPrefix(byKey.Reviewer.Name, "API key") || byKey.Reviewer.ID == "" {
		t.Errorf("an API key's review is attributed to %+v", byKey.Reviewer)
	}

	var list struct {
		Reviews []reviewJSON `json:"reviews"`
		Average *float64     `json:"average_overall"`
	}
	e.must(t, 200, request{Method: "GET", Path: path, Session: &viewer}, &list)
	if len(list.Reviews) != 3 {
		t.Fatalf("%d reviews, want 3 (one per reviewer)", len(list.Reviews))
	}
	if list.Average == nil || *list.Average != 2.92 { // (4.75 + 3 + 1) / 3
		t.Errorf("average %v", list.Average)
	}

	for _, tc := range []struct {
		name string
		body any
	}{
		{"a criterion missing", map[string]any{"criteria": []map[string]any{{"name": "Communication", "score": 3}}, "recommendation": "yes"}},
		{"a criterion outside the rubric", map[string]any{"criteria": []map[string]any{{"name": "Communication", "score": 3}, {"name": "Technical depth", "score": 3}, {"name": "Charm", "score": 5}}, "recommendation": "yes"}},
		{"a score of 6", review(6, 3, "yes", "")},
		{"a score of 0", review(3, 0, "yes", "")},
		{"an unknown recommendation", review(3, 3, "maybe", "")},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			e.must(t, 400, request{Method: "POST", Path: path, Key: a.Key, Body: tc.body}, nil)
		})
	}
	e.must(t, 403, request{Method: "POST", Path: path, Session: &viewer, CSRF: viewer.CSRF, Body: review(3, 3, "yes", "")}, nil)
	b := e.tenant(t, "Bobco")
	e.must(t, 404, request{Method: "GET", Path: path, Key: b.Key}, nil)
	e.must(t, 404, request{Method: "POST", Path: path, Key: b.Key, Body: review(3, 3, "yes", "")}, nil)
	e.must(t, 200, request{Method: "GET", Path: path, Key: a.Key}, &list)
	if len(list.Reviews) != 3 || list.Reviews[2].Note != "from our ATS" {
		t.Errorf("refused reviews changed the list: %+v", list.Reviews)
	}

	if _, err := exec.LookPath("pdftotext"); err == nil {
		res := e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + ivID + "/report.pdf", Key: a.Key}, nil)
		f := filepath.Join(t.TempDir(), "r.pdf")
		os.WriteFile(f, res.Body, 0o600)
		out, err := exec.Command("pdftotext", f, "-").Output()
		if err != nil || !strings.Contains(string(out), "changed my mind") || !strings.Contains(string(out), "strong_yes") {
			t.Errorf("the report lacks the reviews: %v\n%s", err, out)
		}
	}
}
