package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sparekey/sparekey/internal/bench"
)

const benchUsage = `Usage: sparekey bench [flags]

Measures sparekey on this machine. It starts a server as a child process (sparekey serve on a
free loopback port, SQLite in a temporary folder unless --db says otherwise), seeds organizations
and members with TOTP and ten recovery codes each, and runs timed phases against it:

  get          GET a random member's codes
  recover      spend a code, each with a fresh intermediate session (prepared before the phase)
  wrong_code   recover with a wrong code (counted as a failed attempt, never locks: the server
               runs with --lock-threshold 1000000000)
  rotate       rotate a member's codes (closed loop: the peak)
  rotate_half  rotate paced at half the rotate peak, for its p99 (DESIGN.md §5)
  mix          70% get, 20% recover, 5% rotate, 5% wrong code

Per phase it prints throughput, latency p50/p90/p99/max and the server process's CPU per
operation (utime+stime from /proc/<pid>/stat, 100 ticks a second: Linux only), and, measured in
the same run, the CPU of one RS256 signature and of a bare net/http handler serving a body of
the get response's size, with the ratios DESIGN.md §5 sets targets for. Progress goes to stderr.
With a SQLite server it also measures that bare handler recording one durable audit event per
request through the SQLite store, as every GET must: a floor under the get ratio.

Flags:
  --members N            members to seed (default 1000); bulk loading makes 1000000 take minutes
  --members-per-org N    members per organization (default 100)
  --concurrency N        concurrent requests, one keep-alive connection each (default 8)
  --duration D           length of each phase (default 5s)
  --phases LIST          comma-separated phases (default get,recover,wrong_code,rotate,rotate_half,mix)
  --compare-members N    first run get and recover at N members on a fresh database (on
                         PostgreSQL: a fresh schema of --db's database, dropped after), and report
                         the main run's p50s against them (e.g. --members 1000000 --compare-members 1000)
  --seed auto|bulk|http  bulk: direct inserts in large transactions (multi-row INSERTs on SQLite,
                         COPY on PostgreSQL; the bench owns the database); http: through the API;
                         auto: bulk when possible (default)
  --db sqlite:PATH|postgres://...
                         database of the server the bench starts; the bench adds a project and
                         its members to it (not read from SPAREKEY_DB: name it on purpose)
  --master-key KEY       master key of a --db that already holds data (SPAREKEY_MASTER_KEY)
  --url URL              bench a running server instead (not read from SPAREKEY_URL); needs
  --project-id ID        its project's credentials (SPAREKEY_PROJECT_ID)
  --secret SECRET        (SPAREKEY_SECRET), and for CPU figures
  --server-pid PID       the server's process id, when it runs on this machine
  --cpuprofile-dir DIR   write a CPU profile of the server per phase (DIR/server-PHASE.pprof;
                         read one with: go tool pprof -top DIR/server-get.pprof); profiling adds
                         a few percent to the server's CPU
  --server-log-level L   the server's --log-level (default info, as deployed: a line per request)
  --json                 print the report as one JSON document

Example:
  sparekey bench --json > bench.json
  sparekey bench --members 1000000 --compare-members 1000 --phases get,recover
`

// benchCommand is the bench subcommand, for the command table.
func benchCommand() command {
	return command{name: "bench", summary: "benchmark a server: throughput, latency, CPU per request", usage: benchUsage, run: runBench}
}

// Hidden first arguments: the children a bench starts are this binary again.
const (
	benchBareServer    = "--bare-server"    // --bare-server BYTES [EVENT_DB]: the bare net/http handler
	benchProfiledServe = "--profiled-serve" // --profiled-serve DIR -- serve ...: serve, profiled per phase
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case benchBareServer:
			if len(args) != 2 && len(args) != 3 {
				return usageError{"--bare-server takes the body size, and optionally an event database"}
			}
			size, err := strconv.Atoi(args[1])
			if err != nil || size < 0 {
				return usageError{"--bare-server takes the body size in bytes"}
			}
			eventDB := ""
			if len(args) == 3 {
				eventDB = args[2]
			}
			return bench.ServeBare(ctx, size, eventDB, stderr)
		case benchProfiledServe:
			if len(args) < 3 || args[2] != "--" {
				return usageError{"--profiled-serve DIR -- serve ..."}
			}
			return profiledServe(ctx, args[1], args[3:], stdout, stderr)
		}
	}

	var (
		opt      = bench.Options{Progress: stderr}
		phases   string
		asJSON   bool
		duration time.Duration
	)
	fs := newFlagSet("bench", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage) }
	fs.IntVar(&opt.Members, "members", 1000, "members to seed")
	fs.IntVar(&opt.MembersPerOrg, "members-per-org", 100, "members per organization")
	fs.IntVar(&opt.Concurrency, "concurrency", 8, "concurrent requests")
	fs.DurationVar(&duration, "duration", 5*time.Second, "length of each phase")
	fs.StringVar(&phases, "phases", strings.Join(bench.AllPhases, ","), "comma-separated phases")
	fs.IntVar(&opt.CompareMembers, "compare-members", 0, "also run get and recover at this many members")
	fs.StringVar(&opt.Seed, "seed", "auto", "auto, bulk or http")
	fs.StringVar(&opt.DB, "db", "", "database of the server the bench starts")
	fs.StringVar(&opt.MasterKey, "master-key", "", "master key of a --db that holds data")
	fs.StringVar(&opt.URL, "url", "", "bench a running server")
	fs.StringVar(&opt.ProjectID, "project-id", "", "project of the --url server")
	fs.StringVar(&opt.Secret, "secret", "", "secret of that project")
	fs.IntVar(&opt.ServerPID, "server-pid", 0, "process id of the --url server")
	fs.StringVar(&opt.CPUProfileDir, "cpuprofile-dir", "", "write a server CPU profile per phase here")
	fs.StringVar(&opt.ServerLogLevel, "server-log-level", "info", "the server's --log-level")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// A bench writes a project and thousands of members into its target, so the target must be
	// named on the command line: SPAREKEY_DB and SPAREKEY_URL configure a deployment, not this.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["db"] {
		opt.DB = ""
	}
	if !given["url"] {
		opt.URL = ""
	}
	opt.Duration = duration
	for _, p := range strings.Split(phases, ",") {
		if p = strings.TrimSpace(p); p != "" {
			opt.Phases = append(opt.Phases, p)
		}
	}
	if opt.URL == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary to start the server with: %w", err)
		}
		opt.Command = []string{exe}
	}

	rep, err := bench.Run(ctx, opt)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("bench interrupted")
		}
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.WriteText(stdout)
	return nil
}

// profiledServe runs the serve command with a control endpoint beside it that records a CPU
// profile per bench phase. It lives here, not in serve, so that the server never carries
// profiling hooks outside a bench.
func profiledServe(ctx context.Context, dir string, serveArgs []string, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- bench.ServeProfileControl(ctx, dir, stderr) }()
	err := run(ctx, serveArgs, stdout, stderr)
	cancel()
	if cerr := <-errc; err == nil {
		err = cerr
	}
	return err
}
