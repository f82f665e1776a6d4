package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/store/postgres"
	"github.com/sparekey/sparekey/internal/store/sqlite"
)

// Phases the bench knows, in the order they run.
var AllPhases = []string{"get", "recover", "wrong_code", "rotate", "rotate_half", "mix"}

// Options configure a run.
type Options struct {
	// Command runs this binary: children are Command plus "serve ..." (the server) or plus
	// "bench --bare-server ..." (the bare handler).
	Command []string
	// ExtraEnv is added to the children's environment.
	ExtraEnv []string

	// URL, ProjectID and Secret name an existing server; without URL the bench starts one.
	// ServerPID, when that server runs on this machine, lets the bench read its CPU.
	URL, ProjectID, Secret string
	ServerPID              int

	// DB is the database of a server the bench starts: "" (SQLite in a temporary folder),
	// sqlite:PATH or a postgres:// URL. The bench adds a project to it.
	DB        string
	MasterKey string // for a DB that already holds data; otherwise a fresh key is made

	Members        int
	MembersPerOrg  int
	Concurrency    int
	Duration       time.Duration
	Phases         []string
	CompareMembers int    // also run get and recover at this many members (0: no)
	Seed           string // "auto", "bulk" or "http"
	CPUProfileDir  string // record a server CPU profile per phase here
	ServerLogLevel string
	Progress       io.Writer
}

func (o *Options) validate() error {
	switch {
	case len(o.Command) == 0 && o.URL == "":
		return errors.New("bench: no command to start the server with")
	case o.Members < 2:
		return errors.New("--members must be at least 2")
	case o.MembersPerOrg < 1:
		return errors.New("--members-per-org must be at least 1")
	case o.Concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case o.Duration <= 0:
		return errors.New("--duration must be positive")
	case o.URL != "" && (o.ProjectID == "" || o.Secret == ""):
		return errors.New("--url needs --project-id and --secret")
	case o.URL != "" && (o.DB != "" || o.CPUProfileDir != ""):
		return errors.New("--db and --cpuprofile-dir are for a server the bench starts, not one at --url")
	case o.CompareMembers != 0 && o.URL != "":
		return errors.New("--compare-members needs a server the bench starts (run twice against a --url server)")
	case o.CompareMembers < 0 || o.CompareMembers == 1:
		return errors.New("--compare-members must be 0 or at least 2")
	case !slices.Contains([]string{"auto", "bulk", "http"}, o.Seed):
		return fmt.Errorf("--seed %q: expected auto, bulk or http", o.Seed)
	case o.Seed == "bulk" && o.URL != "":
		return errors.New("--seed bulk needs the database: it works only on a server the bench starts")
	case !cpuAccounting && o.URL == "":
		return errors.New("sparekey bench reads the server's CPU time from /proc and runs on Linux only (or against --url)")
	}
	seen := map[string]bool{}
	for _, p := range o.Phases {
		if !slices.Contains(AllPhases, p) {
			return fmt.Errorf("unknown phase %q: expected some of %s", p, joinNames(AllPhases))
		}
		if p == "rotate_half" && !seen["rotate"] {
			return errors.New("phase rotate_half paces rotate at half of the peak the rotate phase measured: list rotate before it")
		}
		seen[p] = true
	}
	return nil
}

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// lockThreshold is the server's failed-attempt limit in a bench the bench starts: wrong codes
// still count and write (their real cost), but never lock the members that later recover.
const lockThreshold = 1_000_000_000

// Run runs the benchmark and returns its report; progress goes to opt.Progress.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	if len(opt.Phases) == 0 {
		opt.Phases = AllPhases
	}
	if err := opt.validate(); err != nil {
		return nil, err
	}
	rep := &Report{
		Tool:      "sparekey bench",
		StartedAt: time.Now().UTC().Truncate(time.Second),
		Machine: Machine{
			CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version(),
			ClockTicksPerSecond: ClockTicksPerSecond, LoadAverageStart: loadAverage(),
		},
		Phases: []Phase{},
		Notes: []string{
			"server CPU is utime+stime of the server process from /proc/<pid>/stat (USER_HZ 100: 10 ms ticks) before and after each phase; it includes the server's garbage collection and its request log",
			"CPU per operation depends on the load: at low concurrency the Go runtime's wakeups and idle spinning are spread over fewer requests; the targets are read at this run's concurrency",
			fmt.Sprintf("mix: each request is drawn at random, %d%% get, %d%% recover, %d%% rotate, %d%% wrong code", DefaultMix.Get, DefaultMix.Recover, DefaultMix.Rotate, DefaultMix.WrongCode),
		},
	}
	rep.Settings = Settings{
		Target: "child process (sparekey serve)", Database: displayDB(opt.DB), Members: opt.Members,
		Organizations: (opt.Members + opt.MembersPerOrg - 1) / opt.MembersPerOrg, Concurrency: opt.Concurrency,
		PhaseSeconds: opt.Duration.Seconds(), Mix: DefaultMix, ServerLogLevel: opt.ServerLogLevel,
		LockThreshold: lockThreshold, Profiled: opt.CPUProfileDir != "",
	}
	if opt.URL != "" {
		rep.Settings.Target, rep.Settings.Database, rep.Settings.ServerLogLevel, rep.Settings.LockThreshold = opt.URL, "(the server's own)", "(the server's own)", 0
	}

	fmt.Fprintln(opt.Progress, "measuring the RS256 signature baseline")
	sign, err := measureSign(time.Second)
	if err != nil {
		return nil, err
	}
	rep.Baselines.RS256Sign = sign

	if opt.CompareMembers > 0 {
		fmt.Fprintf(opt.Progress, "comparison run at %d members (get and recover)\n", opt.CompareMembers)
		small := opt
		small.DB, small.CPUProfileDir, small.Phases = "", "", []string{"get", "recover"}
		var dropSchema func(context.Context) error
		if isPostgres(opt.DB) {
			// The same database server, in a schema of its own: the small run's figures must not
			// share tables, caches or the bench's project with the main run.
			if small.DB, dropSchema, err = postgres.NewSchema(ctx, opt.DB, "sparekey_bench_compare_"); err != nil {
				return nil, fmt.Errorf("comparison run: %w", err)
			}
		}
		res, err := runScenario(ctx, &small, opt.CompareMembers, sign, false)
		if dropSchema != nil {
			if derr := dropSchema(context.WithoutCancel(ctx)); err == nil && derr != nil {
				err = derr
			}
		}
		if err != nil {
			return nil, fmt.Errorf("comparison run: %w", err)
		}
		rep.Scale = &Scale{Members: opt.CompareMembers, Seed: res.seed, Storage: res.storage, Phases: res.phases}
		fmt.Fprintf(opt.Progress, "main run at %d members\n", opt.Members)
	}

	res, err := runScenario(ctx, &opt, opt.Members, sign, true)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(opt.Progress, "measuring the RS256 signature baseline again")
	after, err := measureSign(time.Second)
	if err != nil {
		return nil, err
	}
	rep.Baselines.RS256Sign = sign.combine(after)
	rep.Seed, rep.Storage, rep.Phases = res.seed, res.storage, res.phases
	rep.Baselines.BareHandler, rep.Baselines.BareHandlerEvent, rep.Baselines.BareBytes = res.bare, res.bareEvent, res.bareBytes
	rep.Notes = append(rep.Notes, res.notes...)
	rep.ratios()
	rep.Machine.LoadAverageEnd = loadAverage()
	return rep, nil
}

// ratios fills the DESIGN.md §5 comparisons the run measured.
func (r *Report) ratios() {
	sign := r.Baselines.RS256Sign.CPUPerOpUS
	if p := r.phase("recover"); p != nil && p.ServerCPUPerOpUS != nil && sign > 0 {
		r.Ratios.RecoverCPUOverSign = newRatio(*p.ServerCPUPerOpUS/sign, 1.25)
	}
	if p, b := r.phase("get"), r.Baselines.BareHandler; p != nil && b != nil && p.ServerCPUPerOpUS != nil && b.ServerCPUPerOpUS != nil && *b.ServerCPUPerOpUS > 0 {
		r.Ratios.GetCPUOverBare = newRatio(*p.ServerCPUPerOpUS / *b.ServerCPUPerOpUS, 2)
	}
	if e, b := r.Baselines.BareHandlerEvent, r.Baselines.BareHandler; e != nil && b != nil && e.ServerCPUPerOpUS != nil && b.ServerCPUPerOpUS != nil && *b.ServerCPUPerOpUS > 0 {
		r.Ratios.GetFloorOverBare = newRatio(*e.ServerCPUPerOpUS / *b.ServerCPUPerOpUS, 2)
	}
	if p := r.phase("rotate_half"); p != nil {
		r.Ratios.RotateP99HalfPeak = newRatio(p.Latency.P99, 15)
	}
	if r.Storage != nil {
		r.Ratios.BytesPerMember = newRatio(r.Storage.BytesPerMember, 2048)
	}
	if sc := r.Scale; sc != nil {
		for _, k := range []struct {
			name string
			dst  **Ratio
		}{{"get", &r.Ratios.GetP50Scale}, {"recover", &r.Ratios.RecoverP50Scale}} {
			big, small := r.phase(k.name), findPhase(sc.Phases, k.name)
			if big != nil && small != nil && small.Latency.P50 > 0 {
				*k.dst = newRatio(big.Latency.P50/small.Latency.P50, 1.2)
			}
			if big != nil && small != nil && big.ServerCPUPerOpUS != nil && small.ServerCPUPerOpUS != nil && *small.ServerCPUPerOpUS > 0 {
				if sc.ServerCPUGrowth == nil {
					sc.ServerCPUGrowth = map[string]float64{}
				}
				sc.ServerCPUGrowth[k.name] = round3(*big.ServerCPUPerOpUS / *small.ServerCPUPerOpUS)
			}
		}
	}
}

// displayDB is a --db setting fit to print: a PostgreSQL URL loses its password.
func displayDB(db string) string {
	switch {
	case db == "":
		return "SQLite in a temporary folder"
	case isPostgres(db):
		u, err := url.Parse(db)
		if err != nil {
			return "postgres://(hidden)"
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return "PostgreSQL " + u.Redacted()
	}
	return "SQLite " + strings.TrimPrefix(db, "sqlite:")
}

// scenarioResult is what one scenario (seed, phases, baselines) measured.
type scenarioResult struct {
	seed      Seed
	storage   *Storage
	phases    []Phase
	bare      *Phase
	bareEvent *Phase // the bare handler recording one durable audit event per request
	bareBytes int
	notes     []string
}

// scenario is one server under test with its seeded population.
type scenario struct {
	opt      *Options
	progress io.Writer
	workDir  string
	runID    string

	// The database, when the bench owns it.
	masterKey string
	dbArg     string
	sqliteDB  *sqlite.DB
	pgDB      *postgres.DB
	svc       *auth.Service

	projectID, secret string
	base              string
	server            *child
	serverPID         int
	control           string

	l      *loader
	api    *apiClient
	pop    *population
	seeder seeder

	sign      SignBaseline
	rates     map[string]float64 // measured throughput of finished phases
	getBytes  float64
	wrong     [][]byte // wrong-code bodies, one intermediate session each
	wrongMade time.Time
	notes     []string
}

func runScenario(ctx context.Context, opt *Options, members int, sign SignBaseline, withBare bool) (res scenarioResult, err error) {
	sc := &scenario{opt: opt, progress: opt.Progress, sign: sign, rates: map[string]float64{}, pop: newPopulation(members)}
	b := make([]byte, 4)
	rand.Read(b)
	sc.runID = hex.EncodeToString(b)
	if sc.workDir, err = os.MkdirTemp("", "sparekey-bench-"); err != nil {
		return res, err
	}
	defer func() {
		if cerr := sc.close(); err == nil {
			err = cerr
		}
	}()

	if opt.URL != "" {
		sc.base, sc.projectID, sc.secret, sc.serverPID = strings.TrimRight(opt.URL, "/"), opt.ProjectID, opt.Secret, opt.ServerPID
		sc.notes = append(sc.notes, "the server at --url keeps its own lock threshold: wrong codes lock a member after its limit, which turns later wrong codes into cheaper 429s")
	} else if err = sc.openDatabase(ctx); err != nil {
		return res, err
	}
	sc.l = newLoader(opt.Concurrency, basicAuth(sc.projectID, sc.secret), sc.progress)
	defer sc.l.close()

	bulk := sc.svc != nil && sc.svc.CanBulkLoad() && opt.Seed != "http"
	if opt.Seed == "bulk" && !bulk {
		return res, errors.New("--seed bulk: this database's store has no bulk loader")
	}
	if bulk {
		sc.seeder = &bulkSeeder{svc: sc.svc, projectID: sc.projectID, runID: sc.runID}
		if res.seed, err = seedMembers(ctx, sc.seeder, sc.pop, members, opt.MembersPerOrg, sc.progress); err != nil {
			return res, err
		}
		if res.storage, err = sc.footprint(ctx); err != nil {
			return res, err
		}
	}
	if opt.URL == "" {
		if err = sc.startServer(ctx); err != nil {
			return res, err
		}
	}
	sc.api = &apiClient{client: sc.l.client, base: sc.base, authorization: sc.l.authorization}
	if !bulk {
		hs, err := newHTTPSeeder(sc.api, max(opt.Concurrency, 8), sc.runID)
		if err != nil {
			return res, err
		}
		sc.seeder = hs
		if res.seed, err = seedMembers(ctx, sc.seeder, sc.pop, members, opt.MembersPerOrg, sc.progress); err != nil {
			return res, err
		}
		if sc.svc != nil {
			if res.storage, err = sc.footprint(ctx); err != nil {
				return res, err
			}
			sc.notes = append(sc.notes, "members were seeded through the API, each with a bcrypt password (the bulk path adds none): bytes per member include it")
		}
	}

	for _, name := range opt.Phases {
		p, err := sc.runPhase(ctx, name)
		if err != nil {
			return res, fmt.Errorf("phase %s: %w", name, err)
		}
		res.phases = append(res.phases, p)
	}

	if withBare && sc.serverPID > 0 {
		if sc.getBytes == 0 { // no get phase ran: the bare body still takes a get's size
			m := &sc.pop.members[0]
			status, n, err := sc.l.do(ctx, request{method: http.MethodGet, url: sc.base + "/v1/b2b/recovery_codes/" + m.org + "/" + m.id})
			if err != nil || status != http.StatusOK {
				return res, fmt.Errorf("measure a get response: HTTP %d, %v", status, err)
			}
			sc.getBytes = float64(n)
		}
		// The floor runs beside a SQLite server the bench started: the store it measures is the one
		// that server used, on the same file system.
		floor := sc.server != nil && !isPostgres(sc.opt.DB)
		if sc.server != nil {
			sc.l.close()
			if err := sc.server.stop(20 * time.Second); err != nil {
				return res, err
			}
			sc.server = nil
		}
		if res.bare, res.bareBytes, err = sc.runBare(ctx, false); err != nil {
			return res, fmt.Errorf("bare handler baseline: %w", err)
		}
		if floor {
			if res.bareEvent, _, err = sc.runBare(ctx, true); err != nil {
				return res, fmt.Errorf("bare handler with an audit event: %w", err)
			}
		}
	} else if withBare {
		sc.notes = append(sc.notes, "no server CPU without a server PID: the bare-handler baseline and the CPU ratios are not measured")
	}
	res.notes = sc.notes
	return res, nil
}

func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// openDatabase opens (and migrates) the database of a server the bench starts, and creates the
// bench's project in it with the same domain code the server runs.
func (sc *scenario) openDatabase(ctx context.Context) error {
	var store auth.Store
	switch {
	case sc.opt.DB == "":
		path := filepath.Join(sc.workDir, "sparekey.db")
		sc.dbArg = "sqlite:" + path
	case strings.HasPrefix(sc.opt.DB, "sqlite:"):
		sc.dbArg = sc.opt.DB
	case isPostgres(sc.opt.DB):
		sc.dbArg = sc.opt.DB
	default:
		return fmt.Errorf("--db %q: expected sqlite:PATH or postgres://...", displayDB(sc.opt.DB))
	}
	if isPostgres(sc.dbArg) {
		sc.notes = append(sc.notes, "on PostgreSQL the server CPU is sparekey's process alone: the database server's CPU is not counted")
		db, err := postgres.Open(ctx, sc.dbArg, postgres.Options{})
		if err != nil {
			return err
		}
		sc.pgDB, store = db, db
		if err := db.Migrate(ctx); err != nil {
			return err
		}
	} else {
		db, err := sqlite.Open(ctx, strings.TrimPrefix(sc.dbArg, "sqlite:"))
		if err != nil {
			return err
		}
		sc.sqliteDB, store = db, db
		if err := db.Migrate(ctx); err != nil {
			return err
		}
	}
	sc.masterKey = sc.opt.MasterKey
	if sc.masterKey == "" {
		k, err := secret.NewMasterKey()
		if err != nil {
			return err
		}
		sc.masterKey = k
	}
	raw, err := secret.ParseMasterKey(sc.masterKey)
	if err != nil {
		return err
	}
	keys, err := secret.NewKeyring(raw)
	if err != nil {
		return err
	}
	if sc.svc, err = auth.NewService(store, keys, auth.DefaultConfig(), nil); err != nil {
		return err
	}
	if err := sc.svc.CheckMasterKey(ctx); err != nil {
		return fmt.Errorf("%w (the database already holds data: give its key with --master-key or SPAREKEY_MASTER_KEY)", err)
	}
	p, sec, err := sc.svc.CreateProject(ctx)
	if err != nil {
		return err
	}
	sc.projectID, sc.secret = p.ID, sec
	return nil
}

// footprint measures the database right after seeding.
func (sc *scenario) footprint(ctx context.Context) (*Storage, error) {
	var (
		st  Storage
		err error
	)
	switch {
	case sc.sqliteDB != nil:
		st.Method = "SQLite page_count × page_size, the main file once checkpointed, ÷ members in the database"
		st.Bytes, st.Members, err = sc.sqliteDB.Footprint(ctx)
	case sc.pgDB != nil:
		st.Method = "pg_total_relation_size of the schema's tables (indexes and TOAST included) ÷ members in the database"
		st.Bytes, st.Members, err = sc.pgDB.Footprint(ctx)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("measure the database: %w", err)
	}
	if st.Members > 0 {
		st.BytesPerMember = round3(float64(st.Bytes) / float64(st.Members))
	}
	return &st, nil
}

// startServer runs `sparekey serve` as a child on a free loopback port. Profiled, the child is
// `sparekey bench --profiled-serve DIR -- serve ...`: the same serve command in a process that
// also answers the bench's profile start/stop calls.
func (sc *scenario) startServer(ctx context.Context) error {
	args := []string{"serve", "--addr", "127.0.0.1:0", "--db", sc.dbArg,
		"--lock-threshold", strconv.Itoa(lockThreshold), "--log-level", sc.opt.ServerLogLevel, "--log-format", "text"}
	argv := append(slices.Clone(sc.opt.Command), args...)
	if sc.opt.CPUProfileDir != "" {
		argv = append(slices.Clone(sc.opt.Command), append([]string{"bench", "--profiled-serve", sc.opt.CPUProfileDir, "--"}, args...)...)
	}
	fmt.Fprintln(sc.progress, "starting the server:", strings.Join(redactArgs(argv), " "))
	c, err := startChild("sparekey server", argv, childEnv(sc.opt.ExtraEnv, sc.masterKey), filepath.Join(sc.workDir, "server.log"))
	if err != nil {
		return err
	}
	sc.server, sc.serverPID = c, c.pid()
	if sc.base, err = c.waitForURL(ctx, "sparekey listening", 2*time.Minute); err != nil {
		return err
	}
	if sc.opt.CPUProfileDir != "" {
		if sc.control, err = c.waitForURL(ctx, ProfileMarker, 10*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// redactArgs hides a PostgreSQL password in a command line shown as progress.
func redactArgs(argv []string) []string {
	out := slices.Clone(argv)
	for i, a := range out {
		if isPostgres(a) {
			out[i] = strings.TrimPrefix(displayDB(a), "PostgreSQL ")
		}
	}
	return out
}

func (sc *scenario) close() error {
	var errs []error
	if sc.server != nil {
		if sc.l != nil {
			sc.l.close()
		}
		errs = append(errs, sc.server.stop(20*time.Second))
	}
	if sc.sqliteDB != nil {
		errs = append(errs, sc.sqliteDB.Close())
	}
	if sc.pgDB != nil {
		errs = append(errs, sc.pgDB.Close())
	}
	errs = append(errs, os.RemoveAll(sc.workDir))
	return errors.Join(errs...)
}

// ---- phases ----

func (sc *scenario) getRequest(w *workerState, base string, kind op) request {
	m := &sc.pop.members[w.rng.IntN(len(sc.pop.members))]
	return request{kind: kind, method: http.MethodGet, url: base + "/v1/b2b/recovery_codes/" + m.org + "/" + m.id, want: http.StatusOK}
}

func (sc *scenario) rotateBodies() [][]byte {
	bodies := make([][]byte, len(sc.pop.rotateSet))
	for i, mi := range sc.pop.rotateSet {
		m := &sc.pop.members[mi]
		bodies[i], _ = json.Marshal(map[string]string{"organization_id": m.org, "member_id": m.id})
	}
	return bodies
}

// runPhase prepares a phase's supply outside the timed window, runs it, and returns unused
// codes to their members.
func (sc *scenario) runPhase(ctx context.Context, name string) (Phase, error) {
	spec := loadSpec{name: name, concurrency: sc.opt.Concurrency, duration: sc.opt.Duration, serverPID: sc.serverPID}
	var jobs *recoverJobs
	rotates := sc.rotateBodies()
	rotate := func(w *workerState) request {
		return request{kind: opRotate, method: http.MethodPost, url: sc.base + "/v1/b2b/recovery_codes/rotate", body: rotates[w.rng.IntN(len(rotates))], want: http.StatusOK}
	}
	wrong := func(w *workerState) request {
		return request{kind: opWrongCode, method: http.MethodPost, url: sc.base + "/v1/b2b/recovery_codes/recover", body: sc.wrong[w.rng.IntN(len(sc.wrong))], want: http.StatusUnauthorized}
	}
	recoverReq := func() (request, bool) {
		j, ok := jobs.take()
		if !ok {
			return request{}, false
		}
		return request{kind: opRecover, method: http.MethodPost, url: sc.base + "/v1/b2b/recovery_codes/recover", body: j.body, want: http.StatusOK}, true
	}
	var err error
	switch name {
	case "get":
		spec.next = func(w *workerState) (request, bool) { return sc.getRequest(w, sc.base, opGet), true }
	case "recover":
		if jobs, err = sc.prepareRecover(ctx, sc.recoverSupply(1)); err != nil {
			return Phase{}, err
		}
		spec.next = func(*workerState) (request, bool) { return recoverReq() }
	case "wrong_code":
		if err := sc.prepareWrong(ctx); err != nil {
			return Phase{}, err
		}
		spec.next = func(w *workerState) (request, bool) { return wrong(w), true }
	case "rotate", "rotate_half":
		if len(rotates) == 0 {
			return Phase{}, errors.New("no member to rotate")
		}
		if name == "rotate_half" {
			spec.rate = sc.rates["rotate"] / 2
		}
		spec.next = func(w *workerState) (request, bool) { return rotate(w), true }
	case "mix":
		if jobs, err = sc.prepareRecover(ctx, sc.recoverSupply(float64(DefaultMix.Recover)/100)); err != nil {
			return Phase{}, err
		}
		if err := sc.prepareWrong(ctx); err != nil {
			return Phase{}, err
		}
		mix := DefaultMix
		spec.next = func(w *workerState) (request, bool) {
			switch x := w.rng.IntN(100); {
			case x < mix.Get:
				return sc.getRequest(w, sc.base, opGet), true
			case x < mix.Get+mix.Recover:
				return recoverReq()
			case x < mix.Get+mix.Recover+mix.Rotate:
				return rotate(w), true
			default:
				return wrong(w), true
			}
		}
	}

	fmt.Fprintf(sc.progress, "phase %s: %s at concurrency %d\n", name, sc.opt.Duration, sc.opt.Concurrency)
	if err := sc.profile(ctx, "start?phase="+name); err != nil {
		return Phase{}, err
	}
	p, err := sc.l.run(ctx, spec)
	if perr := sc.profile(ctx, "stop"); err == nil {
		err = perr
	}
	if jobs != nil {
		sc.settle(jobs)
	}
	if err != nil {
		return p, err
	}
	for k, o := range p.ByOp {
		if name == k { // a phase of one kind: its peak rate, for later supplies and pacing
			sc.rates[k] = p.Throughput * float64(o.Ops) / float64(max(p.Ops, 1))
		}
	}
	if name == "get" {
		sc.getBytes = p.ResponseBytesPerOp
	}
	return p, nil
}

// profile calls the profiled server's control endpoint, when there is one.
func (sc *scenario) profile(ctx context.Context, what string) error {
	if sc.control == "" {
		return nil
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sc.control+"/"+what, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", what, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: HTTP %d", what, res.StatusCode)
	}
	return nil
}

// recoverJob is one prepared successful recover: a member's unused code and a fresh
// intermediate session of that member.
type recoverJob struct {
	member int
	code   string
	body   []byte
}

type recoverJobs struct {
	jobs []recoverJob
	next atomic.Int64
}

func (j *recoverJobs) take() (*recoverJob, bool) {
	i := j.next.Add(1) - 1
	if i >= int64(len(j.jobs)) {
		return nil, false
	}
	return &j.jobs[i], true
}

// recoverSupply estimates how many recovers a phase with this share of recovers can do, with
// room to spare. Before any recover phase ran, it takes the bound a recover cannot beat: all
// the machine's CPUs signing one JWT each. Afterwards it predicts the phase's rate from the
// measured rates of its kinds (a mix's time is the sum of its parts).
func (sc *scenario) recoverSupply(share float64) int {
	d := sc.opt.Duration.Seconds()
	if share >= 1 || sc.rates["recover"] == 0 {
		rate := float64(runtime.NumCPU()) / (sc.sign.CPUPerOpUS / 1e6)
		if r := sc.rates["recover"]; r > 0 {
			rate = r
		}
		return int(math.Ceil(rate*share*d*1.3)) + 2*sc.opt.Concurrency
	}
	secondsPerOp := 0.0
	for k, s := range map[string]int{"get": DefaultMix.Get, "recover": DefaultMix.Recover, "rotate": DefaultMix.Rotate, "wrong_code": DefaultMix.WrongCode} {
		if r := sc.rates[k]; r > 0 {
			secondsPerOp += float64(s) / 100 / r
		}
	}
	return int(math.Ceil(share*d/secondsPerOp*1.5)) + 2*sc.opt.Concurrency
}

// prepareRecover takes want unused codes, one member after another in a shuffled order so a
// phase spreads over the whole set, rotating members whose codes ran out (outside the timed
// window) when needed, and issues an intermediate session for each.
func (sc *scenario) prepareRecover(ctx context.Context, want int) (*recoverJobs, error) {
	pop := sc.pop
	if len(pop.recoverSet) == 0 {
		return nil, errors.New("no member to recover")
	}
	want = min(want, 10*len(pop.recoverSet))
	avail := 0
	for _, mi := range pop.recoverSet {
		avail += len(pop.members[mi].codes)
	}
	if avail < want {
		if err := sc.refill(ctx, want-avail); err != nil {
			return nil, err
		}
	}
	order := slices.Clone(pop.recoverSet)
	mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	jobs := make([]recoverJob, 0, want)
	for len(jobs) < want {
		took := false
		for _, mi := range order {
			m := &pop.members[mi]
			if len(m.codes) == 0 {
				continue
			}
			jobs = append(jobs, recoverJob{member: mi, code: m.codes[0]})
			m.codes = m.codes[1:]
			took = true
			if len(jobs) == want {
				break
			}
		}
		if !took {
			break
		}
	}
	fmt.Fprintf(sc.progress, "preparing %d recovers: issuing intermediate sessions by %s\n", len(jobs), sc.seeder.method())
	idx := make([]int, len(jobs))
	for i := range jobs {
		idx[i] = jobs[i].member
	}
	ists, err := sc.seeder.issueISTs(ctx, pop, idx)
	if err != nil {
		return nil, err
	}
	for i := range jobs {
		m := &pop.members[jobs[i].member]
		jobs[i].body, _ = json.Marshal(map[string]string{
			"organization_id": m.org, "member_id": m.id, "recovery_code": jobs[i].code, "intermediate_session_token": ists[i]})
	}
	return &recoverJobs{jobs: jobs}, nil
}

// settle gives the codes of recovers a phase did not send back to their members, oldest first.
// Their intermediate sessions are left to expire.
func (sc *scenario) settle(j *recoverJobs) {
	used := min(int(j.next.Load()), len(j.jobs))
	for i := len(j.jobs) - 1; i >= used; i-- {
		m := &sc.pop.members[j.jobs[i].member]
		m.codes = append([]string{j.jobs[i].code}, m.codes...)
	}
}

// refill rotates the members with the fewest codes left until need more codes are available.
func (sc *scenario) refill(ctx context.Context, need int) error {
	pop := sc.pop
	cands := slices.Clone(pop.recoverSet)
	sort.SliceStable(cands, func(a, b int) bool { return len(pop.members[cands[a]].codes) < len(pop.members[cands[b]].codes) })
	n, gain := 0, 0
	for n < len(cands) && gain < need {
		gain += 10 - len(pop.members[cands[n]].codes)
		n++
	}
	fmt.Fprintf(sc.progress, "rotating %d members whose codes ran out\n", n)
	return parallel(ctx, n, max(sc.opt.Concurrency, 8), func(ctx context.Context, i int) error {
		m := &pop.members[cands[i]]
		var out struct {
			RecoveryCodes []string `json:"recovery_codes"`
		}
		if err := sc.api.call(ctx, "POST", "/v1/b2b/recovery_codes/rotate", map[string]string{"organization_id": m.org, "member_id": m.id}, &out); err != nil {
			return err
		}
		m.codes = out.RecoveryCodes
		return nil
	})
}

// wrongCode is well-formed (12 symbols) and, with 60 bits per code, nobody's.
const wrongCode = "zzzz-zzzz-zzzz"

// prepareWrong issues one intermediate session for each of up to 256 members for wrong codes:
// a failed recover leaves its intermediate session usable, so one serves a whole phase.
// They are made again when older than 8 of their 10 minutes.
func (sc *scenario) prepareWrong(ctx context.Context) error {
	if sc.wrong != nil && time.Since(sc.wrongMade) < 8*time.Minute {
		return nil
	}
	pop := sc.pop
	idx := slices.Clone(pop.recoverSet)
	mrand.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	idx = idx[:min(len(idx), 256)]
	if len(idx) == 0 {
		return errors.New("no member for wrong codes")
	}
	ists, err := sc.seeder.issueISTs(ctx, pop, idx)
	if err != nil {
		return err
	}
	sc.wrong = make([][]byte, len(idx))
	for i, mi := range idx {
		m := &pop.members[mi]
		sc.wrong[i], _ = json.Marshal(map[string]string{"organization_id": m.org, "member_id": m.id, "recovery_code": wrongCode, "intermediate_session_token": ists[i]})
	}
	sc.wrongMade = time.Now()
	return nil
}

// runBare loads the bare-handler child like the get phase loaded the server: same client, same
// concurrency, same request line and headers, a body of the get phase's average size. With
// event, the child records one audit event per request in a SQLite store of its own
// (ServeBare).
func (sc *scenario) runBare(ctx context.Context, event bool) (*Phase, int, error) {
	size := int(math.Round(sc.getBytes))
	name, args := "bare_handler", []string{"bench", "--bare-server", strconv.Itoa(size)}
	if event {
		name, args = "bare_handler_event", append(args, filepath.Join(sc.workDir, "bare-events.db"))
	}
	argv := append(slices.Clone(sc.opt.Command), args...)
	c, err := startChild(strings.ReplaceAll(name, "_", " "), argv, childEnv(sc.opt.ExtraEnv, ""), filepath.Join(sc.workDir, name+".log"))
	if err != nil {
		return nil, 0, err
	}
	defer c.stop(10 * time.Second)
	bare, err := c.waitForURL(ctx, BareMarker, 30*time.Second)
	if err != nil {
		return nil, 0, err
	}
	l := newLoader(sc.opt.Concurrency, sc.l.authorization, sc.progress)
	defer l.close()
	fmt.Fprintf(sc.progress, "baseline %s (%d-byte body): %s at concurrency %d\n", name, size, sc.opt.Duration, sc.opt.Concurrency)
	p, err := l.run(ctx, loadSpec{
		name: name, concurrency: sc.opt.Concurrency, duration: sc.opt.Duration, serverPID: c.pid(),
		next: func(w *workerState) (request, bool) { return sc.getRequest(w, bare, opBare), true },
	})
	if err != nil {
		return nil, 0, err
	}
	return &p, size, nil
}
