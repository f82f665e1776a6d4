package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is one benchmark run, written as one JSON document by --json. Figures that a run
// cannot measure (server CPU of a server the bench did not start, a ratio without its
// baseline) are null, never left out.
type Report struct {
	Tool      string    `json:"tool"`
	StartedAt time.Time `json:"started_at"`
	Machine   Machine   `json:"machine"`
	Settings  Settings  `json:"settings"`
	Seed      Seed      `json:"seed"`
	Storage   *Storage  `json:"storage"`
	Phases    []Phase   `json:"phases"`
	Baselines Baselines `json:"baselines"`
	Ratios    Ratios    `json:"ratios"`
	Scale     *Scale    `json:"scale"`
	Notes     []string  `json:"notes"`
}

// Machine describes where the run happened. Load averages are context: on a shared machine
// throughput and latency move with the neighbours; CPU per operation much less.
type Machine struct {
	CPUs                int    `json:"cpus"`
	GOOS                string `json:"goos"`
	GOARCH              string `json:"goarch"`
	GoVersion           string `json:"go_version"`
	ClockTicksPerSecond int    `json:"clock_ticks_per_second"`
	LoadAverageStart    string `json:"load_average_start"`
	LoadAverageEnd      string `json:"load_average_end"`
}

// Settings are the knobs of the run.
type Settings struct {
	Target         string  `json:"target"` // "child process" or the --url
	Database       string  `json:"database"`
	Members        int     `json:"members"`
	Organizations  int     `json:"organizations"`
	Concurrency    int     `json:"concurrency"`
	PhaseSeconds   float64 `json:"phase_seconds"`
	Mix            Mix     `json:"mix"`
	ServerLogLevel string  `json:"server_log_level"`
	LockThreshold  int     `json:"lock_threshold"`
	Profiled       bool    `json:"profiled"`
}

// Mix is the share of each operation in the mix phase, in percent.
type Mix struct {
	Get       int `json:"get"`
	Recover   int `json:"recover"`
	Rotate    int `json:"rotate"`
	WrongCode int `json:"wrong_code"`
}

// DefaultMix is a login-heavy day: most calls display codes (an account page, an admin
// console), a fifth are real recoveries, a few rotate after a recovery, a few are typos.
var DefaultMix = Mix{Get: 70, Recover: 20, Rotate: 5, WrongCode: 5}

// Seed is how the members got into the database.
type Seed struct {
	Method           string  `json:"method"` // "bulk" (BulkLoader) or "http" (the API)
	Members          int     `json:"members"`
	Organizations    int     `json:"organizations"`
	Seconds          float64 `json:"seconds"`
	MembersPerSecond float64 `json:"members_per_second"`
}

// Storage is the database's size right after seeding.
type Storage struct {
	Method         string  `json:"method"`
	Bytes          int64   `json:"bytes"`
	Members        int64   `json:"members"`
	BytesPerMember float64 `json:"bytes_per_member"`
}

// Phase is one timed load. CPU figures are those of the server process alone, read from
// /proc before and after the phase; client CPU is the bench's own.
type Phase struct {
	Name        string   `json:"name"`
	Concurrency int      `json:"concurrency"`
	TargetRate  *float64 `json:"target_rate_per_s"` // paced phases only
	// SendLagP99MS (paced phases only) is the p99 of how late requests left after their due
	// time. Paced latency counts from the due time, so a late client (a busy machine, a worker
	// still waiting for an earlier answer) shows in it; this says how much.
	SendLagP99MS       *float64           `json:"send_lag_p99_ms"`
	Seconds            float64            `json:"seconds"`
	Ops                int64              `json:"ops"`
	Errors             int64              `json:"errors"`
	FirstError         string             `json:"first_error"`
	EndedEarly         bool               `json:"ended_early"` // the prepared supply (codes, ISTs) ran out
	Throughput         float64            `json:"throughput_per_s"`
	Latency            LatencySummary     `json:"latency"`
	ResponseBytesPerOp float64            `json:"response_bytes_per_op"`
	ServerCPUSeconds   *float64           `json:"server_cpu_seconds"`
	ServerCPUPerOpUS   *float64           `json:"server_cpu_us_per_op"`
	ClientCPUPerOpUS   *float64           `json:"client_cpu_us_per_op"`
	ByOp               map[string]OpStats `json:"by_op"`
}

// OpStats is one kind of operation inside a phase.
type OpStats struct {
	Ops     int64          `json:"ops"`
	Errors  int64          `json:"errors"`
	Latency LatencySummary `json:"latency"`
}

// Baselines are measured in the same run on the same machine as the phases.
type Baselines struct {
	RS256Sign   SignBaseline `json:"rs256_sign"`
	BareHandler *Phase       `json:"bare_handler"` // null when the bench does not see the server's CPU
	// BareHandlerEvent is the bare handler recording, before each answer, one durable audit event
	// as a GET does, in a SQLite store (ServeBare); null unless the bench started a SQLite server.
	BareHandlerEvent *Phase `json:"bare_handler_event"`
	BareBytes        int    `json:"bare_handler_body_bytes"`
}

// SignBaseline is the cost of one RS256 signature of a representative session JWT with a
// 2048-bit key, on one goroutine: CPU and wall time per signature agree on an idle machine.
// It is measured before the phases and again after them; the figures are of both together,
// and the two halves show how much a shared machine moved CPU costs during the run.
type SignBaseline struct {
	KeyBits         int     `json:"key_bits"`
	JWTBytes        int     `json:"jwt_bytes"`
	Signatures      int     `json:"signatures"`
	CPUPerOpUS      float64 `json:"cpu_us_per_op"`
	WallPerOpUS     float64 `json:"wall_us_per_op"`
	CPUPerOpUSStart float64 `json:"cpu_us_per_op_before_phases"`
	CPUPerOpUSEnd   float64 `json:"cpu_us_per_op_after_phases"`
}

// combine merges the measurements before and after the phases.
func (a SignBaseline) combine(b SignBaseline) SignBaseline {
	n := a.Signatures + b.Signatures
	if n == 0 {
		return a
	}
	weighted := func(x, y float64) float64 {
		return round3((x*float64(a.Signatures) + y*float64(b.Signatures)) / float64(n))
	}
	return SignBaseline{
		KeyBits: a.KeyBits, JWTBytes: a.JWTBytes, Signatures: n,
		CPUPerOpUS:      weighted(a.CPUPerOpUS, b.CPUPerOpUS),
		WallPerOpUS:     weighted(a.WallPerOpUS, b.WallPerOpUS),
		CPUPerOpUSStart: a.CPUPerOpUS,
		CPUPerOpUSEnd:   b.CPUPerOpUS,
	}
}

// Ratios are DESIGN.md §5's targets, each with its measured value.
type Ratios struct {
	RecoverCPUOverSign *Ratio `json:"recover_cpu_over_rs256_sign"`
	GetCPUOverBare     *Ratio `json:"get_cpu_over_bare_handler"`
	// GetFloorOverBare is the bare handler with its audit event ÷ the bare handler, against the
	// get target: a floor under GetCPUOverBare, since every GET makes that write and more.
	GetFloorOverBare  *Ratio `json:"get_floor_over_bare_handler"`
	RotateP99HalfPeak *Ratio `json:"rotate_p99_ms_at_half_peak"`
	GetP50Scale       *Ratio `json:"get_p50_scale"`
	RecoverP50Scale   *Ratio `json:"recover_p50_scale"`
	BytesPerMember    *Ratio `json:"bytes_per_member"`
}

// Ratio is a measured value against its target (met when value ≤ target).
type Ratio struct {
	Value  float64 `json:"value"`
	Target float64 `json:"target"`
	Meets  bool    `json:"meets"`
}

func newRatio(value, target float64) *Ratio {
	return &Ratio{Value: round3(value), Target: target, Meets: value <= target}
}

// Scale compares the main run with a smaller one (--compare-members).
type Scale struct {
	Members int      `json:"members"`
	Seed    Seed     `json:"seed"`
	Storage *Storage `json:"storage"`
	Phases  []Phase  `json:"phases"`
	// ServerCPUGrowth is, per phase, the main run's server CPU per operation ÷ the smaller
	// run's: what the larger database costs, independent of queueing on a busy machine.
	ServerCPUGrowth map[string]float64 `json:"server_cpu_growth"`
}

func (r *Report) phase(name string) *Phase { return findPhase(r.Phases, name) }

func findPhase(ps []Phase, name string) *Phase {
	for i := range ps {
		if ps[i].Name == name {
			return &ps[i]
		}
	}
	return nil
}

// WriteText prints the report for a person.
func (r *Report) WriteText(w io.Writer) {
	s := r.Settings
	fmt.Fprintf(w, "sparekey bench: %s, %s\n", s.Target, s.Database)
	fmt.Fprintf(w, "  %d members in %d organizations, concurrency %d, %gs per phase; %d CPUs, load average %s → %s\n",
		s.Members, s.Organizations, s.Concurrency, s.PhaseSeconds, r.Machine.CPUs, r.Machine.LoadAverageStart, r.Machine.LoadAverageEnd)
	fmt.Fprintf(w, "  seed: %d members by %s in %.1fs (%.0f members/s)\n", r.Seed.Members, r.Seed.Method, r.Seed.Seconds, r.Seed.MembersPerSecond)
	if st := r.Storage; st != nil {
		fmt.Fprintf(w, "  database after seeding: %s for %d members = %.0f bytes/member (%s)\n", humanBytes(st.Bytes), st.Members, st.BytesPerMember, st.Method)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-28s %9s %8s %8s %8s %8s %12s %12s %7s\n", "phase", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "server µs/op", "client µs/op", "errors")
	phases := append([]Phase(nil), r.Phases...)
	for _, b := range []*Phase{r.Baselines.BareHandler, r.Baselines.BareHandlerEvent} {
		if b != nil {
			phases = append(phases, *b)
		}
	}
	for _, p := range phases {
		name := p.Name
		if p.TargetRate != nil {
			name += fmt.Sprintf(" (paced %.0f/s)", *p.TargetRate)
		}
		if p.EndedEarly {
			name += " (supply ran out)"
		}
		fmt.Fprintf(w, "%-28s %9.0f %8.2f %8.2f %8.2f %8.2f %12s %12s %7d\n", name, p.Throughput,
			p.Latency.P50, p.Latency.P90, p.Latency.P99, p.Latency.Max, optional(p.ServerCPUPerOpUS, "%.0f"), optional(p.ClientCPUPerOpUS, "%.0f"), p.Errors)
		for _, k := range opOrder {
			if o, ok := p.ByOp[k]; ok && len(p.ByOp) > 1 {
				fmt.Fprintf(w, "%-28s %9s %8.2f %8.2f %8.2f %8.2f %12s %12s %7d\n", "  "+k, fmt.Sprintf("%d ops", o.Ops), o.Latency.P50, o.Latency.P90, o.Latency.P99, o.Latency.Max, "", "", o.Errors)
			}
		}
	}
	for _, p := range phases {
		if p.FirstError != "" {
			fmt.Fprintf(w, "  %s: first error: %s\n", p.Name, p.FirstError)
		}
		if p.SendLagP99MS != nil {
			fmt.Fprintf(w, "  %s: latency counts from each request's due time; p99 of requests leaving late: %.2f ms\n", p.Name, *p.SendLagP99MS)
		}
	}

	b := r.Baselines
	fmt.Fprintf(w, "\nbaselines (same run, same machine):\n")
	fmt.Fprintf(w, "  RS256 signature (%d-bit key, %d-byte session JWT): %.0f µs CPU, %.0f µs wall (%d signatures; %.0f µs CPU before the phases, %.0f after)\n",
		b.RS256Sign.KeyBits, b.RS256Sign.JWTBytes, b.RS256Sign.CPUPerOpUS, b.RS256Sign.WallPerOpUS, b.RS256Sign.Signatures, b.RS256Sign.CPUPerOpUSStart, b.RS256Sign.CPUPerOpUSEnd)
	if bh := b.BareHandler; bh != nil {
		fmt.Fprintf(w, "  bare net/http handler, %d-byte body: %s µs server CPU/op at %.0f ops/s\n", b.BareBytes, optional(bh.ServerCPUPerOpUS, "%.0f"), bh.Throughput)
	}
	if be := b.BareHandlerEvent; be != nil {
		fmt.Fprintf(w, "  the same, recording one durable audit event per request (SQLite store): %s µs server CPU/op at %.0f ops/s\n", optional(be.ServerCPUPerOpUS, "%.0f"), be.Throughput)
	}

	fmt.Fprintf(w, "\ntargets (DESIGN.md §5):\n")
	line := func(what string, r *Ratio, unit string) {
		if r == nil {
			fmt.Fprintf(w, "  %-46s not measured\n", what)
			return
		}
		verdict := "meets"
		if !r.Meets {
			verdict = "MISSES"
		}
		fmt.Fprintf(w, "  %-46s %9.3f%s  (target ≤ %g%s)  %s\n", what, r.Value, unit, r.Target, unit, verdict)
	}
	line("recover CPU/op ÷ RS256 sign CPU", r.Ratios.RecoverCPUOverSign, "")
	line("get CPU/op ÷ bare-handler CPU/op", r.Ratios.GetCPUOverBare, "")
	if r.Ratios.GetFloorOverBare != nil {
		line("  floor: bare handler + audit event ÷ bare", r.Ratios.GetFloorOverBare, "")
	}
	line("rotate p99 at half of peak throughput", r.Ratios.RotateP99HalfPeak, " ms")
	line("database bytes per member", r.Ratios.BytesPerMember, " B")
	if sc := r.Scale; sc != nil {
		line(fmt.Sprintf("get p50 at %d ÷ at %d members", s.Members, sc.Members), r.Ratios.GetP50Scale, "")
		line(fmt.Sprintf("recover p50 at %d ÷ at %d members", s.Members, sc.Members), r.Ratios.RecoverP50Scale, "")
		fmt.Fprintf(w, "\nsame figures at %d members (seeded in %.1fs", sc.Members, sc.Seed.Seconds)
		if sc.Storage != nil {
			fmt.Fprintf(w, ", %.0f bytes/member", sc.Storage.BytesPerMember)
		}
		fmt.Fprintln(w, "):")
		for _, p := range sc.Phases {
			growth := ""
			if g, ok := sc.ServerCPUGrowth[p.Name]; ok {
				growth = fmt.Sprintf(" (at %d members: × %.2f)", s.Members, g)
			}
			fmt.Fprintf(w, "  %-10s %8.0f ops/s  p50 %.2f ms  p99 %.2f ms  server CPU %s µs/op%s\n", p.Name, p.Throughput, p.Latency.P50, p.Latency.P99, optional(p.ServerCPUPerOpUS, "%.0f"), growth)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
}

func optional(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// joinNames is a phase list for messages.
func joinNames(names []string) string { return strings.Join(names, ", ") }
