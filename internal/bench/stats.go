package bench

import (
	"math"
	"slices"
	"time"
)

// LatencySummary is a latency distribution in milliseconds.
type LatencySummary struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of an ascending sample: the
// smallest value that at least p% of the sample does not exceed. It interpolates nothing, so
// every figure reported is a latency some request really had. An empty sample gives 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Summarize sorts sample in place and returns its p50, p90, p99 and maximum.
func Summarize(sample []time.Duration) LatencySummary {
	slices.Sort(sample)
	ms := func(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }
	var s LatencySummary
	if len(sample) > 0 {
		s = LatencySummary{
			P50: ms(Percentile(sample, 50)),
			P90: ms(Percentile(sample, 90)),
			P99: ms(Percentile(sample, 99)),
			Max: ms(sample[len(sample)-1]),
		}
	}
	return s
}

// round3 keeps three decimals: microseconds in a millisecond figure, enough for any reader.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
