package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sparekey/sparekey/internal/api"
	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/webhook"
)

const serveUsage = `Usage: sparekey serve [flags]

Serves the Stytch B2B API on --addr (default 127.0.0.1:8080). With no --db it keeps its data in
./sparekey-data/sparekey.db, creating it, a master key beside it and a first project (whose
credentials it prints once, with an SDK snippet) on the first start.

With --db postgres://... many replicas can share one database. There is no data folder, so the
master key must be configured (the same on every replica; generate one with openssl rand -hex 32),
projects are made with 'sparekey project create --db postgres://...', and the schema must be at
this binary's version: run 'sparekey migrate --db postgres://...' first, or give --migrate.

Operations (no credentials, outside /v1): GET /healthz (the process is up), GET /readyz (the
database answers, its schema is this binary's, the master key opens its data; 503 naming the
failed check otherwise), GET /openapi.json (every route), GET /metrics (Prometheus; on its own
listener with --metrics-addr). SIGTERM or SIGINT stops accepting connections, lets in-flight
requests finish for up to --shutdown-timeout, and closes the database (SQLite: checkpointed).

Flags (each also read from its SPAREKEY_* environment twin; a secret also from the file its
*_FILE twin names):
  --addr ADDR                  listen address (SPAREKEY_ADDR; default 127.0.0.1:8080)
  --db sqlite:PATH|postgres://user:password@host:port/database
                               database (SPAREKEY_DB or SPAREKEY_DB_FILE; default
                               sqlite:./sparekey-data/sparekey.db)
  --master-key KEY             64 hex characters or base64 of 32 bytes (SPAREKEY_MASTER_KEY)
  --master-key-file PATH       file holding the master key (SPAREKEY_MASTER_KEY_FILE)
  --old-master-keys LIST       comma-separated earlier master keys, during a master-key rotation:
                               data sealed under them still opens (SPAREKEY_OLD_MASTER_KEYS or
                               SPAREKEY_OLD_MASTER_KEYS_FILE); see sparekey help keys rotate-master
  --migrate                    PostgreSQL: apply pending migrations first (SPAREKEY_MIGRATE=true);
                               SQLite always does
  --db-max-conns N             PostgreSQL: connection pool size (SPAREKEY_DB_MAX_CONNS; default 16)
  --db-statement-timeout D     PostgreSQL: cancel statements running longer, 0 for the server's
                               setting (SPAREKEY_DB_STATEMENT_TIMEOUT; default 10s)
  --recovery-code-length N     12 or 16 symbols (SPAREKEY_RECOVERY_CODE_LENGTH; default 12)
  --lock-threshold N           failed MFA attempts that lock a member (SPAREKEY_LOCK_THRESHOLD;
                               default 10)
  --lock-duration D            lock length, e.g. 1h (SPAREKEY_LOCK_DURATION; default 1h)
  --log-format text|json       log format (SPAREKEY_LOG_FORMAT; default text)
  --log-level debug|info|warn|error
                               log level (SPAREKEY_LOG_LEVEL; default info); probes and scrapes
                               of the operations routes log at debug
  --metrics-addr ADDR          serve /metrics on this address instead of --addr
                               (SPAREKEY_METRICS_ADDR; default: on --addr)
  --signing-key-cache-ttl D    how long a replica trusts its cached signing keys before reading
                               them again (SPAREKEY_SIGNING_KEY_CACHE_TTL; default 1m, 1s to 1h)
  --shutdown-timeout D         time in-flight requests get to finish on SIGTERM
                               (SPAREKEY_SHUTDOWN_TIMEOUT; default 15s)
  --low-codes-threshold N      a recover leaving 1..N codes writes recovery_codes.low (default 3;
                               0 = off; 0 always writes recovery_codes.exhausted)
  --event-retention D          how long audit events are kept; older ones are deleted every few
                               minutes, except those a pending webhook delivery needs
                               (SPAREKEY_EVENT_RETENTION; default 0 = for ever, else at least 24h)
  --code-storage MODE          encrypted (default: GET shows the unused codes) or strict (keyed
                               hashes only, NIST SP 800-63B-4: codes are shown once, when issued,
                               and GET answers 400 recovery_codes_not_retrievable)
  --rate-limit-ip R            requests per second per client IP, 0 = off (default 0); answered
                               429 too_many_requests with Retry-After. Counted per replica.
  --rate-limit-ip-burst N      requests a client IP may make at once (default: R rounded up)
  --rate-limit-project R       requests per second per project, 0 = off (default 0)
  --rate-limit-project-burst N requests a project may make at once (default: R rounded up)
  --trusted-proxies LIST       comma-separated IPs/CIDRs of load balancers whose X-Forwarded-For
                               names the client (default: none; the peer address is the client)
` + webhookServeUsage + `
Webhooks (registered with 'sparekey webhooks create'): every replica delivers the deliveries due,
sharing them through the database; SIGTERM releases attempts still in flight after the grace.

Check a configuration without serving: sparekey config check [the same flags].

Example:
  sparekey serve                                    # SQLite in ./sparekey-data, 127.0.0.1:8080
  SPAREKEY_MASTER_KEY_FILE=/etc/sparekey/master.key \
    sparekey serve --addr :8080 --db postgres://sparekey@db:5432/sparekey
`

type serveFlags struct {
	storageFlags
	domainFlags
	limitFlags
	webhookFlags
	addr            string
	metricsAddr     string
	logFormat       string
	logLevel        string
	shutdownTimeout time.Duration
}

// register defines serve's flags; config check defines the same ones.
func (f *serveFlags) register(fs *flag.FlagSet) {
	f.storageFlags.register(fs)
	f.storageFlags.registerMigrate(fs)
	f.domainFlags.register(fs)
	f.limitFlags.register(fs)
	f.webhookFlags.register(fs)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve /metrics on this address instead of --addr")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 15*time.Second, "time to finish in-flight requests")
}

// validate checks every setting without opening anything, and names each one at fault.
func (f *serveFlags) validate() error {
	errs := []error{f.storageFlags.validate(), f.storageFlags.validateMasterKey(), f.limitFlags.validate(), f.webhookFlags.validate()}
	if _, err := f.domainFlags.config(); err != nil {
		errs = append(errs, err)
	}
	if _, err := newLogger(io.Discard, f.logFormat, f.logLevel); err != nil {
		errs = append(errs, err)
	}
	if err := checkAddr(f.addr); err != nil {
		errs = append(errs, settingError("addr", "%v", err))
	}
	if f.metricsAddr != "" {
		if err := checkAddr(f.metricsAddr); err != nil {
			errs = append(errs, settingError("metrics-addr", "%v", err))
		} else if _, port, _ := net.SplitHostPort(f.addr); f.metricsAddr == f.addr && port != "0" && port != "" {
			errs = append(errs, settingError("metrics-addr", "must differ from --addr; leave it empty to serve /metrics on --addr"))
		}
	}
	if f.shutdownTimeout <= 0 {
		errs = append(errs, settingError("shutdown-timeout", "must be more than 0s, not %s", f.shutdownTimeout))
	}
	return errors.Join(errs...)
}

// checkAddr accepts what net.Listen("tcp", ...) does: host:port, the host and the port optional
// (":8080", "127.0.0.1:0").
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, e.g. 127.0.0.1:8080, not %q", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil && port != "" {
		return fmt.Errorf("has no valid port: %q", addr)
	}
	return nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlagSet("serve", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage) }
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	cfg, err := f.domainFlags.config()
	if err != nil {
		return err
	}
	if err := f.checkMasterKeySource(); err != nil {
		return err
	}
	store, err := f.openStore(ctx, f.migrate)
	if err != nil {
		return err
	}
	defer store.Close() // after every request has ended: SQLite checkpoints its WAL here
	keys, err := f.keyring(ctx, store, stderr)
	if err != nil {
		return err
	}
	svc, err := auth.NewService(store, keys, cfg, nil)
	if err != nil {
		return err
	}
	if err := svc.CheckMasterKey(ctx); err != nil {
		return err
	}

	// One registry for the process, passed explicitly: the API's instruments, the store's pools,
	// the Go runtime and the process, and the webhook dispatcher's queue and delivery metrics.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), api.NewPoolCollector(store))
	metrics := api.NewMetrics(reg)
	opts := append([]api.Option{api.WithMetrics(metrics), api.WithDatabase(store)}, f.limitFlags.options()...)
	if f.metricsAddr == "" {
		opts = append(opts, api.WithMetricsEndpoint())
	}
	dispatcher, err := webhook.New(svc, f.webhookFlags.config(f.shutdownTimeout), log, webhook.WithMetrics(reg))
	if err != nil {
		return err
	}
	handler := pokeAfterRequests(api.New(svc, log, opts...), dispatcher)

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	base := "http://" + ln.Addr().String()
	if err := firstStart(ctx, svc, base, stdout, isPostgres(f.db), log); err != nil {
		ln.Close()
		return err
	}
	srv := newHTTPServer(handler, log)

	var metricsSrv *http.Server
	var metricsLn net.Listener
	if f.metricsAddr != "" {
		metricsLn, err = net.Listen("tcp", f.metricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (--metrics-addr): %w", f.metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		metricsSrv = newHTTPServer(mux, log)
	}

	go sweepExpired(ctx, store, svc, log)
	// The dispatcher outlives ctx a little: on a stop it claims nothing more, lets its attempts
	// in flight finish within the grace and records them, before the database closes.
	dispatchCtx, stopDispatching := context.WithCancel(context.WithoutCancel(ctx))
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		dispatcher.Run(dispatchCtx)
	}()

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if metricsSrv != nil {
		go func() { errc <- metricsSrv.Serve(metricsLn) }()
		log.Info("metrics listening", "addr", metricsLn.Addr().String(), "url", "http://"+metricsLn.Addr().String()+"/metrics")
	}
	log.Info("sparekey listening", "addr", ln.Addr().String(), "url", base, "db", displayDB(f.db))

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	stopDispatching()
	err = shutdown(srv, metricsSrv, f.shutdownTimeout, serveErr, log)
	<-dispatched
	return err
}

// newHTTPServer bounds what a slow or hostile client can hold: headers, bodies, idle connections.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// shutdown stops the listeners at once, so no new request is accepted, and gives the requests in
// flight until timeout to finish; their responses go out whole. Idle keep-alive connections are
// closed. Requests still running at the deadline have their connections closed and the exit is
// an error; a transaction they had open never commits half (each store call is one
// transaction). serve's deferred Close then closes the database once every query has returned.
func shutdown(srv, metricsSrv *http.Server, timeout time.Duration, serveErr error, log *slog.Logger) error {
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		log.Error("serving stopped", "err", serveErr)
	} else {
		log.Info("shutting down", "timeout", timeout.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("requests still in flight after --shutdown-timeout %s; their connections were closed", timeout)
		log.Warn("in-flight requests did not finish in time; closed their connections", "timeout", timeout.String())
	}
	if metricsSrv != nil {
		// A last scrape may be running; it gets what is left of the deadline.
		if merr := metricsSrv.Shutdown(ctx); merr != nil {
			metricsSrv.Close()
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	if err == nil {
		log.Info("stopped: every in-flight request finished")
	}
	return err
}

// firstStart creates a project when the database has none and prints its credentials with a
// ready-to-paste SDK snippet. They go to stdout, once, never to the log. A shared (PostgreSQL)
// database only gets a hint: replicas starting together would each create a project, and its
// secret would land in whichever replica's output, so there projects are made on purpose.
func firstStart(ctx context.Context, svc *auth.Service, base string, stdout io.Writer, shared bool, log *slog.Logger) error {
	has, err := svc.HasProjects(ctx)
	if err != nil || has {
		return err
	}
	if shared {
		log.Warn("the database has no project yet; create one with: sparekey project create --db postgres://... --json")
		return nil
	}
	p, sec, err := svc.CreateProject(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
sparekey created a project. Its secret is shown only now; keep it somewhere safe.

  project_id: %[1]s
  secret:     %[2]s

Node (npm install stytch):

  const stytch = require("stytch");
  const client = new stytch.B2BClient({
    project_id: "%[1]s",
    secret: "%[2]s",
    env: "%[3]s/",
  });

Python: B2BClient("%[1]s", "%[2]s", environment="%[3]s/")
Ruby:   StytchB2B::Client.new(project_id: "%[1]s", secret: "%[2]s", env: "%[3]s")
Go:     b2bstytchapi.NewClient("%[1]s", "%[2]s", b2bstytchapi.WithBaseURI("%[3]s"))

`, p.ID, sec, base)
	return nil
}

// sweepExpired deletes ended sessions and intermediate sessions now and then, and the events past
// their retention. Correctness does not depend on it (every read checks expiry); it keeps the
// tables small.
func sweepExpired(ctx context.Context, store auth.Store, svc *auth.Service, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := store.DeleteExpired(ctx, time.Now()); err != nil {
				if ctx.Err() == nil {
					log.Warn("sweep expired sessions", "err", err)
				}
			} else if n > 0 {
				log.Debug("swept expired sessions", "count", n)
			}
			if n, err := svc.PruneEvents(ctx); err != nil {
				if ctx.Err() == nil {
					log.Warn("prune audit events past their retention", "err", err)
				}
			} else if n > 0 {
				log.Info("pruned audit events past their retention", "count", n)
			}
		}
	}
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, settingError("log-level", "must be debug, info, warn or error, not %q", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, settingError("log-format", "must be text or json, not %q", format)
}
