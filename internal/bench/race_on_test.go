//go:build race

package bench_test

// raceDetector: modernc SQLite is transpiled C, tens of times slower under -race.
const raceDetector = true
