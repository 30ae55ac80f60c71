package web

import "testing"

func TestSmoke(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	st := e.start(t, a, iv)
	t.Logf("%+v", st)
	res := e.postEntries(t, iv, st.Processor.Token, entry(1, "hello"))
	t.Logf("%d %s", res.Status, res.Body)
	res = e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/end", Key: a.Key})
	t.Logf("%d %s", res.Status, res.Body)
	res = e.do(t, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/events", Key: a.Key})
	t.Logf("%d %s", res.Status, res.Body)
}
