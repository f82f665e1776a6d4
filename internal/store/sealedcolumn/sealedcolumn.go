// Package sealedcolumn says where each auth.SealedColumn lives in the schema the SQLite and
// PostgreSQL stores share (same tables, same column names), for master-key rotation.
package sealedcolumn

import (
	"fmt"
	"maps"

	"github.com/sparekey/sparekey/internal/auth"
)

// Column is where a sealed column lives: its table, the unique key its rows are paged and
// replaced by, and the columns holding the owner and id of its associated data. Identifiers
// come from here only, never from a caller.
type Column struct {
	Table, Key, Owner, ID, Value string
}

// columns is every auth.SealedColumn: one line per column.
var columns = map[auth.SealedColumn]Column{
	auth.SealedProjectPepper: {Table: "projects", Key: "id", Owner: "id", ID: "''", Value: "sealed_pepper"},
	auth.SealedSigningKey:    {Table: "signing_keys", Key: "kid", Owner: "project_id", ID: "kid", Value: "sealed_private_key"},
	auth.SealedTOTPSecret:    {Table: "totp_registrations", Key: "id", Owner: "member_id", ID: "id", Value: "sealed_secret"},
	auth.SealedRecoveryCodes: {Table: "totp_registrations", Key: "id", Owner: "member_id", ID: "id", Value: "sealed_codes"},
	auth.SealedPassword:      {Table: "passwords", Key: "member_id", Owner: "member_id", ID: "id", Value: "sealed"},
	auth.SealedWebhookSecret: {Table: "webhooks", Key: "id", Owner: "project_id", ID: "id", Value: "sealed_secret"},
}

// Lookup returns where name lives, or an error for a name this package does not know.
func Lookup(name auth.SealedColumn) (Column, error) {
	c, ok := columns[name]
	if !ok {
		return Column{}, fmt.Errorf("unknown sealed column %q", name)
	}
	return c, nil
}

// All returns every sealed column by name.
func All() map[auth.SealedColumn]Column { return maps.Clone(columns) }
