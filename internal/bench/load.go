package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// op is a kind of request.
type op int

const (
	opGet op = iota
	opRecover
	opWrongCode
	opRotate
	opBare
	numOps
)

var opNames = [numOps]string{"get", "recover", "wrong_code", "rotate", "get"}

// opOrder is the order kinds are listed in a phase breakdown.
var opOrder = []string{"get", "recover", "wrong_code", "rotate"}

// request is one HTTP call and the status that counts as success.
type request struct {
	kind   op
	method string
	url    string
	body   []byte // nil for GET
	want   int
}

// workerState is what a request generator may keep per worker.
type workerState struct {
	id  int
	rng *rand.Rand
}

// generator returns a worker's next request, or false when its supply (codes, intermediate
// sessions) has run out, which ends the phase for every worker.
type generator func(w *workerState) (request, bool)

// loader is a keep-alive HTTP/1.1 client with a connection per worker.
type loader struct {
	client        *http.Client
	transport     *http.Transport
	authorization string // the Basic header, computed once
	progress      io.Writer
}

func newLoader(concurrency int, authorization string, progress io.Writer) *loader {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 2*concurrency + 16, // every worker keeps its connection between requests
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &loader{
		client:        &http.Client{Transport: tr, Timeout: time.Minute},
		transport:     tr,
		authorization: authorization,
		progress:      progress,
	}
}

func (l *loader) close() { l.transport.CloseIdleConnections() }

// do sends one request and reads the whole answer; it reports the status and body size.
func (l *loader) do(ctx context.Context, r request) (status int, n int64, err error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", l.authorization)
	req.Header.Set("Content-Type", "application/json") // as every Stytch SDK sends it
	res, err := l.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	n, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, n, err
}

// loadSpec is one timed phase's load.
type loadSpec struct {
	name        string
	concurrency int
	duration    time.Duration
	rate        float64 // requests per second across workers when paced; 0 is closed loop
	next        generator
	serverPID   int // 0 when the server's CPU cannot be read
}

// workerResult is one worker's record; merged after the phase so workers share nothing hot.
type workerResult struct {
	latencies [numOps][]time.Duration
	lags      []time.Duration // paced: how late each request left
	errors    [numOps]int64
	bytes     int64
	firstErr  string
}

// run drives one phase and measures it: wall time, per-request latencies, the server's and the
// bench's CPU. In a closed loop each worker sends its next request when the previous answer
// is read. Paced, requests are due at fixed intervals and latency counts from the due time,
// so a server that falls behind is charged for the queue it causes (no coordinated omission).
func (l *loader) run(parent context.Context, spec loadSpec) (Phase, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	results := make([]workerResult, spec.concurrency)
	var (
		stop      atomic.Bool
		exhausted atomic.Bool
		done      atomic.Int64
		seq       atomic.Int64
		wg        sync.WaitGroup
	)
	var interval time.Duration
	if spec.rate > 0 {
		interval = time.Duration(float64(time.Second) / spec.rate)
	}

	serverBefore, serverErr := time.Duration(0), error(nil)
	if spec.serverPID > 0 {
		serverBefore, serverErr = ProcessCPU(spec.serverPID)
	}
	clientBefore, clientErr := SelfCPU()
	start := time.Now()
	deadline := start.Add(spec.duration)
	for i := range spec.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws := &workerState{id: i, rng: rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i)))}
			res := &results[i]
			for !stop.Load() && ctx.Err() == nil {
				due := time.Now()
				if interval > 0 {
					due = start.Add(time.Duration(seq.Add(1)-1) * interval)
					if due.After(deadline) {
						return
					}
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
				} else if due.After(deadline) {
					return
				}
				r, ok := spec.next(ws)
				if !ok {
					exhausted.Store(true)
					stop.Store(true)
					return
				}
				t0 := time.Now()
				if interval > 0 {
					res.lags = append(res.lags, t0.Sub(due))
					t0 = due
				}
				status, n, err := l.do(ctx, r)
				res.latencies[r.kind] = append(res.latencies[r.kind], time.Since(t0))
				res.bytes += n
				done.Add(1)
				if err != nil || status != r.want {
					res.errors[r.kind]++
					if res.firstErr == "" {
						if err != nil {
							res.firstErr = fmt.Sprintf("%s %s: %v", r.method, opNames[r.kind], err)
						} else {
							res.firstErr = fmt.Sprintf("%s %s: HTTP %d, want %d", r.method, opNames[r.kind], status, r.want)
						}
					}
				}
			}
		}()
	}
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				el := now.Sub(start)
				if el > spec.duration {
					el = spec.duration
				}
				fmt.Fprintf(l.progress, "  %s: %.0fs/%.0fs, %d requests (%.0f/s)\n", spec.name, el.Seconds(), spec.duration.Seconds(), done.Load(), float64(done.Load())/now.Sub(start).Seconds())
			}
		}
	}()
	wg.Wait()
	elapsed := time.Since(start)
	clientAfter, clientErr2 := SelfCPU()
	serverAfter := time.Duration(0)
	if spec.serverPID > 0 && serverErr == nil {
		serverAfter, serverErr = ProcessCPU(spec.serverPID)
	}
	cancel()
	<-progressDone

	p := Phase{Name: spec.name, Concurrency: spec.concurrency, Seconds: round3(elapsed.Seconds()), EndedEarly: exhausted.Load(), ByOp: map[string]OpStats{}}
	if spec.rate > 0 {
		r := round3(spec.rate)
		p.TargetRate = &r
		var lags []time.Duration
		for i := range results {
			lags = append(lags, results[i].lags...)
		}
		lag := Summarize(lags).P99
		p.SendLagP99MS = &lag
	}
	var all []time.Duration
	var bytes int64
	for k := range numOps {
		var lat []time.Duration
		var errs int64
		for i := range results {
			lat = append(lat, results[i].latencies[k]...)
			errs += results[i].errors[k]
		}
		if len(lat) == 0 {
			continue
		}
		all = append(all, lat...)
		p.Errors += errs
		p.ByOp[opNames[k]] = OpStats{Ops: int64(len(lat)), Errors: errs, Latency: Summarize(lat)}
	}
	for i := range results {
		bytes += results[i].bytes
		if p.FirstError == "" {
			p.FirstError = results[i].firstErr
		}
	}
	p.Ops = int64(len(all))
	p.Latency = Summarize(all)
	if p.Ops > 0 {
		p.Throughput = round3(float64(p.Ops) / elapsed.Seconds())
		p.ResponseBytesPerOp = round3(float64(bytes) / float64(p.Ops))
		if spec.serverPID > 0 && serverErr == nil {
			cpu := (serverAfter - serverBefore).Seconds()
			perOp := round3(cpu / float64(p.Ops) * 1e6)
			cpu = round3(cpu)
			p.ServerCPUSeconds, p.ServerCPUPerOpUS = &cpu, &perOp
		}
		if clientErr == nil && clientErr2 == nil {
			perOp := round3((clientAfter - clientBefore).Seconds() / float64(p.Ops) * 1e6)
			p.ClientCPUPerOpUS = &perOp
		}
	}
	if serverErr != nil {
		return p, fmt.Errorf("read the server's CPU time: %w", serverErr)
	}
	return p, parent.Err()
}
