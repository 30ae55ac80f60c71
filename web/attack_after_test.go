package web

// Attack rows for what follows an interview (exports, report, scorecards,
// reviews, webhooks, retention, erasure, audit). See attack_test.go.

func init() { attackRowSets = append(attackRowSets, afterAttackRows) }

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
		{route: "POST /api/v1/interviews/:id/scorecard", name: "a viewer cannot re-run a scorecard",
			req: attackAs(a.viewer, request{Method: "POST", Path: iv + "/scorecard"}), want: 403, code: CodeForbidden},
		{route: "POST /api/v1/interviews/:id/scorecard", name: "a cookie without CSRF cannot re-run a scorecard",
			req: attackNoCSRF(a.owner, request{Method: "POST", Path: iv + "/scorecard"}), want: 403, code: CodeForbidden},
	}
}
