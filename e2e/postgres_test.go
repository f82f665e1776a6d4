package e2e

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sparekey/sparekey/internal/store/testdb"
)

// postgresURL is the database the tests make their schemas in. CI always sets it; elsewhere a
// test that needs it is skipped without it.
func postgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SPAREKEY_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SPAREKEY_TEST_POSTGRES_URL is not set; CI must run the PostgreSQL end-to-end tests")
		}
		t.Skip("SPAREKEY_TEST_POSTGRES_URL is not set")
	}
	return u
}

// newPostgres makes an empty schema sk_e2e_<random> in the test database, dropped when the test
// ends, and returns a --db URL whose connections use it (search_path in the query, which pgx
// passes to the server as a startup parameter) with a fresh master key. The schema is not
// migrated: see migratePostgres.
func newPostgres(t testing.TB) database {
	t.Helper()
	base := postgresURL(t)
	// Registered before any server of the test starts, so it runs after they have stopped.
	schemaURL := testdb.PostgresSchema(t, base, "sk_e2e_")

	key := randomHex(t, 32)
	return database{
		URL:       schemaURL,
		MasterKey: key,
		Env:       append(cleanEnv(), "SPAREKEY_MASTER_KEY="+key),
	}
}

// queryPostgres opens a connection to db's schema for the test to read what the servers wrote.
func queryPostgres(t testing.TB, db database) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatalf("connect to the test schema: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// migratePostgres runs `sparekey migrate` on db, the deliberate step before replicas start.
func migratePostgres(t testing.TB, db database) {
	t.Helper()
	res := runSparekey(t, "", db.Env, "migrate", "--db", db.URL)
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "database schema at version") {
		t.Fatalf("sparekey migrate exited %d\nstdout: %s\nstderr: %s", res.ExitCode, res.Stdout, res.Stderr)
	}
}

// replicaSet is n `sparekey serve` processes sharing one PostgreSQL schema, one project and one
// master key, as an operator runs them behind a load balancer.
type replicaSet struct {
	DB       database
	Project  project
	Replicas []*server
	Clients  []*apiClient // Clients[i] talks to Replicas[i]
}

// replicaPoolSize keeps each replica's connection pool small: three replicas of several tests,
// and the store's own tests, may share one PostgreSQL (100 connections by default).
const replicaPoolSize = "8"

// startReplicas migrates a fresh schema once, creates one project, and starts n replicas on it,
// each on its own loopback port, with the same master key and extra flags args.
func startReplicas(t *testing.T, n int, args ...string) *replicaSet {
	t.Helper()
	db := newPostgres(t)
	migratePostgres(t, db)
	rs := &replicaSet{DB: db, Project: createProject(t, db.URL, db.Env)}
	flags := append([]string{"--db-max-conns", replicaPoolSize}, args...)
	for range n {
		srv := startServer(t, serverOptions{DB: db.URL, Env: db.Env, Args: flags, ProjectID: rs.Project.ID})
		if strings.Contains(srv.Stdout(), "secret") || strings.Contains(srv.Stdout(), "project_id") {
			t.Errorf("serve on PostgreSQL printed project credentials:\n%s", srv.Stdout())
		}
		rs.Replicas = append(rs.Replicas, srv)
		rs.Clients = append(rs.Clients, srv.Client(rs.Project))
	}
	urls := make([]string, n)
	for i, s := range rs.Replicas {
		urls[i] = s.URL
	}
	if len(slices.Compact(slices.Sorted(slices.Values(urls)))) != n {
		t.Fatalf("the %d replicas do not listen on %d different ports: %q", n, n, urls)
	}
	// serve makes no project of its own on PostgreSQL: the database holds exactly the one
	// `project create` made.
	var projects int
	if err := queryPostgres(t, db).QueryRow(context.Background(), `SELECT count(*) FROM projects`).Scan(&projects); err != nil {
		t.Fatal(err)
	}
	if projects != 1 {
		t.Fatalf("after project create and %d replica starts the database holds %d projects, want 1", n, projects)
	}
	return rs
}

// dumpIfStuck is server.dumpIfStuck for all replicas: when burst has not returned after
// patience, every live replica dumps its goroutines (and so ends), which ends burst.
func (rs *replicaSet) dumpIfStuck(t testing.TB, patience time.Duration, burst func()) (stuck bool) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		burst()
	}()
	select {
	case <-done:
		return false
	case <-time.After(patience):
		for _, s := range rs.Replicas {
			s.DumpGoroutines(t)
		}
		<-done
		return true
	}
}

// TestServePostgresRefusals is what an operator sees when serve on PostgreSQL lacks one of the
// deliberate steps: the master key, the migration, a project (cmd/sparekey serve's usage).
func TestServePostgresRefusals(t *testing.T) {
	t.Run("no master key", func(t *testing.T) {
		db := newPostgres(t)
		migratePostgres(t, db)
		res := runSparekey(t, "", cleanEnv(), "serve", "--addr", "127.0.0.1:0", "--db", db.URL)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "SPAREKEY_MASTER_KEY") {
			t.Errorf("serve on PostgreSQL without a master key exited %d, want a refusal naming SPAREKEY_MASTER_KEY\nstderr: %s", res.ExitCode, res.Stderr)
		}
	})

	t.Run("a schema not migrated", func(t *testing.T) {
		db := newPostgres(t)
		res := runSparekey(t, "", db.Env, "serve", "--addr", "127.0.0.1:0", "--db", db.URL)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "sparekey migrate") {
			t.Errorf("serve on an unmigrated schema exited %d, want a refusal pointing at `sparekey migrate`\nstderr: %s", res.ExitCode, res.Stderr)
		}
		var tables int
		if err := queryPostgres(t, db).QueryRow(context.Background(),
			`SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("serve without --migrate created %d tables in an empty schema, want none", tables)
		}
	})

	t.Run("no project yet: serve starts, creates none and says how", func(t *testing.T) {
		db := newPostgres(t)
		migratePostgres(t, db)
		out := serveUntilListening(t, db, "--db", db.URL)
		if strings.Contains(out.Stdout, "project_id") || strings.Contains(out.Stdout, "secret") {
			t.Errorf("serve on an empty PostgreSQL database printed project credentials:\n%s", out.Stdout)
		}
		if !strings.Contains(out.Stderr, "sparekey project create") {
			t.Errorf("serve on a PostgreSQL database without projects did not point at `sparekey project create`:\n%s", out.Stderr)
		}
		var projects int
		if err := queryPostgres(t, db).QueryRow(context.Background(), `SELECT count(*) FROM projects`).Scan(&projects); err != nil {
			t.Fatal(err)
		}
		if projects != 0 {
			t.Errorf("serve on an empty PostgreSQL database created %d projects, want 0", projects)
		}
	})
}

// serveUntilListening runs `sparekey serve --addr 127.0.0.1:0 args...` until it logs that it
// listens (startServer cannot wait for a JWKS when there is no project), then stops it with
// SIGTERM and returns what it printed.
func serveUntilListening(t *testing.T, db database, args ...string) command {
	t.Helper()
	cmd := exec.Command(sparekeyBin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = db.Env
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for !listeningURL.MatchString(stderr.String()) {
		select {
		case err := <-exited:
			t.Fatalf("sparekey serve exited before it listened (%v)\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("sparekey serve did not log that it listens within 15s\nstderr: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("sparekey serve ended with %v after SIGTERM, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Errorf("sparekey serve did not stop within 10s of SIGTERM")
	}
	return command{Stdout: stdout.String(), Stderr: stderr.String()}
}
