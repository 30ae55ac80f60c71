package web

// Attack rows for what follows an interview (exports, report, scorecards,
// reviews, webhooks, retention, erasure, audit). See attack_test.go.

import (
	"context"
	"net/url"

	"candor/store"
)

func init() {
	attackRowSets = append(attackRowSets, afterAttackRows, afterWebhookAttackRows, afterErasureAttackRows, afterDashAttackRows)
}

func afterAttackRows(w *attackWorld) []attackRow {
	a, b := w.a, w.b
	iv := "/api/v1/interviews/" + a.endedID
	return []attackRow{
		{route: "GET /api/v1/interviews/:id/transcript", name: "B cannot export A's transcript as csv",
			req: request{Method: "GET", Path: "/api/v1/interviews/" + a.runningID + "/transcript?format=csv", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "GET /api/v1/interviews/:id/report.pdf", name: "B cannot download A's report",
			req: request{Method: "GET", Path: iv + "/report.pdf", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "GET /api/v1/interviews/:id/report.pdf", name: "B's owner session cannot download A's report",
			req: attackAs(b.owner, request{Method: "GET", Path: "/api/v1/interviews/" + a.runningID + "/report.pdf"}), want: 404, code: CodeNotFound},
		{route: "GET /api/v1/interviews/:id/scorecard", name: "B cannot read A's scorecard",
			req: request{Method: "GET", Path: iv + "/scorecard", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "POST /api/v1/interviews/:id/scorecard", name: "B cannot re-run A's scorecard",
			req: request{Method: "POST", Path: iv + "/scorecard", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "GET /api/v1/interviews/:id/reviews", name: "B cannot read A's reviews",
			req: request{Method: "GET", Path: iv + "/reviews", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "POST /api/v1/interviews/:id/reviews", name: "B cannot review A's interview",
			req: request{Method: "POST", Path: iv + "/reviews", Key: b.Key, Body: map[string]any{"criteria": []map[string]any{{"name": "Go", "score": 5}}, "recommendation": "strong_yes"}}, want: 404, code: CodeNotFound},
		{route: "POST /api/v1/interviews/:id/reviews", name: "a viewer cannot review",
			req: attackAs(a.viewer, request{Method: "POST", Path: iv + "/reviews", Body: map[string]any{"criteria": []map[string]any{{"name": "Go", "score": 5}}, "recommendation": "strong_yes"}}), want: 403, code: CodeForbidden},
		{route: "POST /api/v1/interviews/:id/scorecard", name: "a viewer cannot re-run a scorecard",
			req: attackAs(a.viewer, request{Method: "POST", Path: iv + "/scorecard"}), want: 403, code: CodeForbidden},
		{route: "POST /api/v1/interviews/:id/scorecard", name: "a cookie without CSRF cannot re-run a scorecard",
			req: attackNoCSRF(a.owner, request{Method: "POST", Path: iv + "/scorecard"}), want: 403, code: CodeForbidden},
	}
}

func afterWebhookAttackRows(w *attackWorld) []attackRow {
	a, b := w.a, w.b
	hook := map[string]any{"url": "https://example.com/h", "events": []string{"scorecard.ready"}}
	wh, err := w.e.db.CreateWebhook(context.Background(), store.Webhook{ID: store.NewID("wh_"), TenantID: a.ID,
		URL: "https://example.com/" + a.markers[0], Events: []string{"scorecard.ready"}}, newWebhookSecret())
	if err != nil {
		panic(err)
	}
	return []attackRow{
		{route: "POST /api/v1/webhooks", name: "a viewer cannot add a webhook",
			req: attackAs(a.viewer, request{Method: "POST", Path: "/api/v1/webhooks", Body: hook}), want: 403, code: CodeForbidden},
		{route: "POST /api/v1/webhooks", name: "a cookie without CSRF cannot add a webhook",
			req: attackNoCSRF(a.owner, request{Method: "POST", Path: "/api/v1/webhooks", Body: hook}), want: 403, code: CodeForbidden},
		{route: "GET /api/v1/webhooks", name: "a viewer cannot list webhooks (their URLs may hold tokens)",
			req: attackAs(a.viewer, request{Method: "GET", Path: "/api/v1/webhooks"}), want: 403, code: CodeForbidden},
		{route: "GET /api/v1/webhooks", name: "B's webhook list holds none of A's",
			req: request{Method: "GET", Path: "/api/v1/webhooks", Key: b.Key}, want: 200},
		{route: "DELETE /api/v1/webhooks/:id", name: "B cannot delete a webhook it does not own",
			req: request{Method: "DELETE", Path: "/api/v1/webhooks/" + wh.ID, Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "GET /api/v1/webhooks/:id/deliveries", name: "B cannot read a delivery log it does not own",
			req: request{Method: "GET", Path: "/api/v1/webhooks/" + wh.ID + "/deliveries", Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "POST /api/v1/webhooks/:id/deliveries/:delivery_id/retry", name: "B cannot retry a delivery it does not own",
			req: request{Method: "POST", Path: "/api/v1/webhooks/" + wh.ID + "/deliveries/msg_x/retry", Key: b.Key}, want: 404, code: CodeNotFound},
	}
}

func afterErasureAttackRows(w *attackWorld) []attackRow {
	a, b := w.a, w.b
	return []attackRow{
		{route: "DELETE /api/v1/candidates/:id", name: "B cannot erase A's candidate",
			req: request{Method: "DELETE", Path: "/api/v1/candidates/" + a.candidateID, Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "DELETE /api/v1/candidates/:id", name: "a viewer cannot erase a candidate",
			req: attackAs(a.viewer, request{Method: "DELETE", Path: "/api/v1/candidates/" + a.candidateID}), want: 403, code: CodeForbidden},
		{route: "DELETE /api/v1/candidates/:id", name: "a cookie without CSRF cannot erase a candidate",
			req: attackNoCSRF(a.owner, request{Method: "DELETE", Path: "/api/v1/candidates/" + a.candidateID}), want: 403, code: CodeForbidden},
		{route: "DELETE /api/v1/interviews/:id", name: "B cannot erase A's interview",
			req: request{Method: "DELETE", Path: "/api/v1/interviews/" + a.endedID, Key: b.Key}, want: 404, code: CodeNotFound},
		{route: "DELETE /api/v1/interviews/:id", name: "B's owner cannot erase A's running interview",
			req: attackAs(b.owner, request{Method: "DELETE", Path: "/api/v1/interviews/" + a.runningID}), want: 404, code: CodeNotFound},
		{route: "DELETE /api/v1/interviews/:id", name: "a viewer cannot erase an interview",
			req: attackAs(a.viewer, request{Method: "DELETE", Path: "/api/v1/interviews/" + a.endedID}), want: 403, code: CodeForbidden},
		{route: "GET /api/v1/audit", name: "a recruiter cannot read the audit log",
			req: attackAs(a.recruiter, request{Method: "GET", Path: "/api/v1/audit"}), want: 403, code: CodeForbidden},
		{route: "GET /api/v1/audit", name: "an API key cannot read the audit log",
			req: request{Method: "GET", Path: "/api/v1/audit", Key: a.Key}, want: 403, code: CodeForbidden},
		{route: "GET /api/v1/audit", name: "B's owner reads only B's audit log",
			req: attackAs(b.owner, request{Method: "GET", Path: "/api/v1/audit"}), want: 200},
		{route: "GET /api/v1/retention", name: "B reads only its own retention",
			req: request{Method: "GET", Path: "/api/v1/retention", Key: b.Key}, want: 200},
		{route: "PUT /api/v1/retention", name: "a recruiter cannot change retention",
			req: attackAs(a.recruiter, request{Method: "PUT", Path: "/api/v1/retention", Body: `{"recordings_days":1}`}), want: 403, code: CodeForbidden},
		{route: "PUT /api/v1/retention", name: "a cookie without CSRF cannot change retention",
			req: attackNoCSRF(a.owner, request{Method: "PUT", Path: "/api/v1/retention", Body: `{"recordings_days":1}`}), want: 403, code: CodeForbidden},
	}
}

func afterDashAttackRows(w *attackWorld) []attackRow {
	a, b := w.a, w.b
	iv := "/interviews/" + a.endedID
	review := url.Values{"recommendation": {"strong_yes"}, "score:Go": {"5"}}
	return []attackRow{
		{route: "POST /interviews/:id/review", name: "B cannot review A's interview from the dashboard",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: iv + "/review"}), review), want: 404},
		{route: "POST /interviews/:id/review", name: "a viewer cannot review from the dashboard",
			req: attackForm(attackAs(a.viewer, request{Method: "POST", Path: iv + "/review"}), review), want: 403},
		{route: "POST /interviews/:id/review", name: "a review form without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: iv + "/review"}), review), want: 403},
		{route: "POST /interviews/:id/rescore", name: "B cannot re-run A's scorecard from the dashboard",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: iv + "/rescore"}), url.Values{}), want: 404},
		{route: "POST /interviews/:id/rescore", name: "a viewer cannot re-run a scorecard from the dashboard",
			req: attackForm(attackAs(a.viewer, request{Method: "POST", Path: iv + "/rescore"}), url.Values{}), want: 403},
		{route: "GET /webhooks", name: "a viewer cannot see the webhooks page",
			req: attackAs(a.viewer, request{Method: "GET", Path: "/webhooks", Header: map[string]string{"Accept": "text/html"}}), want: 403},
		{route: "GET /webhooks", name: "B's webhooks page holds none of A's",
			req: attackAs(b.owner, request{Method: "GET", Path: "/webhooks", Header: map[string]string{"Accept": "text/html"}}), want: 200},
		{route: "POST /webhooks", name: "a viewer cannot add a webhook from the dashboard",
			req: attackForm(attackAs(a.viewer, request{Method: "POST", Path: "/webhooks"}), url.Values{"url": {"https://example.com"}, "events": {"scorecard.ready"}}), want: 403},
		{route: "POST /webhooks", name: "a webhook form without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/webhooks"}), url.Values{"url": {"https://example.com"}, "events": {"scorecard.ready"}}), want: 403},
		{route: "POST /webhooks/:id/delete", name: "B cannot delete a webhook from the dashboard",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/webhooks/wh_none/delete"}), url.Values{}), want: 404},
		{route: "POST /webhooks/:id/deliveries/:delivery_id/retry", name: "B cannot resend a delivery from the dashboard",
			req: attackForm(attackAs(b.owner, request{Method: "POST", Path: "/webhooks/wh_none/deliveries/msg_none/retry"}), url.Values{}), want: 404},
		{route: "GET /retention", name: "B's retention page holds none of A's audit",
			req: attackAs(b.owner, request{Method: "GET", Path: "/retention", Header: map[string]string{"Accept": "text/html"}}), want: 200},
		{route: "POST /retention", name: "a recruiter cannot change retention from the dashboard",
			req: attackForm(attackAs(a.recruiter, request{Method: "POST", Path: "/retention"}), url.Values{"recordings_days": {"1"}}), want: 403},
		{route: "POST /retention", name: "a retention form without CSRF is refused",
			req: attackForm(attackNoCSRF(a.owner, request{Method: "POST", Path: "/retention"}), url.Values{"recordings_days": {"1"}}), want: 403},
	}
}
