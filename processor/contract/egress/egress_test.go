package egress

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckAddr(t *testing.T) {
	refused := []string{
		"127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "fe80::1",
		"0.0.0.0", "::", "100.64.0.1", "fdaa::3", "fd00:ec2::254", "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe",
		"224.0.0.1", "255.255.255.255",
	}
	for _, s := range refused {
		if err := CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, ErrPrivateTarget) {
			t.Errorf("%s: err %v, want ErrPrivateTarget", s, err)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "104.18.6.192"} {
		if err := CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s: %v, want allowed", s, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://8.8.8.8/v1", false, true},
		{"http://8.8.8.8/v1", false, false},
		{"https://127.0.0.1:8443", false, false},
		{"https://[::1]/", false, false},
		{"https://169.254.169.254/latest", false, false},
		{"https://localhost:9000", false, false},
		{"https://api.internal", false, false},
		{"https://user:hunter2@8.8.8.8/", false, false},
		{"ftp://8.8.8.8/", false, false},
		{"not a url", false, false},
		{"http://127.0.0.1:9000", true, true},
		{"https://user:hunter2@127.0.0.1/", true, false},
	}
	for _, c := range cases {
		err := CheckURL(ctx, c.url, c.allowPrivate)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok=%v", c.url, c.allowPrivate, err, c.ok)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), c.url)) {
			t.Errorf("CheckURL(%q) error quotes the URL: %v", c.url, err)
		}
	}
}

// TestTransportRefusesPrivateAtConnectTime: a host that passed the save
// check but resolves to loopback now is refused by the dialer itself.
func TestTransportRefusesPrivateAtConnectTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the request reached the private server: %s", r.URL)
	}))
	defer srv.Close()
	c := &http.Client{Transport: Transport()}
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		_, err := c.Get(u + "/v1/models")
		if err == nil || !errors.Is(err, ErrPrivateTarget) {
			t.Errorf("GET %s: err %v, want ErrPrivateTarget", u, err)
		}
	}
}
