package web

import (
	"context"
	"net/http"

	"candor/processor/contract/egress"
)

// Webhook endpoints follow the private-target rule of every tenant-chosen
// URL (package egress): https on public addresses, checked when saved and
// again at connect time, unless Config.AllowPrivateTargets.

func (s *Server) checkWebhookURL(ctx context.Context, raw string) error {
	return egress.CheckURL(ctx, raw, s.cfg.AllowPrivateTargets)
}

var errPrivateTarget = egress.ErrPrivateTarget

// webhookClient posts deliveries: no redirects (a 3xx is a failed
// attempt: following one could lead anywhere), and unless private targets
// are allowed, egress's transport, which refuses them at connect time.
func (s *Server) webhookClient() *http.Client {
	s.webhookOnce.Do(func() {
		var t http.RoundTripper = http.DefaultTransport
		if !s.cfg.AllowPrivateTargets {
			t = egress.Transport()
		}
		s.webhookHTTP = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	})
	return s.webhookHTTP
}
