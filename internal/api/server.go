// Package api serves the Stytch B2B HTTP API on top of the auth domain: routing, HTTP Basic
// project authentication, request decoding, the Stytch wire types and error envelope.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/auth"
)

// Server is the HTTP face of an auth.Service.
type Server struct {
	svc      *auth.Service
	log      *slog.Logger
	mux      *http.ServeMux
	patterns map[string]bool

	metrics         *Metrics // nil: nothing is counted
	metricsEndpoint bool     // serve metrics at GET /metrics
	ready           readiness

	ipLimits       *buckets // nil: no per-IP limit
	projectLimits  *buckets // nil: no per-project limit
	trustedProxies []netip.Prefix
}

// New returns the API handler. Every response, errors included, is a JSON object (but for
// /metrics, in Prometheus's format). Options add metrics and the database /readyz checks.
func New(svc *auth.Service, log *slog.Logger, opts ...Option) *Server {
	s := &Server{svc: svc, log: log, mux: http.NewServeMux(), patterns: map[string]bool{}}
	for _, opt := range opts {
		opt(s)
	}
	s.routes()
	s.opsRoutes()
	return s
}

// route is one endpoint. Handlers of authenticated routes get the project id.
type route struct {
	method, path string
	handler      func(w http.ResponseWriter, r *http.Request, projectID string)
	public       bool // JWKS: no credentials needed
}

func (s *Server) routes() {
	const orgs = "/v1/b2b/organizations"
	table := []route{
		{method: "GET", path: "/v1/b2b/recovery_codes/{organization_id}/{member_id}", handler: s.getRecoveryCodes},
		{method: "POST", path: "/v1/b2b/recovery_codes/recover", handler: s.recoverCode},
		{method: "POST", path: "/v1/b2b/recovery_codes/rotate", handler: s.rotateRecoveryCodes},

		{method: "POST", path: orgs, handler: s.createOrganization},
		{method: "GET", path: orgs + "/{organization_id}", handler: s.getOrganization},
		{method: "PUT", path: orgs + "/{organization_id}", handler: s.updateOrganization},
		{method: "DELETE", path: orgs + "/{organization_id}", handler: s.deleteOrganization},
		{method: "POST", path: orgs + "/search", handler: s.searchOrganizations},

		{method: "POST", path: orgs + "/{organization_id}/members", handler: s.createMember},
		{method: "GET", path: orgs + "/{organization_id}/member", handler: s.getMember},
		{method: "PUT", path: orgs + "/{organization_id}/members/{member_id}", handler: s.updateMember},
		{method: "DELETE", path: orgs + "/{organization_id}/members/{member_id}", handler: s.deleteMember},
		{method: "DELETE", path: orgs + "/{organization_id}/members/{member_id}/totp", handler: s.deleteMemberTOTP},

		{method: "POST", path: "/v1/b2b/totp", handler: s.createTOTP},
		{method: "POST", path: "/v1/b2b/totp/authenticate", handler: s.authenticateTOTP},
		{method: "POST", path: "/v1/b2b/totp/migrate", handler: s.migrateTOTP},

		{method: "POST", path: "/v1/b2b/passwords/migrate", handler: s.migratePassword},
		{method: "POST", path: "/v1/b2b/passwords/authenticate", handler: s.authenticatePassword},

		{method: "POST", path: "/v1/b2b/sessions/authenticate", handler: s.authenticateSession},
		{method: "GET", path: "/v1/b2b/sessions", handler: s.listSessions},
		{method: "POST", path: "/v1/b2b/sessions/revoke", handler: s.revokeSession},
		{method: "GET", path: "/v1/b2b/sessions/jwks/{project_id}", handler: s.jwks, public: true},
	}
	table = append(table, s.sparekeyRoutes()...)
	for _, rt := range table {
		pattern := rt.method + " " + rt.path
		s.mux.Handle(pattern, s.endpoint(rt))
		s.patterns[pattern] = true
	}
}

// allowedMethods lists the methods the path of r is served with; none means an unknown path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); s.patterns[pattern] {
			allow = append(allow, m)
		}
	}
	return allow
}

// Patterns lists the mux patterns the server registered, the operations endpoints included
// (for the OpenAPI check).
func (s *Server) Patterns() []string {
	out := make([]string, 0, len(s.patterns))
	for p := range s.patterns {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// endpoint wraps a handler with project authentication unless the route is public.
func (s *Server) endpoint(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.public {
			rt.handler(w, r, "")
			return
		}
		id, sec, ok := r.BasicAuth()
		if !ok || id == "" {
			s.fail(w, r, auth.ErrUnauthorizedCredentials)
			return
		}
		if err := s.svc.AuthenticateProject(r.Context(), id, sec); err != nil {
			s.fail(w, r, err)
			return
		}
		setProject(r, id)
		if s.throttled(w, r, s.projectLimits, id) {
			return
		}
		rt.handler(w, r, id)
	})
}

type ctxKey int

const infoKey ctxKey = 0

// requestInfo is what the middleware and handlers share about one request, for the log line
// and the metrics.
type requestInfo struct {
	id             string
	projectID      string
	organizationID string // canonical, from the success body; "" when it names none or many
	errorType      string // of the error envelope written
	recoveryCodes  int    // codes in the success body
}

func info(r *http.Request) *requestInfo {
	if ri, ok := r.Context().Value(infoKey).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

func requestID(r *http.Request) string { return info(r).id }

func setProject(r *http.Request, id string) { info(r).projectID = id }

// noteError records the error_type of the envelope being written (respond.go writeError).
func noteError(r *http.Request, errorType string) { info(r).errorType = errorType }

// noteSuccess records what the log line and the metrics need from a success body
// (respond.go ok): the organization it is about, and how many recovery codes it carries.
// Bodies about no single organization (search, the JWKS, revoke, member delete) leave it empty.
func noteSuccess(r *http.Request, body stamper) {
	ri := info(r)
	switch b := body.(type) {
	case *recoveryCodesResponse:
		ri.organizationID, ri.recoveryCodes = b.Organization.OrganizationID, len(b.RecoveryCodes)
	case *createTOTPResponse:
		ri.organizationID, ri.recoveryCodes = b.Organization.OrganizationID, len(b.RecoveryCodes)
	case *migrateTOTPResponse:
		ri.organizationID, ri.recoveryCodes = b.Organization.OrganizationID, len(b.RecoveryCodes)
	case *recoverResponse:
		ri.organizationID = b.Organization.OrganizationID
	case *sessionGrantResponse:
		ri.organizationID = b.Organization.OrganizationID
	case *organizationResponse:
		ri.organizationID = b.Organization.OrganizationID
	case *organizationDeleted:
		ri.organizationID = b.OrganizationID
	case *memberResponse:
		ri.organizationID = b.Organization.OrganizationID
	case *migratePasswordResponse:
		ri.organizationID = b.Organization.OrganizationID
	case *authenticatePasswordResponse:
		ri.organizationID = b.Organization.OrganizationID
	case *authenticateSessionResponse:
		ri.organizationID = b.Organization.OrganizationID
	case *listSessionsResponse:
		if len(b.MemberSessions) > 0 { // one member's sessions: one organization
			ri.organizationID = b.MemberSessions[0].OrganizationID
		}
	}
}

// statusRecorder remembers the status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP gives every request an id, recovers panics into a 500 envelope, routes, counts, and
// logs one line. The log line carries the request id of the response body, the route pattern,
// the status, the duration and the canonical project and organization ids; never a body, a query
// string or a header value: they may hold codes, tokens or passwords.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ri := &requestInfo{id: "request-id-test-" + uuid.NewString()}
	ctx := context.WithValue(r.Context(), infoKey, ri)
	// Who is asking, for the audit events the domain writes.
	ctx = auth.WithCaller(ctx, auth.Caller{RequestID: ri.id, ClientIP: s.clientIP(r), UserAgent: r.UserAgent()})
	r = r.WithContext(ctx)
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic", "request_id", ri.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if rec.status == 0 {
				s.writeError(rec, r, http.StatusInternalServerError, auth.ErrInternal.Type, auth.ErrInternal.Message)
			}
		}
		elapsed := time.Since(start)
		status := rec.status
		if status == 0 {
			status = http.StatusOK // a handler that wrote nothing: net/http sends 200
		}
		if s.metrics != nil {
			s.metrics.observe(r.Pattern, r.Method, status, elapsed, ri)
		}
		level := slog.LevelInfo
		if opsRoute(r.Pattern) {
			level = slog.LevelDebug
		}
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("request_id", ri.id),
			slog.String("method", r.Method),
			slog.String("route", r.Pattern),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("project_id", ri.projectID),
			slog.String("organization_id", ri.organizationID),
			slog.String("error_type", ri.errorType),
		)
	}()
	// ServeMux would answer an unclean path with a redirect and an unknown path or method with
	// text; the contract wants JSON 404 and 405 envelopes. An unclean path (//, /./, /../) names
	// no route: a redirect would send the SDK's request, body and credentials, somewhere else.
	if !cleanPath(r) {
		s.writeError(rec, r, http.StatusNotFound, "route_not_found", "No such endpoint.")
		return
	}
	if _, pattern := s.mux.Handler(r); !s.patterns[pattern] {
		if allow := s.allowedMethods(r); len(allow) > 0 {
			rec.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeError(rec, r, http.StatusMethodNotAllowed, "method_not_allowed", "This endpoint does not accept that HTTP method.")
			return
		}
		s.writeError(rec, r, http.StatusNotFound, "route_not_found", "No such endpoint.")
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1/") && s.throttled(rec, r, s.ipLimits, s.clientIP(r)) {
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// cleanPath reports whether the request's path is one ServeMux routes as it is, without
// redirecting to a cleaned form (it leaves CONNECT requests alone). A trailing slash is kept, as
// ServeMux keeps it.
func cleanPath(r *http.Request) bool {
	p := r.URL.EscapedPath()
	if r.Method == http.MethodConnect {
		return true
	}
	if p == "" || p[0] != '/' {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean == p
}
