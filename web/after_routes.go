package web

import (
	"github.com/labstack/echo/v4"

	"candor/store"
)

// afterRoutes registers what follows an interview: exports, the report,
// scorecards and reviews, webhooks, retention, erasure and the audit log.
// write guards routes that change data (owners and recruiters).
func (s *Server) afterRoutes(api *echo.Group, write echo.MiddlewareFunc) {
	api.GET("/interviews/:id/report.pdf", s.handleReportPDF)
	api.GET("/interviews/:id/scorecard", s.handleGetScorecard)
	api.POST("/interviews/:id/scorecard", s.handleRescore, write)
	api.GET("/interviews/:id/reviews", s.handleListReviews)
	api.POST("/interviews/:id/reviews", s.handleSaveReview, write)

	api.POST("/webhooks", s.handleCreateWebhook, write)
	api.GET("/webhooks", s.handleListWebhooks, write)
	api.DELETE("/webhooks/:id", s.handleDeleteWebhook, write)
	api.GET("/webhooks/:id/deliveries", s.handleListDeliveries, write)
	api.POST("/webhooks/:id/deliveries/:delivery_id/retry", s.handleRetryDelivery, write)

	owner := s.requireRole(store.RoleOwner)
	api.GET("/retention", s.handleGetRetention)
	api.PUT("/retention", s.handlePutRetention, owner)
	api.DELETE("/candidates/:id", s.handleEraseCandidate, write)
	api.DELETE("/interviews/:id", s.handleEraseInterview, write)
	api.GET("/audit", s.handleAudit, owner)
}

// startAfterInterview starts the outbox consumers: the scorer (and, in
// webhooks.go, delivery).
func (s *Server) startAfterInterview() {
	s.startScorer()
	s.startWebhooks()
	s.startSweeper()
}
