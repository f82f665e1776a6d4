package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sparekey/sparekey/internal/auth"
)

// RateLimits configures the token buckets in front of the API: one per client IP (before
// authentication, so a flood of bad credentials is throttled too) and one per project (after
// it). A zero rate turns a limit off. The buckets live in this process: behind N replicas a
// client gets up to N times the rate.
type RateLimits struct {
	PerIP           rate.Limit
	PerIPBurst      int
	PerProject      rate.Limit
	PerProjectBurst int
}

// WithRateLimits turns on the rate limits.
func WithRateLimits(l RateLimits) Option {
	return func(s *Server) {
		if l.PerIP > 0 {
			s.ipLimits = newBuckets(l.PerIP, l.PerIPBurst)
		}
		if l.PerProject > 0 {
			s.projectLimits = newBuckets(l.PerProject, l.PerProjectBurst)
		}
	}
}

// WithTrustedProxies names the proxies (load balancers) whose X-Forwarded-For is believed: the
// client IP of a request from one of them is the right-most address in that header that is not
// itself a trusted proxy. Requests from anywhere else are judged by their own address, so a
// client cannot pick its IP by sending the header.
func WithTrustedProxies(prefixes []netip.Prefix) Option {
	return func(s *Server) { s.trustedProxies = prefixes }
}

// buckets is a set of token buckets by key. Idle buckets are dropped now and then, so the set
// stays as small as the clients that are active.
type buckets struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	byKey     map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newBuckets(limit rate.Limit, burst int) *buckets {
	if burst < 1 {
		burst = max(1, int(math.Ceil(float64(limit))))
	}
	return &buckets{limit: limit, burst: burst, byKey: map[string]*bucket{}}
}

// take spends a token of key's bucket, or reports how long until one is there.
func (b *buckets) take(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// A bucket idle long enough to have refilled is the same as a new one: drop it.
	full := time.Duration(float64(b.burst) / float64(b.limit) * float64(time.Second))
	if now.Sub(b.lastSweep) > max(full, time.Minute) {
		for k, bk := range b.byKey {
			if now.Sub(bk.seen) > full {
				delete(b.byKey, k)
			}
		}
		b.lastSweep = now
	}
	bk, found := b.byKey[key]
	if !found {
		bk = &bucket{lim: rate.NewLimiter(b.limit, b.burst)}
		b.byKey[key] = bk
	}
	bk.seen = now
	r := bk.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// throttled writes the 429 when key's bucket is empty and reports whether it did.
func (s *Server) throttled(w http.ResponseWriter, r *http.Request, b *buckets, key string) bool {
	if b == nil {
		return false
	}
	ok, wait := b.take(key, time.Now())
	if ok {
		return false
	}
	e := *auth.ErrTooManyRequests
	e.RetryAfter = wait
	s.fail(w, r, &e)
	return true
}

// clientIP is the address a request came from, through trusted proxies only.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(addr) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed entry: trust nothing to its left
		}
		if !s.trusted(hop) {
			return hop.Unmap().String()
		}
		addr = hop
	}
	return addr.Unmap().String()
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
