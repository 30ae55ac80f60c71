package mail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"candor/web/mail"
	"candor/web/mail/mailtest"
)

func TestSendDeliversTextAndHTMLWithAuth(t *testing.T) {
	srv := mailtest.Start(t, "candor", "s3cret-pass")
	m, err := mail.New(srv.URL(), "Candor <hiring@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.String(), "s3cret-pass") {
		t.Fatalf("String() shows the password: %s", m)
	}
	err = m.Send(context.Background(), mail.Message{To: "ada@example.com", Subject: "Your interview ✓",
		Text: "Join at https://candor.example/i/abc\n", HTML: "<p>Join <a href=\"https://candor.example/i/abc\">here</a></p>"})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Wait(t, "ada@example.com", "Your interview ✓", 10*time.Second)
	if srv.Auths() != 1 {
		t.Errorf("AUTH exchanges = %d, want 1", srv.Auths())
	}
	if !strings.Contains(got.Header.Get("From"), "hiring@example.com") {
		t.Errorf("From = %q", got.Header.Get("From"))
	}
	if links := got.Links(); len(links) != 1 || links[0] != "https://candor.example/i/abc" {
		t.Errorf("links in text = %v", links)
	}
	if !strings.Contains(got.HTML, `href="https://candor.example/i/abc"`) {
		t.Errorf("HTML part = %q", got.HTML)
	}
}

func TestSendFailureNamesTheServerWithoutThePassword(t *testing.T) {
	srv := mailtest.Start(t, "candor", "right")
	u := strings.Replace(srv.URL(), ":right@", ":wrong-secret@", 1)
	m, err := mail.New(u, "hiring@example.com")
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), mail.Message{To: "ada@example.com", Subject: "x", Text: "x"})
	if err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), srv.Addr) {
		t.Errorf("error does not name the server: %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages accepted without authentication", n)
	}
}

func TestNewRefusesBadSettingsWithoutEchoingThePassword(t *testing.T) {
	for _, tc := range []struct{ url, from, want string }{
		{"http://u:pw-123@host", "a@b.co", "scheme"},
		{"smtp://u:pw-123@", "a@b.co", "no host"},
		{"smtp://u:pw-123@host:99999", "a@b.co", "port"},
		{"smtp://u:pw-123@host", "", "sender"},
		{"smtp://u:pw-123@host", "not an address", "sender"},
	} {
		_, err := mail.New(tc.url, tc.from)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "pw-123") {
			t.Errorf("New(%q, %q) = %v, want an error about %s without the password", tc.url, tc.from, err, tc.want)
		}
	}
}
