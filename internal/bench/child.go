package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

// child is a process the bench started: the server under test or the bare handler. Its stderr
// (the server's log, one line per request at the info level) goes to a file, which costs the
// server a write(2) per line, as a deployment logging to a file or journald would pay.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// startChild runs argv with env, its output in logPath.
func startChild(name string, argv, env []string, logPath string) (*child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttributes()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// waitForURL waits until the child logs a line holding marker and returns the line's url=
// value: how a child listening on port 0 tells its address.
func (c *child) waitForURL(ctx context.Context, marker string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(c.logPath)
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, marker) {
				continue
			}
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "url="); ok {
					return strings.Trim(v, `"`), nil
				}
			}
		}
		select {
		case <-c.exited:
			return "", fmt.Errorf("%s exited before it was ready (%v): %s", c.name, c.waitErr, c.logTail())
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not log %q within %s: %s", c.name, marker, timeout, c.logTail())
		}
	}
}

// logTail is the end of the child's log, for error messages.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop asks the child to shut down (SIGTERM) and kills it if it has not within the timeout.
func (c *child) stop(timeout time.Duration) error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return nil
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("%s did not stop within %s after SIGTERM; killed", c.name, timeout)
	}
}

// childEnv is this process's environment with the master key replaced: a server child must use
// the key its database was seeded with, whatever SPAREKEY_MASTER_KEY_FILE the shell holds.
func childEnv(extra []string, masterKey string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SPAREKEY_MASTER_KEY=") || strings.HasPrefix(kv, "SPAREKEY_MASTER_KEY_FILE=") {
			continue
		}
		env = append(env, kv)
	}
	if masterKey != "" {
		env = append(env, "SPAREKEY_MASTER_KEY="+masterKey)
	}
	return append(env, extra...)
}

// BareMarker is the log line the bare handler child prints when it listens.
const BareMarker = "bench-bare-handler listening"

// ServeBare is the bare-handler child: a plain net/http server on a free loopback port that
// answers every request with one fixed JSON body of size bytes. It stands for the part of a
// GET that no application can avoid (accept, parse, route, write) when judging the get target.
//
// With eventDB set, each request first records one audit event shaped like a GET's
// (recovery_codes.read) through the SQLite store in that file, and is answered once the event
// is durable, as a GET is: the one write every GET must make, with nothing else around it. Its
// CPU over the bare handler's is a floor under the get target's ratio.
func ServeBare(ctx context.Context, size int, eventDB string, stderr io.Writer) error {
	body := []byte(`{"pad":""}`)
	if size > len(body) {
		body = append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), size-len(body))...)
		body = append(body, `"}`...)
	}
	var events *sqlite.DB
	if eventDB != "" {
		db, err := sqlite.Open(ctx, eventDB)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		events = db
	}
	srv := &http.Server{
		Addr: "127.0.0.1:0",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if events != nil {
				if err := events.RecordEvents(r.Context(), readEvent(time.Now())); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return serveUntilDone(ctx, srv, BareMarker, stderr)
}

// readEvent is an event as a GET records it: a member's, with a caller and the read's details.
func readEvent(now time.Time) auth.Event {
	return auth.Event{
		ID:             "event-test-" + uuid.Must(uuid.NewV7()).String(),
		Type:           auth.EventRecoveryCodesRead,
		Time:           now,
		ProjectID:      "project-test-" + floorID,
		OrganizationID: "organization-test-" + floorID,
		MemberID:       "member-test-" + floorID,
		RequestID:      uuid.NewString(),
		ClientIP:       "127.0.0.1",
		UserAgent:      "sparekey-bench",
		Data:           map[string]any{"totp_registration_id": "totp-registration-test-" + floorID, "count": 10},
	}
}

// floorID stands in for the ids of the floor's one member.
const floorID = "00000000-0000-4000-8000-000000000000"

// ProfileMarker is the log line of the profiled server's control listener.
const ProfileMarker = "bench-profile-control listening"

// ServeProfileControl runs, beside a server in the same process, a loopback control endpoint
// the bench uses to record a CPU profile per phase: POST /start?phase=NAME writes
// dir/server-NAME.pprof until POST /stop. It returns when ctx ends.
func ServeProfileControl(ctx context.Context, dir string, stderr io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var (
		mu      sync.Mutex
		current *os.File
	)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		phase := filepath.Base(r.URL.Query().Get("phase"))
		f, err := os.Create(filepath.Join(dir, "server-"+phase+".pprof"))
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		current = f
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		pprof.StopCPUProfile()
		if current != nil {
			current.Close()
			current = nil
		}
	})
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return serveUntilDone(ctx, srv, ProfileMarker, stderr)
}

func serveUntilDone(ctx context.Context, srv *http.Server, marker string, stderr io.Writer) error {
	ln, err := listenLoopback(ctx, srv.Addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s url=http://%s\n", marker, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func listenLoopback(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}
