package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sparekey/sparekey/internal/api"
	"github.com/sparekey/sparekey/internal/auth"
)

const serveUsage = `Usage: sparekey serve [flags]

Serves the Stytch B2B API on --addr (default 127.0.0.1:8080). With no --db it keeps its data in
./sparekey-data/sparekey.db, creating it, a master key beside it and a first project (whose
credentials it prints once, with an SDK snippet) on the first start.

With --db postgres://... many replicas can share one database. There is no data folder, so the
master key must be configured (the same on every replica; generate one with openssl rand -hex 32),
projects are made with 'sparekey project create --db postgres://...', and the schema must be at
this binary's version: run 'sparekey migrate --db postgres://...' first, or give --migrate.

Flags (each also read from its SPAREKEY_* environment twin):
  --addr ADDR                  listen address (SPAREKEY_ADDR; default 127.0.0.1:8080)
  --db sqlite:PATH|postgres://user:password@host:port/database
                               database (SPAREKEY_DB; default sqlite:./sparekey-data/sparekey.db)
  --master-key KEY             64 hex characters or base64 of 32 bytes (SPAREKEY_MASTER_KEY)
  --master-key-file PATH       file holding the master key (SPAREKEY_MASTER_KEY_FILE)
  --migrate                    PostgreSQL: apply pending migrations first (SPAREKEY_MIGRATE=true);
                               SQLite always does
  --db-max-conns N             PostgreSQL: connection pool size (SPAREKEY_DB_MAX_CONNS; default 16)
  --db-statement-timeout D     PostgreSQL: cancel statements running longer, 0 for the server's
                               setting (SPAREKEY_DB_STATEMENT_TIMEOUT; default 10s)
  --recovery-code-length N     12 or 16 symbols (SPAREKEY_RECOVERY_CODE_LENGTH)
  --lock-threshold N           failed MFA attempts that lock a member (default 10)
  --lock-duration D            lock length, e.g. 1h (default 1h)
  --log-format text|json       log format (default text)
  --log-level debug|info|warn|error
  --shutdown-timeout D         time to finish in-flight requests on SIGTERM (default 15s)
`

type serveFlags struct {
	storageFlags
	domainFlags
	addr            string
	logFormat       string
	logLevel        string
	shutdownTimeout time.Duration
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlagSet("serve", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage) }
	f.storageFlags.register(fs)
	f.storageFlags.registerMigrate(fs)
	f.domainFlags.register(fs)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 15*time.Second, "time to finish in-flight requests")
	if err := parseFlags(fs, args); err != nil {
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
	defer store.Close()
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

	handler := api.New(svc, log)
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	base := "http://" + ln.Addr().String()
	if err := firstStart(ctx, svc, base, stdout, isPostgres(f.db), log); err != nil {
		ln.Close()
		return err
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go sweepExpired(ctx, store, log)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("sparekey listening", "addr", ln.Addr().String(), "url", base, "db", displayDB(f.db))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", f.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("in-flight requests did not finish in time", "err", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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

// sweepExpired deletes ended sessions and intermediate sessions now and then. Correctness does
// not depend on it (every read checks expiry); it keeps the tables small.
func sweepExpired(ctx context.Context, store auth.Store, log *slog.Logger) {
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
		}
	}
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level %q: expected debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format %q: expected text or json", format)}
}
