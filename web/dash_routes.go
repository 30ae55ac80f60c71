package web

// dashboardRoutes registers the recruiter dashboard's server-rendered pages
// and its embedded static assets. server.go calls it once while building the
// echo instance.
func (s *Server) dashboardRoutes() {
}
