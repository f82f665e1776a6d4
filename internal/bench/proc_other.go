//go:build !linux

package bench

import (
	"errors"
	"syscall"
	"time"
)

var errNoProc = errors.New("bench: CPU accounting reads /proc and needs Linux")

// ProcessCPU is unavailable without /proc.
func ProcessCPU(pid int) (time.Duration, error) { return 0, errNoProc }

// SelfCPU is unavailable without /proc.
func SelfCPU() (time.Duration, error) { return 0, errNoProc }

func loadAverage() string { return "" }

func childAttributes() *syscall.SysProcAttr { return nil }

const cpuAccounting = false
