package web

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"candor/processor/contract"
	"candor/store"
)

// Hole 1 of issue 9: tenant secrets could overwrite the processor's
// environment, and a tenant base URL could receive the operator's key.

func TestTenantSecretsAreAFixedListOfNames(t *testing.T) {
	e := newAttackEnv(t)
	tn := e.tenant(t, "Acme")
	owner := e.login(t, tn, store.RoleOwner)
	set := func(name, value string) response {
		return e.do(t, attackForm(attackAs(owner, request{Method: "POST", Path: "/settings/secrets"}),
			url.Values{"_csrf": {owner.CSRF}, "name": {name}, "value": {value}}))
	}
	for _, name := range []string{"LD_PRELOAD", "PATH", "GODEBUG", "CANDOR_CONTROL_URL", "CANDOR_PROCESSOR_TOKEN", "CANDOR_DATA", "CANDOR_INTERVIEWER", "SESSION_ID"} {
		res := set(name, "/tmp/evil.so")
		if res.Status != 422 {
			t.Errorf("saving %s: status %d, want 422", name, res.Status)
		}
		if !strings.Contains(string(res.Body), "OPENAI_API_KEY, OPENAI_BASE_URL") {
			t.Errorf("saving %s: the refusal does not name the allowed list", name)
		}
		if strings.Contains(string(res.Body), "/tmp/evil.so") {
			t.Errorf("saving %s: the refusal echoes the value", name)
		}
	}
	if res := set("OPENAI_API_KEY", "sk-tenant"); res.Status != 303 {
		t.Fatalf("saving OPENAI_API_KEY: status %d: %.300s", res.Status, res.Body)
	}
	got, err := e.db.Secrets(context.Background(), tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["OPENAI_API_KEY"] != "sk-tenant" {
		t.Errorf("stored secrets %v, want only OPENAI_API_KEY", got)
	}
}

func TestTenantBaseURLMustBePublicHTTPS(t *testing.T) {
	for _, allow := range []bool{false, true} {
		e := newAttackEnv(t, withConfig(func(c *Config) { c.AllowPrivateTargets = allow }))
		tn := e.tenant(t, "Acme")
		owner := e.login(t, tn, store.RoleOwner)
		cases := []struct {
			value        string
			okWhenPublic bool
			okWhenAllow  bool
		}{
			{"http://attacker.test/v1", false, true},
			{"https://127.0.0.1:9000/v1", false, true},
			{"https://169.254.169.254/", false, true},
			{"https://localhost/v1", false, true},
			{"https://user:hunter2@8.8.8.8/v1", false, false},
			{"https://8.8.8.8/v1", true, true},
		}
		for _, c := range cases {
			res := e.do(t, attackForm(attackAs(owner, request{Method: "POST", Path: "/settings/secrets"}),
				url.Values{"_csrf": {owner.CSRF}, "name": {"OPENAI_BASE_URL"}, "value": {c.value}}))
			want := c.okWhenPublic
			if allow {
				want = c.okWhenAllow
			}
			if (res.Status == 303) != want {
				t.Errorf("allow-private=%v, %s: status %d, want ok=%v", allow, c.value, res.Status, want)
			}
			if strings.Contains(string(res.Body), "hunter2") || strings.Contains(string(res.Body), c.value) {
				t.Errorf("allow-private=%v, %s: the answer echoes the URL", allow, c.value)
			}
		}
	}
}

func TestTenantBaseURLNeedsTheTenantsOwnKey(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	tn := e.tenant(t, "Acme")
	// Stored as an older version would have: no key beside the URL, and
	// names outside the list.
	for k, v := range map[string]string{"OPENAI_BASE_URL": "https://8.8.8.8/v1", "LD_PRELOAD": "/tmp/evil.so", "CANDOR_CONTROL_URL": "https://attacker.test"} {
		if err := e.db.SetSecret(ctx, tn.ID, k, v); err != nil {
			t.Fatal(err)
		}
	}
	_, _, iv := e.seed(t, tn)
	res := e.do(t, request{Method: "POST", Path: "/api/v1/interviews/" + iv + "/start", Key: tn.Key})
	if res.Status < 400 || !strings.Contains(string(res.Body), "OPENAI_API_KEY") {
		t.Fatalf("start with a tenant base URL and no tenant key: %d %s, want a refusal naming OPENAI_API_KEY", res.Status, res.Body)
	}
	if strings.Contains(string(res.Body), "8.8.8.8") {
		t.Errorf("the refusal echoes the URL: %s", res.Body)
	}
	if n := len(e.machines.launches()); n != 0 {
		t.Fatalf("%d machines launched, want none", n)
	}

	if err := e.db.SetSecret(ctx, tn.ID, "OPENAI_API_KEY", "sk-tenant"); err != nil {
		t.Fatal(err)
	}
	_, _, iv2 := e.seed(t, tn)
	e.start(t, tn, iv2)
	l := e.machines.launches()
	if len(l) != 1 {
		t.Fatalf("%d launches, want 1", len(l))
	}
	spec := l[0]
	if len(spec.Secrets) != 2 || spec.Secrets["OPENAI_API_KEY"] != "sk-tenant" || spec.Secrets["OPENAI_BASE_URL"] == "" {
		t.Errorf("launched with secrets %v, want only the tenant's key and base URL", spec.Secrets)
	}
	if spec.Env[contract.EnvPublicTargetsOnly] != "true" {
		t.Errorf("the processor was not told to dial public targets only: env %v", spec.Env)
	}
	if spec.Env["CANDOR_CONTROL_URL"] != e.srv.cfg.PublicURL {
		t.Errorf("CANDOR_CONTROL_URL = %q", spec.Env["CANDOR_CONTROL_URL"])
	}
}
