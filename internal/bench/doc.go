// Package bench is sparekey's own benchmark: it seeds organizations and members with TOTP and
// recovery codes, drives a server over keep-alive HTTP/1.1 through timed phases (get, recover,
// rotate, a realistic mix, ...) and reports per phase throughput, latency percentiles and the
// server process's CPU per operation, next to baselines measured in the same run on the same
// machine: the CPU of one RS256 signature and of a bare net/http handler. DESIGN.md §5 states
// the performance targets as ratios to those baselines.
//
// The server runs as a child process (the sparekey binary's serve command) so that its CPU can
// be read alone from /proc/<pid>/stat; the bare handler runs as another child. CPU accounting
// therefore needs Linux.
//
// The file hotpaths_test.go holds the Go benchmarks (testing.B) of the hot paths below HTTP.
package bench
