package api

import (
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the Prometheus instruments of the API. They live on a registry the caller owns
// (never the global default one), so every server, and every test, counts on its own.
//
// Every label has a bounded set of values: route is the mux pattern (or "none" for a request no
// route matched), never the raw path; method is one of the methods HTTP defines, anything else
// "other"; outcome is an error_type of the contract or "success". No label or value ever holds
// an id, a code, a token or a secret.
//
// Webhooks: sparekey delivers none yet. When it does, the dispatcher registers its own queue
// depth gauge (sparekey_webhook_queue_depth) and delivery counter
// (sparekey_webhook_deliveries_total{result}) on the registry serve builds and hands to NewMetrics;
// until then no such metric exists, rather than one that always reads zero.
type Metrics struct {
	gatherer    prometheus.Gatherer
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	recovers    *prometheus.CounterVec
	lockAnswers *prometheus.CounterVec
	codesIssued *prometheus.CounterVec
	codesUsed   prometheus.Counter
}

// NewMetrics creates the API's instruments on reg.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		gatherer: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparekey_http_requests_total",
			Help: "HTTP requests answered, by route (the mux pattern), method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sparekey_http_request_duration_seconds",
			Help:    "Time from receiving a request to handing its response to the connection, by route, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
		recovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparekey_recovery_code_recovers_total",
			Help: `POST /v1/b2b/recovery_codes/recover answers, by outcome: "success" or the error_type.`,
		}, []string{"outcome"}),
		lockAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparekey_member_lock_answers_total",
			Help: "429 user_lock_limit_reached answers, by route: the failure that locked a member and every attempt refused while the lock held.",
		}, []string{"route"}),
		codesIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparekey_recovery_codes_issued_total",
			Help: "Recovery codes issued, by route: TOTP create and migrate (a new or imported set) and rotate (a replacement set).",
		}, []string{"route"}),
		codesUsed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sparekey_recovery_codes_used_total",
			Help: "Recovery codes spent by successful recovers.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.recovers, m.lockAnswers, m.codesIssued, m.codesUsed)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// The routes whose answers feed the recovery-code metrics.
const (
	recoverPattern     = "POST /v1/b2b/recovery_codes/recover"
	rotatePattern      = "POST /v1/b2b/recovery_codes/rotate"
	totpCreatePattern  = "POST /v1/b2b/totp"
	totpMigratePattern = "POST /v1/b2b/totp/migrate"
)

// issuing are the routes whose success bodies carry a set of codes they just issued (GET shows
// codes without issuing any).
var issuing = map[string]bool{rotatePattern: true, totpCreatePattern: true, totpMigratePattern: true}

// observe records one answered request.
func (m *Metrics) observe(route, method string, status int, elapsed time.Duration, ri *requestInfo) {
	if route == "" {
		route = "none"
	}
	method = boundedMethod(method)
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(route, method, code).Inc()
	m.duration.WithLabelValues(route, method, code).Observe(elapsed.Seconds())
	if route == recoverPattern {
		outcome := ri.errorType
		if status == http.StatusOK {
			outcome = "success"
			m.codesUsed.Inc()
		}
		if outcome == "" {
			outcome = "unknown" // every error goes through writeError, which names it; kept as a guard
		}
		m.recovers.WithLabelValues(outcome).Inc()
	}
	// The API layer sees the same 429 whether this failure reached the threshold or the member
	// was already locked; telling them apart would take a signal from the domain.
	if ri.errorType == "user_lock_limit_reached" {
		m.lockAnswers.WithLabelValues(route).Inc()
	}
	if status == http.StatusOK && issuing[route] && ri.recoveryCodes > 0 {
		m.codesIssued.WithLabelValues(route).Add(float64(ri.recoveryCodes))
	}
}

// boundedMethod keeps the method label to the methods HTTP defines: a client may send any token.
func boundedMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// PoolReporter is a store that reports its connection pools, by pool name, in database/sql's
// terms (the PostgreSQL store maps pgxpool's figures onto them).
type PoolReporter interface {
	PoolStats() map[string]sql.DBStats
}

// NewPoolCollector exports a store's connection pools, read at each scrape.
func NewPoolCollector(store PoolReporter) prometheus.Collector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("sparekey_db_pool_"+name, help, []string{"pool"}, nil)
	}
	return &poolCollector{
		store:   store,
		maxOpen: desc("max_open_connections", "Most connections the pool may open."),
		open:    desc("open_connections", "Connections open, in use or idle."),
		inUse:   desc("in_use_connections", "Connections in use."),
		idle:    desc("idle_connections", "Idle connections."),
		waits:   desc("wait_count_total", "Times a caller had to wait for a connection."),
		waited:  desc("wait_duration_seconds_total", "Time callers spent waiting for a connection."),
	}
}

type poolCollector struct {
	store                                     PoolReporter
	maxOpen, open, inUse, idle, waits, waited *prometheus.Desc
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.maxOpen, c.open, c.inUse, c.idle, c.waits, c.waited} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for pool, s := range c.store.PoolStats() {
		ch <- prometheus.MustNewConstMetric(c.maxOpen, prometheus.GaugeValue, float64(s.MaxOpenConnections), pool)
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(s.OpenConnections), pool)
		ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(s.InUse), pool)
		ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.Idle), pool)
		ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.WaitCount), pool)
		ch <- prometheus.MustNewConstMetric(c.waited, prometheus.CounterValue, s.WaitDuration.Seconds(), pool)
	}
}
