package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The operations endpoints: outside the Stytch namespace (/v1/...), without credentials, and
// never holding a secret. They go through ServeHTTP like every route, so they get a request id,
// a log line and metrics, and a wrong method gets the JSON 405.
const (
	healthzPath = "/healthz"
	readyzPath  = "/readyz"
	openapiPath = "/openapi.json"
	metricsPath = "/metrics"
)

// Database is what /readyz asks of the store besides what the domain reaches through it.
type Database interface {
	// Probe reports whether the database answers (SQLite: whether its file opens afresh).
	Probe(ctx context.Context) error
	// CheckSchema reports whether the schema is at this binary's version.
	CheckSchema(ctx context.Context) error
}

// Option adjusts a Server at construction.
type Option func(*Server)

// WithMetrics records every request in m.
func WithMetrics(m *Metrics) Option { return func(s *Server) { s.metrics = m } }

// WithMetricsEndpoint also serves the metrics of WithMetrics at GET /metrics on this handler.
// serve leaves it out when --metrics-addr gives metrics a listener of their own.
func WithMetricsEndpoint() Option { return func(s *Server) { s.metricsEndpoint = true } }

// WithDatabase makes /readyz also probe db and check its schema. Without it /readyz checks only
// that the master key opens what the database holds (which needs the database to answer).
func WithDatabase(db Database) Option { return func(s *Server) { s.ready.db = db } }

// opsRoutes registers the operations endpoints on the mux.
func (s *Server) opsRoutes() {
	handle := func(pattern string, h http.HandlerFunc) {
		s.mux.Handle(pattern, h)
		s.patterns[pattern] = true
	}
	handle("GET "+healthzPath, s.healthz)
	handle("GET "+readyzPath, s.readyz)
	handle("GET "+openapiPath, s.openapi)
	if s.metricsEndpoint && s.metrics != nil {
		metrics := s.metrics.Handler()
		handle("GET "+metricsPath, metrics.ServeHTTP)
	}
}

// opsRoute reports the routes whose log line is at debug level: probes and scrapes come every
// few seconds and would drown the lines of the API's own requests.
func opsRoute(pattern string) bool {
	switch pattern {
	case "GET " + healthzPath, "GET " + readyzPath, "GET " + metricsPath:
		return true
	}
	return false
}

type statusBody struct {
	Status    string            `json:"status"`
	Checks    map[string]string `json:"checks,omitempty"`
	RequestID string            `json:"request_id"`
}

// healthz says the process is up and serving HTTP; it looks at nothing else, so a failing
// database restarts no process.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, statusBody{Status: "ok", RequestID: requestID(r)})
}

// readiness holds what /readyz remembers between calls.
type readiness struct {
	db Database

	mu         sync.Mutex
	keysOKTill time.Time
}

const (
	// readyTimeout bounds a readiness check: a database that does not answer in time is down
	// as far as a load balancer is concerned.
	readyTimeout = 3 * time.Second
	// keysCheckTTL is how long a successful master-key check is trusted. The check opens the
	// pepper of every project, the data only a restore from elsewhere would change, so it need
	// not run on every probe.
	keysCheckTTL = 10 * time.Second
)

// readyz says whether this replica can serve: the database answers, its schema is this
// binary's, and the master key opens what it holds. A failure answers 503 naming the check; its
// cause goes to the log under the request id, as it may name hosts or paths.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	checks := map[string]string{}
	failed := false
	run := func(name string, check func(context.Context) error) {
		if failed {
			checks[name] = "skipped"
			return
		}
		if err := check(ctx); err != nil {
			failed = true
			checks[name] = "failed"
			s.log.Warn("not ready", "request_id", requestID(r), "check", name, "err", err)
			return
		}
		checks[name] = "ok"
	}
	if db := s.ready.db; db != nil {
		run("database", db.Probe)
		run("schema", db.CheckSchema)
	}
	run("keys", s.checkKeys)
	if failed {
		s.writeJSON(w, http.StatusServiceUnavailable, statusBody{Status: "unavailable", Checks: checks, RequestID: requestID(r)})
		return
	}
	s.writeJSON(w, http.StatusOK, statusBody{Status: "ok", Checks: checks, RequestID: requestID(r)})
}

func (s *Server) checkKeys(ctx context.Context) error {
	rd := &s.ready
	rd.mu.Lock()
	fresh := time.Now().Before(rd.keysOKTill)
	rd.mu.Unlock()
	if fresh {
		return nil
	}
	if err := s.svc.CheckMasterKey(ctx); err != nil {
		return err
	}
	rd.mu.Lock()
	rd.keysOKTill = time.Now().Add(keysCheckTTL)
	rd.mu.Unlock()
	return nil
}

// openapi serves the OpenAPI document of every route (openapi.go).
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDocument)))
	w.WriteHeader(http.StatusOK)
	w.Write(openAPIDocument)
}
