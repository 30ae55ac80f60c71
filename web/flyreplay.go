package web

import (
	"net/http"

	"candor/fly"
	"candor/store"
)

// maxReplayBody is the largest request Fly's edge replays
// (https://fly.io/docs/networking/dynamic-request-routing/: "Attempting to
// replay requests larger than 1MB will throw an error").
const maxReplayBody = 1 << 20

// flyReplay decides how the stable route /p/{id} reaches a Fly machine.
// When the control plane itself runs on Fly (FLY_APP_NAME set), it answers
// with fly-replay naming the tenant app and the machine, and Fly's edge
// redelivers the request, WebSocket upgrades and WHIP included, straight to
// the machine in its region: the candidate's media never passes through
// the control plane. The machine serves the same path (processor routes
// under /p/{interview id}/). A body over the replay limit, or one of
// unknown length, cannot be replayed and is proxied instead, as every
// request is when the control plane runs elsewhere (it reaches the machine
// through {app}.fly.dev with fly-force-instance-id).
func (s *Server) flyReplay(m store.Machine, r *http.Request) (string, bool) {
	if !s.cfg.OnFly || m.Provider != fly.ProviderFly || m.App == "" || m.ProviderID == "" {
		return "", false
	}
	if r.ContentLength > maxReplayBody || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody) {
		return "", false
	}
	return "app=" + m.App + ";instance=" + m.ProviderID, true
}
