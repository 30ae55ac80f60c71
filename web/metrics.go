package web

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus collectors, in a registry the server
// owns (or the one given in Config.Registry).
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	entries  prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "candor_http_requests_total",
			Help: "HTTP requests answered, by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "candor_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"method", "route"}),
		entries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "candor_transcript_entries_total",
			Help: "Transcript entries stored from processors (duplicates excluded).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.entries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("web: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(method, route string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
}

// handleMetrics serves /metrics on the public address only to the
// operator's bearer token (Config.MetricsToken): request counts, machine
// launches and process figures are the operator's business. Without a
// token it is not served here (MetricsHandler serves a separate address).
func (s *Server) handleMetrics(c echo.Context) error {
	if s.cfg.MetricsToken == "" {
		return errorf(CodeNotFound, "metrics are not served on this address: set --metrics-token or --metrics-addr")
	}
	tok, ok := bearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.MetricsToken)) != 1 {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="candor-metrics"`)
		return errorf(CodeUnauthorized, "metrics need the operator's token: Authorization: Bearer <--metrics-token>")
	}
	s.MetricsHandler().ServeHTTP(c.Response(), c.Request())
	return nil
}

// MetricsHandler serves the server's metrics with no auth of its own, for
// a separate listen address the operator keeps private (--metrics-addr).
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})
}
