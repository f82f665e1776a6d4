package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestWebhookCommandsDocumented holds the webhook commands to the rules of every client command:
// listed in commands() with their usage, which starts with the command line, documents every
// flag and has an example.
func TestWebhookCommandsDocumented(t *testing.T) {
	listed := map[string]command{}
	for _, c := range commands() {
		listed[c.name] = c
	}
	for _, cc := range webhookCommands() {
		t.Run(cc.name, func(t *testing.T) {
			c, ok := listed[cc.name]
			if !ok || c.usage != cc.usage || c.summary == "" {
				t.Fatalf("commands() lists %q as %+v", cc.name, c)
			}
			if !strings.HasPrefix(cc.usage, "Usage: sparekey "+cc.name) {
				t.Errorf("usage does not start with the command line:\n%s", cc.usage)
			}
			example := cc.usage[strings.Index(cc.usage, "\nExample:")+1:]
			if !strings.HasPrefix(example, "Example:") || !strings.Contains(example, "sparekey "+cc.name) {
				t.Errorf("usage has no example of %q:\n%s", cc.name, cc.usage)
			}
			fs := flag.NewFlagSet(cc.name, flag.ContinueOnError)
			var conn connectionFlags
			conn.register(fs)
			cc.flags(fs)
			fs.VisitAll(func(f *flag.Flag) {
				if !regexp.MustCompile(`(^|[\s(|,])--` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(cc.usage) {
					t.Errorf("usage does not document --%s", f.Name)
				}
			})
			var out bytes.Buffer
			if err := run(context.Background(), append([]string{"help"}, strings.Fields(cc.name)...), &out, io.Discard); err != nil || out.String() != cc.usage {
				t.Errorf("sparekey help %s: %v", cc.name, err)
			}
		})
	}
	// serve documents its webhook flags.
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f webhookFlags
	f.register(fs)
	fs.VisitAll(func(fl *flag.Flag) {
		if !strings.Contains(serveUsage, "--"+fl.Name+" ") {
			t.Errorf("serve's usage does not document --%s", fl.Name)
		}
	})
}

// The webhook commands against a real server: create prints the secret once, list never does,
// deliveries and delete work by id, and mistakes are refused before any call.
func TestWebhookCommands(t *testing.T) {
	c := newCLI(t)
	env := c.connEnv()

	created := c.ok(t, env, "webhooks", "create", "--webhook-url", "https://hooks.example.com/sparekey?x=1", "--event-types", "member.locked, recovery_code.replayed")
	id := str(created, "webhook", "webhook_id")
	secret := str(created, "secret")
	if !strings.HasPrefix(id, "webhook-test-") || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("webhooks create: %v", created)
	}
	if types := strs(created["webhook"].(map[string]any), "event_types"); strings.Join(types, ",") != "member.locked,recovery_code.replayed" {
		t.Errorf("event_types %v", types)
	}
	c.ok(t, append(env, "SPAREKEY_WEBHOOK_URL=http://127.0.0.1:9/every"), "webhooks", "create")
	listed := c.ok(t, env, "webhooks", "list")
	if hooks := listed["webhooks"].([]any); len(hooks) != 2 {
		t.Fatalf("webhooks list: %v", listed)
	}
	if strings.Contains(string(c.lastBody()), strings.TrimPrefix(secret, "whsec_")) {
		t.Errorf("webhooks list printed the secret")
	}
	ds := c.ok(t, env, "webhooks", "deliveries", "--webhook-id", id, "--limit", "5")
	if len(ds["deliveries"].([]any)) != 0 {
		t.Errorf("webhooks deliveries: %v", ds)
	}
	c.fails(t, env, "invalid_request_value", "webhooks", "create", "--webhook-url", "ftp://example.com/")
	c.fails(t, env, "invalid_request_value", "webhooks", "create", "--webhook-url", "https://a.example/", "--event-types", "no.such")
	c.ok(t, env, "webhooks", "delete", "--webhook-id", id)
	c.fails(t, env, "webhook_not_found", "webhooks", "delete", "--webhook-id", id)

	c.usage(t, env, "--webhook-url required", "webhooks", "create")
	c.usage(t, env, "--webhook-id required", "webhooks", "delete")
	c.usage(t, env, "--webhook-id required", "webhooks", "deliveries")
}

func TestWebhookSettingsFailAtStart(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook-timeout", "0s"}, "--webhook-timeout (SPAREKEY_WEBHOOK_TIMEOUT) must be from 10ms to 5m, not 0s"},
		{[]string{"--webhook-give-up", "10ms"}, "--webhook-give-up (SPAREKEY_WEBHOOK_GIVE_UP) must be at least 1s, not 10ms"},
		{[]string{"--webhook-workers", "0"}, "--webhook-workers (SPAREKEY_WEBHOOK_WORKERS) must be from 1 to 256, not 0"},
		{[]string{"--webhook-retry-base", "1ms"}, "--webhook-retry-base (SPAREKEY_WEBHOOK_RETRY_BASE) must be at least 10ms, not 1ms"},
		{[]string{"--webhook-retry-base", "1m", "--webhook-retry-max", "10s"}, "--webhook-retry-max (SPAREKEY_WEBHOOK_RETRY_MAX) must be at least --webhook-retry-base (1m0s), not 10s"},
		{[]string{"--webhook-poll", "2m"}, "--webhook-poll (SPAREKEY_WEBHOOK_POLL) must be from 10ms to 1m, not 2m0s"},
	} {
		t.Run(c.want, func(t *testing.T) {
			opsCleanEnv(t)
			db := filepath.Join(t.TempDir(), "data", "sparekey.db")
			err := serve(context.Background(), append([]string{"--db", "sqlite:" + db, "--addr", "127.0.0.1:8080"}, c.args...), io.Discard, io.Discard)
			if err == nil || err.Error() != c.want || exitCode(err) != 2 {
				t.Fatalf("serve %s: %v, want %q (exit 2)", strings.Join(c.args, " "), err, c.want)
			}
		})
	}
}
