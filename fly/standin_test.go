package fly

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The test binary doubles as a stand-in processor: with
// CANDOR_TEST_PROCESSOR=1 in its env it serves /healthz, /claim and /env on
// CANDOR_ADDR instead of running tests, so the local backend's real process
// management is exercised without the real processor.
func TestMain(m *testing.M) {
	if os.Getenv("CANDOR_TEST_PROCESSOR") == "1" {
		os.Exit(runStandIn())
	}
	if dir := os.Getenv("CANDOR_TEST_CONTROL"); dir != "" {
		os.Exit(runStandInControl(dir))
	}
	os.Exit(m.Run())
}

// standInState is what GET /env of the stand-in answers.
type standInState struct {
	Env           map[string]string `json:"env"`
	Args          []string          `json:"args"`
	PlanFile      string            `json:"plan_file"` // content of CANDOR_PLAN_FILE, if any
	ClaimedPlan   json.RawMessage   `json:"claimed_plan"`
	GrandchildPID int               `json:"grandchild_pid"`
}

func runStandIn() int {
	if os.Getenv("CANDOR_TEST_EXIT") == "1" {
		os.Stderr.WriteString("stand-in: exiting at once as asked\n")
		return 3
	}
	os.Stderr.WriteString("stand-in: serving on " + os.Getenv("CANDOR_ADDR") + "\n")
	var mu sync.Mutex
	st := standInState{Env: map[string]string{}, Args: os.Args[1:]}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		st.Env[k] = v
	}
	if st.Env["CANDOR_TEST_GRANDCHILD"] == "1" {
		sleep := exec.Command("sleep", "300")
		if err := sleep.Start(); err == nil {
			st.GrandchildPID = sleep.Process.Pid
		}
	}
	if st.Env["CANDOR_TEST_IGNORE_TERM"] == "1" {
		signal.Ignore(syscall.SIGTERM)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if f := st.Env["CANDOR_PLAN_FILE"]; f != "" {
			b, _ := os.ReadFile(f)
			st.PlanFile = string(b)
		}
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /claim", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		token := st.Env["CANDOR_POOL_TOKEN"]
		if token == "" || r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "bad pool token", http.StatusUnauthorized)
			return
		}
		if st.Env["CANDOR_TEST_FAIL_CLAIM"] == "1" {
			http.Error(w, "claim refused as asked", http.StatusInternalServerError)
			return
		}
		if st.Env["SESSION_ID"] != "" {
			http.Error(w, "already claimed", http.StatusConflict)
			return
		}
		var body struct {
			Env  map[string]string `json:"env"`
			Plan json.RawMessage   `json:"plan"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Env["SESSION_ID"] == "" {
			http.Error(w, "bad claim body", http.StatusBadRequest)
			return
		}
		for k, v := range body.Env {
			st.Env[k] = v
		}
		st.ClaimedPlan = body.Plan
		w.Write([]byte(`{"status":"claimed"}`))
	})
	srv := &http.Server{Addr: os.Getenv("CANDOR_ADDR"), Handler: mux}
	if st.Env["CANDOR_TEST_IGNORE_TERM"] != "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		go func() {
			<-ctx.Done()
			srv.Shutdown(context.Background())
		}()
	}
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		os.Stderr.WriteString("stand-in: " + err.Error() + "\n")
		return 1
	}
	return 0
}
