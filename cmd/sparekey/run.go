package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// command is one subcommand: its name words (e.g. "project create"), a one-line summary, the
// help text, and the function that runs it with the remaining arguments.
type command struct {
	name    string
	summary string
	usage   string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{name: "serve", summary: "serve the API (SQLite by default)", usage: serveUsage, run: serve},
		{name: "migrate", summary: "apply database migrations", usage: migrateUsage, run: migrate},
		{name: "project create", summary: "create a project and print its credentials", usage: projectCreateUsage, run: projectCreate},
		backupCommand(),
		configCheckCommand(),
		benchCommand(),
		keysRotateSigningCommand(),
		keysRotateMasterCommand(),
		keysListCommand(),
		{name: "recovery-codes get", summary: "list a member's unused recovery codes", usage: recoveryCodesGetUsage, run: recoveryCodesGet().run},
		{name: "recovery-codes rotate", summary: "replace a member's recovery codes", usage: recoveryCodesRotateUsage, run: recoveryCodesRotate().run},
		{name: "recovery-codes recover", summary: "authenticate with a recovery code", usage: recoveryCodesRecoverUsage, run: recoveryCodesRecover().run},
		{name: "organizations create", summary: "create an organization", usage: organizationsCreateUsage, run: organizationsCreate().run},
		{name: "organizations get", summary: "print an organization", usage: organizationsGetUsage, run: organizationsGet().run},
		{name: "members create", summary: "add a member to an organization", usage: membersCreateUsage, run: membersCreate().run},
		{name: "members get", summary: "print a member", usage: membersGetUsage, run: membersGet().run},
		{name: "totp create", summary: "register an authenticator app (issues recovery codes)", usage: totpCreateUsage, run: totpCreate().run},
		{name: "passwords migrate", summary: "import a member's password hash", usage: passwordsMigrateUsage, run: passwordsMigrate().run},
		{name: "passwords authenticate", summary: "check a member's password", usage: passwordsAuthenticateUsage, run: passwordsAuthenticate().run},
		{name: "sessions authenticate", summary: "check a session and mint a fresh JWT", usage: sessionsAuthenticateUsage, run: sessionsAuthenticate().run},
		{name: "sessions revoke", summary: "end a session or all of a member's sessions", usage: sessionsRevokeUsage, run: sessionsRevoke().run},
		{name: "events list", summary: "print the audit trail (sparekey's own API)", usage: eventsListUsage, run: eventsList().run},
		{name: "webhooks create", summary: "register an endpoint for the audit events (prints its secret once)", usage: webhooksCreateUsage, run: webhooksCreate().run},
		{name: "webhooks list", summary: "list the project's webhooks", usage: webhooksListUsage, run: webhooksList().run},
		{name: "webhooks delete", summary: "delete a webhook", usage: webhooksDeleteUsage, run: webhooksDelete().run},
		{name: "webhooks deliveries", summary: "show a webhook's recent deliveries", usage: webhooksDeliveriesUsage, run: webhooksDeliveries().run},
	}
}

// errUsage marks a command-line mistake: exit code 2, like flag's own errors.
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e usageError) Error() string        { return e.msg }
func (e usageError) Is(target error) bool { return target == errUsage }

func exitCode(err error) int {
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// run dispatches to a subcommand. It is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printHelp(stdout)
		return usageError{"no command given"}
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, _, ok := findCommand(args[1:]); ok {
				fmt.Fprint(stdout, c.usage)
				return nil
			}
			return usageError{fmt.Sprintf("unknown command %q", strings.Join(args[1:], " "))}
		}
		printHelp(stdout)
		return nil
	}
	c, rest, ok := findCommand(args)
	if !ok {
		printHelp(stderr)
		return usageError{fmt.Sprintf("unknown command %q", strings.Join(args, " "))}
	}
	return c.run(ctx, rest, stdout, stderr)
}

// findCommand matches the longest command name at the start of args.
func findCommand(args []string) (command, []string, bool) {
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return len(strings.Fields(cmds[i].name)) > len(strings.Fields(cmds[j].name)) })
	for _, c := range cmds {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c, args[len(words):], true
		}
	}
	return command{}, nil, false
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "sparekey: a self-hostable Stytch-compatible MFA recovery-code service")
	fmt.Fprintln(w, "\nUsage: sparekey <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-28s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'sparekey help <command>' for a command's flags. Every flag has an environment twin:")
	fmt.Fprintln(w, "--lock-threshold is SPAREKEY_LOCK_THRESHOLD, and so on.")
}
