package main

import (
	"errors"
	"flag"
	"net/http"
	"strings"
	"time"

	"github.com/sparekey/sparekey/internal/webhook"
)

// webhookFlags tune serve's webhook dispatcher.
type webhookFlags struct {
	timeout   time.Duration
	giveUp    time.Duration
	workers   int
	retryBase time.Duration
	retryMax  time.Duration
	poll      time.Duration
}

const webhookServeUsage = `  --webhook-timeout D          bound on one webhook attempt (SPAREKEY_WEBHOOK_TIMEOUT; default 10s)
  --webhook-give-up D          stop retrying a delivery this long after its event and mark it
                               failed (SPAREKEY_WEBHOOK_GIVE_UP; default 24h)
  --webhook-workers N          webhook attempts in flight at once, per replica
                               (SPAREKEY_WEBHOOK_WORKERS; default 4)
  --webhook-retry-base D       back-off after the first failed attempt, doubling up to
                               --webhook-retry-max (SPAREKEY_WEBHOOK_RETRY_BASE; default 5s;
                               a test and tuning knob)
  --webhook-retry-max D        longest back-off (SPAREKEY_WEBHOOK_RETRY_MAX; default 1h)
  --webhook-poll D             how often each replica looks for due deliveries besides right
                               after its own requests (SPAREKEY_WEBHOOK_POLL; default 1s)
`

func (f *webhookFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.timeout, "webhook-timeout", webhook.DefaultTimeout, "bound on one webhook attempt")
	fs.DurationVar(&f.giveUp, "webhook-give-up", webhook.DefaultGiveUp, "stop retrying a webhook delivery this long after its event")
	fs.IntVar(&f.workers, "webhook-workers", webhook.DefaultWorkers, "webhook attempts in flight at once")
	fs.DurationVar(&f.retryBase, "webhook-retry-base", webhook.DefaultRetryBase, "back-off after the first failed webhook attempt")
	fs.DurationVar(&f.retryMax, "webhook-retry-max", webhook.DefaultRetryMax, "longest webhook back-off")
	fs.DurationVar(&f.poll, "webhook-poll", webhook.DefaultPoll, "how often to look for due webhook deliveries")
}

// validate names each webhook setting at fault.
func (f *webhookFlags) validate() error {
	var errs []error
	if f.timeout < 10*time.Millisecond || f.timeout > 5*time.Minute {
		errs = append(errs, settingError("webhook-timeout", "must be from 10ms to 5m, not %s", f.timeout))
	}
	if f.giveUp < time.Second {
		errs = append(errs, settingError("webhook-give-up", "must be at least 1s, not %s", f.giveUp))
	}
	if f.workers < 1 || f.workers > 256 {
		errs = append(errs, settingError("webhook-workers", "must be from 1 to 256, not %d", f.workers))
	}
	if f.retryBase < 10*time.Millisecond {
		errs = append(errs, settingError("webhook-retry-base", "must be at least 10ms, not %s", f.retryBase))
	}
	if f.retryMax < f.retryBase {
		errs = append(errs, settingError("webhook-retry-max", "must be at least --webhook-retry-base (%s), not %s", f.retryBase, f.retryMax))
	}
	if f.poll < 10*time.Millisecond || f.poll > time.Minute {
		errs = append(errs, settingError("webhook-poll", "must be from 10ms to 1m, not %s", f.poll))
	}
	return errors.Join(errs...)
}

// config is the dispatcher's configuration; attempts in flight at a shutdown get what the
// shutdown gives requests, at most one attempt's timeout.
func (f *webhookFlags) config(shutdownTimeout time.Duration) webhook.Config {
	return webhook.Config{
		Timeout:       f.timeout,
		GiveUp:        f.giveUp,
		Workers:       f.workers,
		RetryBase:     f.retryBase,
		RetryMax:      f.retryMax,
		Poll:          f.poll,
		ShutdownGrace: min(shutdownTimeout, f.timeout),
	}
}

// pokeAfterRequests wakes the dispatcher after each API request, which may have committed events
// whose deliveries are due at once; the operations routes write nothing. The poke costs a
// non-blocking channel send, and the dispatcher coalesces a burst of them into one look.
func pokeAfterRequests(h http.Handler, d *webhook.Dispatcher) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/sparekey/") {
			d.Poke()
		}
	})
}
