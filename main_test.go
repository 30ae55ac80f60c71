package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBadSettingsStopStartUpWithOneLineNamingTheSettingAndTheFix(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the one-line error
	}{
		{"an unknown provisioner flag", []string{"--provisioner=xyz"}, nil, []string{"--provisioner", "local or fly", "CANDOR_PROVISIONER"}},
		{"an unknown provisioner in the environment", nil, map[string]string{"CANDOR_PROVISIONER": "k8s"}, []string{"CANDOR_PROVISIONER", "local or fly"}},
		{"an address without a port", []string{"--addr=localhost"}, nil, []string{"--addr", "host:port"}},
		{"a relative public URL", []string{"--public-url=candor.example.com"}, nil, []string{"--public-url", "absolute http(s) URL"}},
		{"a negative warm pool", []string{"--warm-pool=-1"}, nil, []string{"--warm-pool", "whole number"}},
		{"a heartbeat timeout without a unit", []string{"--heartbeat-timeout=3"}, nil, []string{"--heartbeat-timeout", "duration"}},
		{"the openai engine without a key", []string{"--stt=openai"}, nil, []string{"OPENAI_API_KEY", "--stt=pocketsphinx"}},
		{"the fly provisioner without a token", []string{"--provisioner=fly", "--public-url=https://candor.example.com"}, map[string]string{"FLY_ORG": "acme", "FLY_PROCESSOR_IMAGE": "registry.fly.io/candor:1"}, []string{"FLY_API_TOKEN", "--provisioner=local"}},
		{"the fly provisioner with a loopback public URL", []string{"--provisioner=fly"}, map[string]string{"FLY_API_TOKEN": "x", "FLY_ORG": "acme", "FLY_PROCESSOR_IMAGE": "img"}, []string{"--public-url", "cannot be reached from Fly"}},
		{"an SMTP URL of another scheme, its password not echoed", []string{"--smtp-url=http://u:hunter2-pw@mail.example.com", "--mail-from=hiring@example.com"}, nil, []string{"--smtp-url", "CANDOR_SMTP_URL", "smtps://"}},
		{"an SMTP URL without a sender", nil, map[string]string{"CANDOR_SMTP_URL": "smtps://u:hunter2-pw@mail.example.com"}, []string{"CANDOR_MAIL_FROM", "sender"}},
		{"a trusted proxy that is not an address", []string{"--trusted-proxies=10.0.0.0/8,proxy.example"}, nil, []string{"--trusted-proxies", "CIDR"}},
		{"a metrics address without a port", []string{"--metrics-addr=localhost"}, nil, []string{"--metrics-addr", "host:port"}},
		{"allow-private-targets that is not a boolean", nil, map[string]string{"CANDOR_ALLOW_PRIVATE_TARGETS": "yes"}, []string{"CANDOR_ALLOW_PRIVATE_TARGETS", "true or false"}},
		{"a stray argument", []string{"serve", "extra"}, nil, []string{"unexpected argument"}},
		{"an unknown command", []string{"frobnicate"}, nil, []string{"unknown command", "serve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"CANDOR_DATA": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, tt.args, env, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("start-up went on; want an error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if strings.Contains(msg, "hunter2-pw") {
				t.Errorf("error %q shows the SMTP password", msg)
			}
		})
	}
}

func TestFlagsWinOverTheirEnvironmentTwins(t *testing.T) {
	cfg, err := parseServeConfig([]string{"--addr=127.0.0.1:9999"}, map[string]string{"CANDOR_ADDR": "127.0.0.1:7777", "CANDOR_WARM_POOL": "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9999" {
		t.Errorf("addr = %s, want the flag's 127.0.0.1:9999", cfg.Addr)
	}
	if cfg.WarmPool != 3 {
		t.Errorf("warm pool = %d, want the environment's 3", cfg.WarmPool)
	}
	if cfg.PublicURL != "http://127.0.0.1:9999" {
		t.Errorf("public URL = %s, want it derived from --addr", cfg.PublicURL)
	}
}

func TestVersionPrintsTheVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "candor ") {
		t.Errorf("version printed %q", out.String())
	}
}

func TestBootstrapPrintsOneJSONObjectAndRefusesTheSameTenantTwice(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var out bytes.Buffer
	args := []string{"admin", "bootstrap", "--tenant", "Acme Hiring", "--email", "owner@acme.test", "--password", "correct horse", "--data", dir}
	if err := run(ctx, args, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var res map[string]string
	dec := json.NewDecoder(&out)
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("output is not one JSON object: %v", err)
	}
	if dec.More() {
		t.Error("more than one JSON value printed")
	}
	for _, k := range []string{"tenant_id", "tenant_slug", "user_id", "api_key"} {
		if res[k] == "" {
			t.Errorf("%s missing from %v", k, res)
		}
	}
	if res["tenant_slug"] != "acme-hiring" {
		t.Errorf("tenant_slug = %q", res["tenant_slug"])
	}

	args[5] = "other@acme.test"
	err := run(ctx, args, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("second bootstrap of the same tenant: err = %v, want 'exists already'", err)
	}
}

// TestRestartKeepsEverything serves the control plane on a data dir, writes
// through the API, stops it, serves again on the same dir and reads back.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	var boot bytes.Buffer
	if err := run(context.Background(), []string{"admin", "bootstrap", "--tenant", "Acme", "--email", "o@acme.test", "--password", "correct horse", "--data", dir}, nil, &boot, io.Discard); err != nil {
		t.Fatal(err)
	}
	var res struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(boot.Bytes(), &res); err != nil {
		t.Fatal(err)
	}

	var id string
	serveWhile(t, dir, func(base string) {
		var pos struct{ ID string }
		apiCall(t, base, res.APIKey, "POST", "/api/v1/positions", `{"title":"Staff engineer","description":"","questions":["Why us?"],"rubric":[]}`, http.StatusCreated, &pos)
		id = pos.ID
	})
	serveWhile(t, dir, func(base string) {
		var pos struct {
			Title     string
			Questions []string
		}
		apiCall(t, base, res.APIKey, "GET", "/api/v1/positions/"+id, "", http.StatusOK, &pos)
		if pos.Title != "Staff engineer" || len(pos.Questions) != 1 {
			t.Errorf("after restart the position reads %+v", pos)
		}
	})
}

// serveWhile runs the control plane on dir until f returns, then stops it
// and waits for run to return.
func serveWhile(t *testing.T, dir string, f func(base string), extraArgs ...string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr=" + addr, "--data=" + dir, "--warm-pool=0"}, extraArgs...), map[string]string{"PATH": "/usr/bin:/bin"}, io.Discard, io.Discard)
	}()
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("control plane not healthy: %v (run: %v)", err, <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	f(base)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func apiCall(t *testing.T, base, key, method, path, body string, wantStatus int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}
