package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/bench"
)

// benchChildEnv makes this test binary act as the sparekey binary: the bench starts its server
// and its bare handler as children of os.Executable(), which under go test is the test binary.
const benchChildEnv = "SPAREKEY_BENCH_TEST_CHILD"

// An init, not a TestMain, so that it cannot collide with another file's TestMain: it runs
// before the testing package looks at the arguments.
func init() {
	if os.Getenv(benchChildEnv) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	args := os.Args[1:]
	var err error
	if len(args) > 0 && args[0] == "bench" {
		err = benchCommand().run(ctx, args[1:], os.Stdout, os.Stderr) // whether or not run.go lists it yet
	} else {
		err = run(ctx, args, os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sparekey:", err)
		os.Exit(exitCode(err))
	}
	os.Exit(0)
}

// runBenchCommand runs `sparekey bench args...` with this test binary as the sparekey binary.
func runBenchCommand(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	t.Setenv(benchChildEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := benchCommand().run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("sparekey bench %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String()
}

// jsonKeys lists the JSON keys a struct type marshals to.
func jsonKeys(v any) []string {
	b, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(b, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func TestBenchJSONReport(t *testing.T) {
	stdout, stderr := runBenchCommand(t, "--members", "40", "--members-per-org", "15", "--concurrency", "4",
		"--duration", "400ms", "--json")
	for _, progress := range []string{"seeding 40 members", "phase get", "phase mix", "baseline bare_handler ", "baseline bare_handler_event "} {
		if !strings.Contains(stderr, progress) {
			t.Errorf("progress on stderr lacks %q:\n%s", progress, stderr)
		}
	}

	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	for _, k := range jsonKeys(bench.Report{}) {
		if _, ok := doc[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	num := func(v any) float64 {
		n, ok := v.(json.Number)
		if !ok {
			return -1
		}
		f, _ := n.Float64()
		return f
	}

	phases, _ := doc["phases"].([]any)
	var names []string
	for _, x := range phases {
		p, _ := x.(map[string]any)
		names = append(names, fmt.Sprint(p["name"]))
	}
	if want := bench.AllPhases; !reflect.DeepEqual(names, want) {
		t.Fatalf("phases %v, want %v", names, want)
	}
	baselines, _ := doc["baselines"].(map[string]any)
	bare, _ := baselines["bare_handler"].(map[string]any)
	if bare == nil {
		t.Fatalf("no bare_handler baseline: %v", baselines)
	}
	// The bench started a SQLite server, so it also measured the bare handler with the audit
	// event every GET records.
	bareEvent, _ := baselines["bare_handler_event"].(map[string]any)
	if bareEvent == nil {
		t.Fatalf("no bare_handler_event baseline: %v", baselines)
	}
	for _, x := range append(phases, bare, bareEvent) {
		p, _ := x.(map[string]any)
		name := p["name"]
		for _, k := range jsonKeys(bench.Phase{}) {
			if _, ok := p[k]; !ok {
				t.Errorf("phase %v lacks %q", name, k)
			}
		}
		lat, _ := p["latency"].(map[string]any)
		p50, p90, p99, mx := num(lat["p50_ms"]), num(lat["p90_ms"]), num(lat["p99_ms"]), num(lat["max_ms"])
		if !(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 <= mx) {
			t.Errorf("phase %v: latencies p50 %v p90 %v p99 %v max %v are not ordered", name, p50, p90, p99, mx)
		}
		if num(p["ops"]) < 1 || num(p["throughput_per_s"]) <= 0 || num(p["seconds"]) <= 0 {
			t.Errorf("phase %v: ops %v, throughput %v, seconds %v", name, p["ops"], p["throughput_per_s"], p["seconds"])
		}
		if num(p["errors"]) != 0 {
			t.Errorf("phase %v: %v errors, first: %v", name, p["errors"], p["first_error"])
		}
		// A phase this short may burn less than one 10 ms tick of server CPU, so 0 is possible;
		// a negative or missing figure is not.
		if num(p["server_cpu_us_per_op"]) < 0 || num(p["client_cpu_us_per_op"]) < 0 || num(p["response_bytes_per_op"]) <= 0 {
			t.Errorf("phase %v: server CPU %v, client CPU %v, bytes %v per op", name, p["server_cpu_us_per_op"], p["client_cpu_us_per_op"], p["response_bytes_per_op"])
		}
	}
	mix := phases[len(phases)-1].(map[string]any)
	byOp, _ := mix["by_op"].(map[string]any)
	for _, k := range []string{"get", "recover"} { // rotate and wrong_code are 5% each: maybe none in 400 ms
		if _, ok := byOp[k]; !ok {
			t.Errorf("mix by_op lacks %s: %v", k, byOp)
		}
	}

	sign, _ := baselines["rs256_sign"].(map[string]any)
	if num(sign["key_bits"]) != 2048 || num(sign["cpu_us_per_op"]) <= 0 || num(sign["signatures"]) < 40 ||
		num(sign["cpu_us_per_op_before_phases"]) <= 0 || num(sign["cpu_us_per_op_after_phases"]) <= 0 {
		t.Errorf("rs256_sign baseline: %v", sign)
	}
	if st, _ := doc["storage"].(map[string]any); num(st["members"]) != 40 || num(st["bytes_per_member"]) <= 0 {
		t.Errorf("storage: %v", doc["storage"])
	}
	if seed, _ := doc["seed"].(map[string]any); seed["method"] != "bulk" || num(seed["members"]) != 40 || num(seed["organizations"]) != 3 {
		t.Errorf("seed: %v", doc["seed"])
	}
	ratios, _ := doc["ratios"].(map[string]any)
	for _, k := range []string{"recover_cpu_over_rs256_sign", "get_cpu_over_bare_handler", "get_floor_over_bare_handler", "rotate_p99_ms_at_half_peak", "bytes_per_member"} {
		r, _ := ratios[k].(map[string]any)
		if r == nil || num(r["target"]) <= 0 {
			t.Errorf("ratio %s: %v", k, ratios[k])
		}
	}
}

// TestBenchHTTPSeedingAndText seeds through the API (the path for a server whose database
// the bench cannot reach), compares with a smaller run, and prints the text report.
func TestBenchHTTPSeedingAndText(t *testing.T) {
	stdout, _ := runBenchCommand(t, "--members", "12", "--compare-members", "6", "--seed", "http", "--concurrency", "3",
		"--duration", "300ms", "--phases", "get,recover")
	for _, want := range []string{"seed: 12 members by http", "recover CPU/op ÷ RS256 sign CPU", "get p50 at 12 ÷ at 6 members", "same figures at 6 members"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--phases", "get,fly"},
		{"--phases", "rotate_half"},
		{"--members", "1"},
		{"--url", "http://127.0.0.1:1"},
		{"--compare-members", "10", "--db", "postgres://localhost/x"},
		{"--seed", "carrier-pigeon"},
	} {
		var out, errOut bytes.Buffer
		if err := benchCommand().run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("sparekey bench %v: no error", args)
		}
	}
}
