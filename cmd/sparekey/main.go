// Command sparekey serves the Stytch B2B recovery-codes API and the MFA login around it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		// An API refusal is one line a script can parse: error_type: message (request_id).
		if errors.As(err, new(apiError)) {
			fmt.Fprintln(os.Stderr, err)
		} else {
			fmt.Fprintln(os.Stderr, "sparekey:", err)
		}
		os.Exit(exitCode(err))
	}
}
