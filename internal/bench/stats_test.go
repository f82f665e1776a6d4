package bench

import (
	"math/rand/v2"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentileIsNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100) // 1 ms … 100 ms
	for i := range hundred {
		hundred[i] = ms(i + 1)
	}
	for _, tc := range []struct {
		name   string
		sample []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value is every percentile", []time.Duration{ms(7)}, 99, ms(7)},
		{"p50 of two is the lower", []time.Duration{ms(1), ms(2)}, 50, ms(1)},
		{"p90 of two is the higher", []time.Duration{ms(1), ms(2)}, 90, ms(2)},
		{"p50 of 1..100", hundred, 50, ms(50)},
		{"p90 of 1..100", hundred, 90, ms(90)},
		{"p99 of 1..100", hundred, 99, ms(99)},
		{"p99.9 of 1..100 rounds up to the max", hundred, 99.9, ms(100)},
		{"p100 is the max", hundred, 100, ms(100)},
		{"p1 of 1..100", hundred, 1, ms(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sample, tc.p); got != tc.want {
				t.Errorf("Percentile(p%g) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeSortsAndReportsMilliseconds(t *testing.T) {
	sample := make([]time.Duration, 1000) // 0.25 ms … 250 ms in steps of 0.25 ms, shuffled
	for i := range sample {
		sample[i] = time.Duration(i+1) * 250 * time.Microsecond
	}
	rand.Shuffle(len(sample), func(i, j int) { sample[i], sample[j] = sample[j], sample[i] })
	got := Summarize(sample)
	want := LatencySummary{P50: 125, P90: 225, P99: 247.5, Max: 250}
	if got != want {
		t.Fatalf("Summarize = %+v, want %+v", got, want)
	}
	if (Summarize(nil) != LatencySummary{}) {
		t.Fatalf("Summarize(nil) = %+v, want zeros", Summarize(nil))
	}
}
