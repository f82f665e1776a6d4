package main

import (
	"context"
	"fmt"
	"io"
)

const migrateUsage = `Usage: sparekey migrate [--db sqlite:PATH|postgres://user:password@host:port/database]

Applies the database migrations this binary carries. serve applies them by itself on SQLite; on
PostgreSQL it refuses a schema of another version unless given --migrate. Replicas migrating at
once are safe: each migration is applied once, under a lock.

Flags (each also read from its SPAREKEY_* environment twin):
  --db sqlite:PATH|postgres://...  database (SPAREKEY_DB)
  --db-statement-timeout D         PostgreSQL: cancel statements running longer (default 10s)

Example:
  sparekey migrate --db postgres://sparekey@db:5432/sparekey
`

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f storageFlags
	fs := newFlagSet("migrate", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, migrateUsage) }
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	db, err := f.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer db.Close()
	v, _, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database schema at version %d\n", v)
	return nil
}
