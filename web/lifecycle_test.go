package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"candor/fly"
	"candor/processor/contract"
	"candor/store"
	"candor/web/lifecycle"
)

func TestStartAndEnd(t *testing.T) {
	e := newTestEnv(t, withLifecycle(func(c *lifecycle.Config) {
		c.ProcessorEnv = map[string]string{"CANDOR_STT": "pocketsphinx", "CANDOR_INTERVIEWER": "scripted"}
	}))
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)

	st := e.start(t, a, iv)
	t.Run("start answers a running interview with its processor", func(t *testing.T) {
		if st.Interview.Status != store.StatusRunning || st.Interview.StartedAt == nil {
			t.Errorf("interview = %+v", st.Interview)
		}
		m := st.Interview.Machine
		if m == nil || m.State != store.MachineRunning || m.Provider != fly.ProviderLocal || m.URL == "" {
			t.Errorf("machine = %+v", m)
		}
		// Every provisioner's processor is reached through the
		// interview's one stable route, not the machine's own address.
		if want := e.srv.cfg.PublicURL + "/p/" + iv; st.Processor.URL != want {
			t.Errorf("processor url %s, want %s", st.Processor.URL, want)
		}
		if len(st.Processor.Token) < 43 {
			t.Errorf("processor token %q is shorter than 256 bits", st.Processor.Token)
		}
	})
	t.Run("the machine gets the control URL, token, pass-through env and plan", func(t *testing.T) {
		if len(e.machines.launches()) != 1 {
			t.Fatalf("%d launches", len(e.machines.launches()))
		}
		spec := e.machines.launches()[0]
		want := map[string]string{
			"CANDOR_CONTROL_URL": e.srv.cfg.PublicURL, "CANDOR_CLIENT_TOKEN": st.Processor.Token,
			"CANDOR_STT": "pocketsphinx", "CANDOR_INTERVIEWER": "scripted",
		}
		for k, v := range want {
			if spec.Env[k] != v {
				t.Errorf("env %s = %q, want %q", k, spec.Env[k], v)
			}
		}
		if spec.InterviewID != iv || spec.TenantID != a.ID || spec.TenantSlug != a.Slug || spec.Region != "local" {
			t.Errorf("spec identity = %+v", spec)
		}
		if bridge := spec.Env["CANDOR_PROCESSOR_TOKEN"]; len(bridge) < 43 || bridge == st.Processor.Token {
			t.Errorf("bridge token %q: want 256 bits, not the client token", bridge)
		}
		var plan struct {
			Position  struct{ Title, Description string }
			Questions []string
			Rubric    []store.RubricItem
		}
		if err := json.Unmarshal(spec.Plan, &plan); err != nil {
			t.Fatalf("plan %s: %v", spec.Plan, err)
		}
		if plan.Position.Title != "Backend engineer" || len(plan.Questions) != 1 || len(plan.Rubric) != 1 {
			t.Errorf("plan = %+v", plan)
		}
	})
	t.Run("start is idempotent while running", func(t *testing.T) {
		again := e.start(t, a, iv)
		if again.Processor != st.Processor || len(e.machines.launches()) != 1 {
			t.Errorf("second start gave %+v after %d launches, want %+v after 1", again.Processor, len(e.machines.launches()), st.Processor)
		}
	})
	t.Run("the candidate token is the HMAC of the client token", func(t *testing.T) {
		m := hmac.New(sha256.New, []byte(st.Processor.Token))
		m.Write([]byte("candidate:" + iv))
		if got, want := contract.CandidateToken(st.Processor.Token, iv), hex.EncodeToString(m.Sum(nil)); got != want {
			t.Errorf("candidate token %s, want %s", got, want)
		}
	})

	// What the processor still holds when end is called must be in the
	// transcript when end returns.
	e.postEntries(t, iv, st.Bridge, entry(1, "first"))
	proc := e.machines.processor(1)
	proc.setPending(entry(2, "flushed at the end"), entry(3, "last words"))

	var ended interviewJSON
	e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/end", Key: a.Key}, &ended)
	t.Run("end flushes the processor before it answers", func(t *testing.T) {
		var tr struct{ Entries []entryJSON }
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/transcript", Key: a.Key}, &tr)
		var texts []string
		for _, en := range tr.Entries {
			texts = append(texts, en.Text)
		}
		if got := strings.Join(texts, "|"); got != "first|flushed at the end|last words" {
			t.Errorf("transcript %q", got)
		}
		if n := proc.endCalls(); n != 1 {
			t.Errorf("processor /end called %d times", n)
		}
	})
	t.Run("end destroys the machine and completes the interview", func(t *testing.T) {
		if ended.Status != store.StatusCompleted || ended.EndedAt == nil {
			t.Errorf("interview = %+v", ended)
		}
		if m := ended.Machine; m == nil || m.State != store.MachineDestroyed || m.DestroyedAt == nil || m.SecondsBilled <= 0 {
			t.Errorf("machine = %+v", ended.Machine)
		}
		if len(e.machines.destroys()) != 1 || e.machines.destroys()[0].ID != "fake-1" {
			t.Errorf("destroyed %+v", e.machines.destroys())
		}
		var evs struct{ Events []eventJSON }
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/events", Key: a.Key}, &evs)
		var types []string
		for _, ev := range evs.Events {
			types = append(types, ev.Type)
		}
		if got := strings.Join(types, ","); got != "interview.starting,machine.launched,interview.ended" {
			t.Errorf("events %s", got)
		}
	})
	t.Run("ending again changes nothing", func(t *testing.T) {
		e.must(t, 200, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/end", Key: a.Key}, nil)
		if len(e.machines.destroys()) != 1 {
			t.Errorf("destroyed %d machines", len(e.machines.destroys()))
		}
	})
	t.Run("a completed interview cannot start again", func(t *testing.T) {
		res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/start", Key: a.Key})
		if res.Status != 409 || res.errorCode() != CodeConflict {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
	})
}

func TestStartFailures(t *testing.T) {
	t.Run("a failed launch fails the interview with an error event", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, iv := e.seed(t, a)
		e.machines.failNextLaunch(errors.New("image registry.example/candor:latest not found"))
		res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/start", Key: a.Key})
		if res.Status != 502 || !strings.Contains(string(res.Body), "image registry.example/candor:latest not found") {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var got interviewJSON
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv, Key: a.Key}, &got)
		if got.Status != store.StatusFailed || got.Machine != nil {
			t.Errorf("interview = %+v", got)
		}
		var evs struct{ Events []eventJSON }
		e.must(t, 200, request{Method: "GET", Path: "/api/v1/interviews/" + iv + "/events", Key: a.Key}, &evs)
		if len(evs.Events) != 2 || evs.Events[0].Type != "interview.starting" || evs.Events[1].Type != "error" || !strings.Contains(string(evs.Events[1].Data), "could not be launched") {
			t.Errorf("events = %+v", evs.Events)
		}
	})
	t.Run("no capacity says what to do", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, iv := e.seed(t, a)
		e.machines.failNextLaunch(fly.ErrCapacity)
		res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/start", Key: a.Key})
		if res.Status != 502 || !strings.Contains(string(res.Body), "another region") {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("without machines start and end are 501", func(t *testing.T) {
		e := newTestEnv(t, withoutMachines())
		a := e.tenant(t, "Acme")
		_, _, iv := e.seed(t, a)
		for _, action := range []string{"start", "end"} {
			res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/" + action, Key: a.Key})
			if res.Status != 501 || res.errorCode() != CodeNotImplemented {
				t.Errorf("%s: status %d: %s", action, res.Status, res.Body)
			}
		}
	})
	t.Run("a scheduled interview cannot be ended", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, iv := e.seed(t, a)
		res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/end", Key: a.Key})
		if res.Status != 409 {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("concurrent starts launch one machine", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.tenant(t, "Acme")
		_, _, iv := e.seed(t, a)
		var wg sync.WaitGroup
		tokens := make([]string, 4)
		for i := range tokens {
			wg.Go(func() {
				res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/start", Key: a.Key})
				var st startAnswer
				if res.Status == 200 && json.Unmarshal(res.Body, &st) == nil {
					tokens[i] = st.Processor.Token
				}
			})
		}
		wg.Wait()
		if len(e.machines.launches()) != 1 {
			t.Errorf("%d launches", len(e.machines.launches()))
		}
		for _, tok := range tokens {
			if tok != tokens[0] || tok == "" {
				t.Errorf("tokens differ or are missing: %q", tokens)
				break
			}
		}
		iv2, err := e.db.Interview(context.Background(), a.ID, iv)
		if err != nil || iv2.Status != store.StatusRunning {
			t.Errorf("status %s (err %v)", iv2.Status, err)
		}
	})
}

func TestCandidateHelpers(t *testing.T) {
	e := newTestEnv(t)
	a := e.tenant(t, "Acme")
	_, _, iv := e.seed(t, a)
	ctx := context.Background()

	got, err := e.srv.interviewByInvite(ctx, e.srv.inviteToken(iv))
	if err != nil || got.ID != iv {
		t.Fatalf("interviewByInvite: %v %v", got.ID, err)
	}
	if _, err := e.srv.interviewByInvite(ctx, "forged"); err == nil {
		t.Error("a forged invite opened an interview")
	}
	if _, _, err := e.srv.candidateAccess(ctx, got); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("before start: %v, want ErrNotFound", err)
	}
	st := e.start(t, a, iv)
	url, tok, err := e.srv.candidateAccess(ctx, got)
	if err != nil || url != st.Processor.URL || tok != contract.CandidateToken(st.Processor.Token, iv) || tok == st.Processor.Token {
		t.Errorf("candidateAccess = %s %s %v", url, tok, err)
	}
}
