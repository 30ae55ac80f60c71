package contract

import "encoding/json"

// ClaimRequest is the body of POST /claim, by which the local warm pool
// hands an idle processor its interview: Env overlays the env it was
// spawned with (it must name the interview in EnvSessionID), and Plan is the
// interview plan, or null for the built-in one.
type ClaimRequest struct {
	Env  map[string]string `json:"env"`
	Plan json.RawMessage   `json:"plan"`
}
