package bench

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ClockTicksPerSecond is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. The kernel
// reports these fields in USER_HZ whatever its internal HZ, and USER_HZ is 100 on every
// architecture Go supports on Linux (sysconf(_SC_CLK_TCK) returns that constant; asking it
// would need cgo). A tick is 10 ms, so a phase should burn at least a few CPU seconds for the
// per-operation figure to be exact to a percent.
const ClockTicksPerSecond = 100

// ParseProcStat returns utime and stime (fields 14 and 15, in clock ticks) of the content of a
// /proc/<pid>/stat file. Field 2, the command name, is in parentheses and may itself hold
// spaces and parentheses, so fields are counted from the last ')'.
func ParseProcStat(b []byte) (utime, stime uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("bench: /proc stat has no command name")
	}
	// After the name: field 3 (state) is rest[0], so field k is rest[k-3].
	rest := bytes.Fields(b[i+1:])
	if len(rest) < 13 {
		return 0, 0, fmt.Errorf("bench: /proc stat has %d fields after the command name, want at least 13", len(rest))
	}
	if utime, err = strconv.ParseUint(string(rest[14-3]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bench: /proc stat utime: %w", err)
	}
	if stime, err = strconv.ParseUint(string(rest[15-3]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bench: /proc stat stime: %w", err)
	}
	return utime, stime, nil
}

// ticksToDuration converts clock ticks to time.
func ticksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * (time.Second / ClockTicksPerSecond)
}
