package flyfake

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a token bucket: Rate requests a second, Burst at once.
type Limit struct {
	Rate  float64
	Burst int
}

// Machine API actions the fake limits. Create and list are counted per app,
// the others per machine, as Fly documents: "Machine API rate limits apply
// per-action, per-machine … 1 request, per second, per action—short-term
// burstable up to 3 … except the Get Machine call—that one is 5 req/s,
// burstable up to 10"
// (https://community.fly.io/t/understanding-fly-io-api-rate-hard-limits/20636,
// https://fly.io/docs/machines/api/#rate-limits).
const (
	ActionCreate = "create"
	ActionList   = "list"
	ActionGet    = "get"
	ActionUpdate = "update"
	ActionStart  = "start"
	ActionStop   = "stop"
	ActionDelete = "delete"
	ActionWait   = "wait"
)

// DefaultLimits are Fly's documented Machines API limits.
func DefaultLimits() map[string]Limit {
	one := Limit{Rate: 1, Burst: 3}
	return map[string]Limit{
		ActionCreate: one, ActionList: one, ActionUpdate: one, ActionStart: one,
		ActionStop: one, ActionDelete: one, ActionWait: one,
		ActionGet: {Rate: 5, Burst: 10},
	}
}

// SetLimits replaces the rate limits; nil turns limiting off.
func (s *Server) SetLimits(limits map[string]Limit) {
	s.mu.Lock()
	s.limits = limits
	s.buckets = make(map[string]*rate.Limiter)
	s.mu.Unlock()
}

var (
	machinesPathRE = regexp.MustCompile(`^/v1/apps/([^/]+)/machines$`)
	machinePathRE  = regexp.MustCompile(`^/v1/apps/([^/]+)/machines/([^/]+)(/[a-z]+)?$`)
)

// action classifies a Machines API request; scope is the app or machine the
// limit counts against. "" means the request is not limited.
func action(r *http.Request) (act, scope string) {
	if m := machinesPathRE.FindStringSubmatch(r.URL.Path); m != nil {
		switch r.Method {
		case http.MethodPost:
			return ActionCreate, m[1]
		case http.MethodGet:
			return ActionList, m[1]
		}
		return "", ""
	}
	m := machinePathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return "", ""
	}
	scope = m[1] + "/" + m[2]
	switch sub := m[3]; {
	case sub == "" && r.Method == http.MethodGet:
		return ActionGet, scope
	case sub == "" && r.Method == http.MethodPost:
		return ActionUpdate, scope
	case sub == "" && r.Method == http.MethodDelete:
		return ActionDelete, scope
	case sub == "/start":
		return ActionStart, scope
	case sub == "/stop":
		return ActionStop, scope
	case sub == "/wait":
		return ActionWait, scope
	}
	return "", ""
}

// limited answers 429 with Retry-After when r is over its action's limit.
func (s *Server) limited(w http.ResponseWriter, r *http.Request) bool {
	act, scope := action(r)
	if act == "" {
		return false
	}
	s.mu.Lock()
	l, ok := s.limits[act]
	var b *rate.Limiter
	if ok {
		key := act + " " + scope
		if b = s.buckets[key]; b == nil {
			b = rate.NewLimiter(rate.Limit(l.Rate), l.Burst)
			s.buckets[key] = b
		}
	}
	s.mu.Unlock()
	if b == nil {
		return false
	}
	res := b.Reserve()
	delay := res.Delay()
	if delay == 0 {
		return false
	}
	res.Cancel()
	secs := int(math.Ceil(delay.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeError(w, http.StatusTooManyRequests, fmt.Sprintf("rate limit exceeded for %s (%.0f/s, burst %d); retry in %s", act, l.Rate, l.Burst, delay.Round(time.Millisecond)))
	return true
}
