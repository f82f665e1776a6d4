package main

import (
	"context"
	"flag"

	"github.com/sparekey/sparekey/client"
)

const webhooksCreateUsage = `Usage: sparekey webhooks create --webhook-url URL [--event-types TYPE[,TYPE]]

Registers an endpoint that receives the project's audit events as signed POSTs
(POST /sparekey/v1/webhooks). The response holds the webhook and its signing secret
("whsec_..."), shown this once: sparekey keeps only a sealed copy. Each request carries the
Standard Webhooks headers webhook-id (the event id, the same on every retry), webhook-timestamp
and webhook-signature; see the README's "Webhooks" section for checking them.

Flags:
  --webhook-url URL            absolute http:// or https:// URL (no user info or fragment)
  --event-types LIST           event types to deliver, comma-separated (e.g.
                               recovery_code.replayed,member.locked); none = every type
` + connectionUsage + `
Example:
  sparekey webhooks create --webhook-url https://app.example.com/hooks/sparekey --event-types member.locked
`

const webhooksListUsage = `Usage: sparekey webhooks list

Prints the project's webhooks, oldest first, without their secrets (GET /sparekey/v1/webhooks).
` + connectionUsage + `
Example:
  sparekey webhooks list
`

const webhooksDeleteUsage = `Usage: sparekey webhooks delete --webhook-id ID

Deletes a webhook (DELETE /sparekey/v1/webhooks/{webhook_id}). Its deliveries not yet made are
dropped; an attempt in flight may still arrive.

Flags:
  --webhook-id ID              the webhook's id (webhook-test-...)
` + connectionUsage + `
Example:
  sparekey webhooks delete --webhook-id webhook-test-0195f1f2-7b7e-7c3e-9d5c-3a1b2c3d4e5f
`

const webhooksDeliveriesUsage = `Usage: sparekey webhooks deliveries --webhook-id ID [--limit N]

Prints a webhook's most recent deliveries, newest event first
(GET /sparekey/v1/webhooks/{webhook_id}/deliveries): state pending, delivered or failed (given
up), attempts, the last status and error, and when the next attempt is due. Finished deliveries
are kept for a week.

Flags:
  --webhook-id ID              the webhook's id (webhook-test-...)
  --limit N                    1 to 1000 (the server's default is 100)
` + connectionUsage + `
Example:
  sparekey webhooks deliveries --webhook-id webhook-test-0195f1f2-7b7e-7c3e-9d5c-3a1b2c3d4e5f --limit 20
`

// webhookCommands lists the webhook commands (run.go's commands() names each of them).
func webhookCommands() []clientCommand {
	return []clientCommand{webhooksCreate(), webhooksList(), webhooksDelete(), webhooksDeliveries()}
}

func webhooksCreate() clientCommand {
	return clientCommand{name: "webhooks create", usage: webhooksCreateUsage, flags: func(fs *flag.FlagSet) apiCall {
		var (
			p     client.CreateWebhookParams
			types stringList
		)
		// --webhook-url, not --url: --url is the sparekey server every client command calls.
		fs.StringVar(&p.URL, "webhook-url", "", "the endpoint's URL")
		fs.Var(&types, "event-types", "event types to deliver, comma-separated; none = every type")
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--webhook-url", p.URL); err != nil {
				return err
			}
			p.EventTypes = types.v
			_, err := c.Webhooks.Create(ctx, p)
			return err
		}
	}}
}

func webhooksList() clientCommand {
	return clientCommand{name: "webhooks list", usage: webhooksListUsage, flags: func(fs *flag.FlagSet) apiCall {
		return func(ctx context.Context, c *client.Client) error {
			_, err := c.Webhooks.List(ctx)
			return err
		}
	}}
}

func webhooksDelete() clientCommand {
	return clientCommand{name: "webhooks delete", usage: webhooksDeleteUsage, flags: func(fs *flag.FlagSet) apiCall {
		var id string
		fs.StringVar(&id, "webhook-id", "", "the webhook's id")
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--webhook-id", id); err != nil {
				return err
			}
			_, err := c.Webhooks.Delete(ctx, id)
			return err
		}
	}}
}

func webhooksDeliveries() clientCommand {
	return clientCommand{name: "webhooks deliveries", usage: webhooksDeliveriesUsage, flags: func(fs *flag.FlagSet) apiCall {
		var (
			p     client.ListWebhookDeliveriesParams
			limit optInt
		)
		fs.StringVar(&p.WebhookID, "webhook-id", "", "the webhook's id")
		fs.Var(&limit, "limit", "deliveries to show, 1 to 1000")
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--webhook-id", p.WebhookID); err != nil {
				return err
			}
			p.Limit = limit.v
			_, err := c.Webhooks.Deliveries(ctx, p)
			return err
		}
	}}
}
