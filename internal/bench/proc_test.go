package bench

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name         string
		stat         string
		utime, stime uint64
		fails        bool
	}{
		{
			name:  "a real line",
			stat:  "9144 (cat) R 9140 9140 3688 0 -1 4194304 100 0 0 0 1234 567 0 0 20 0 1 0 273276 3133440 407 18446744073709551615 94638815682560 94638815702441 140727107291808 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
			utime: 1234, stime: 567,
		},
		{
			name:  "a command name with spaces and parentheses",
			stat:  "42 (sparekey (bench) 2) S 1 42 42 0 -1 4194560 5000 0 0 0 98765 4321 0 0 20 0 9 0 100 2000000 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0",
			utime: 98765, stime: 4321,
		},
		{name: "no command name", stat: "42 sparekey S 1 2 3", fails: true},
		{name: "too few fields", stat: "42 (x) S 1 2 3 4 5 6 7 8 9 10", fails: true},
		{name: "not a number", stat: "42 (x) S 1 42 42 0 -1 4194560 5000 0 0 0 many 4321 0 0", fails: true},
		{name: "empty", stat: "", fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, s, err := ParseProcStat([]byte(tc.stat))
			if tc.fails {
				if err == nil {
					t.Fatalf("ParseProcStat accepted %q: utime %d, stime %d", tc.stat, u, s)
				}
				return
			}
			if err != nil || u != tc.utime || s != tc.stime {
				t.Fatalf("ParseProcStat = %d, %d, %v; want %d, %d", u, s, err, tc.utime, tc.stime)
			}
		})
	}
	if got := ticksToDuration(150); got != 1500*time.Millisecond {
		t.Errorf("150 ticks = %v, want 1.5s (USER_HZ 100)", got)
	}
}

// TestProcessCPUReadsThisProcess reads this process's own stat file: the CPU it reports
// grows while the process works.
func TestProcessCPUReadsThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SelfCPU(); err != nil {
		t.Fatal(err)
	}
	x := 0
	for {
		for i := range 1_000_000 {
			x += i
		}
		now, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now > before {
			break // at least one tick more
		}
	}
	_ = x
}
