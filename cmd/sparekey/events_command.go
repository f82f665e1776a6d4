package main

import (
	"context"
	"flag"
	"time"

	"github.com/sparekey/sparekey/client"
)

const eventsListUsage = `Usage: sparekey events list [--type TYPE[,TYPE]] [--organization-id ID] [--member-id ID]
                           [--since TIME] [--until TIME] [--limit N] [--cursor C]

Prints one page of the project's audit trail, newest first (GET /sparekey/v1/events). Events
record codes issued, rotated, read and used, failed and replayed codes, locks, sessions, TOTP
and passwords; none holds a code, token or secret. Follow next_cursor for the next page.

Flags:
  --type LIST                  event types, comma-separated (e.g. recovery_code.used,member.locked)
  --organization-id ID         canonical organization id
  --member-id ID               canonical member id
  --since TIME                 RFC 3339; events at or after it
  --until TIME                 RFC 3339; events before it
  --limit N                    1 to 1000 (the server's default is 100)
  --cursor C                   next_cursor of the previous page
` + connectionUsage + `
Example:
  sparekey events list --type recovery_code.replayed --since 2026-03-01T00:00:00Z
`

func eventsList() clientCommand {
	return clientCommand{name: "events list", usage: eventsListUsage, flags: func(fs *flag.FlagSet) apiCall {
		var (
			p            client.ListEventsParams
			types        stringList
			since, until string
			limit        optInt
		)
		fs.Var(&types, "type", "event types, comma-separated")
		fs.StringVar(&p.OrganizationID, "organization-id", "", "canonical organization id")
		fs.StringVar(&p.MemberID, "member-id", "", "canonical member id")
		fs.StringVar(&since, "since", "", "RFC 3339 time; events at or after it")
		fs.StringVar(&until, "until", "", "RFC 3339 time; events before it")
		fs.Var(&limit, "limit", "events per page, 1 to 1000")
		fs.StringVar(&p.Cursor, "cursor", "", "next_cursor of the previous page")
		return func(ctx context.Context, c *client.Client) error {
			for _, b := range []struct {
				flag, v string
				dst     *time.Time
			}{{"--since", since, &p.Since}, {"--until", until, &p.Until}} {
				if b.v == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, b.v)
				if err != nil {
					return usageError{b.flag + " must be an RFC 3339 time, e.g. 2026-03-01T09:30:00Z"}
				}
				*b.dst = t
			}
			p.Types, p.Limit = types.v, limit.v
			_, err := c.Events.List(ctx, p)
			return err
		}
	}}
}
