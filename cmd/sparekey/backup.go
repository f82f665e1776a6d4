package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/sparekey/sparekey/internal/store/sqlite"
)

const backupUsage = `Usage: sparekey backup --to FILE [--db sqlite:PATH]

Writes a consistent copy of a SQLite database to FILE, a new file, while sparekey serve keeps
running on it: the copy holds every transaction committed before it began and nothing of the
ones after, so a code is never spent in it without its session. The database is read through a
read-only connection (SQLite's VACUUM INTO), which never blocks the server's writes. The copy is
checked with SQLite's integrity check before it gets its name; FILE never names a partial copy.

The master key is not in the database: keep it (SPAREKEY_MASTER_KEY, --master-key-file, or the
master.key file beside a development database) safe and apart from the backups. A copy cannot be
read without it, and a key stored beside its backup protects nothing.

To restore: stop the server, move the database file away together with its -wal and -shm files,
copy the backup to the database's path, and start the server with the same master key.

PostgreSQL: use pg_dump (pg_dump --format=custom --file=FILE URL) and pg_restore.

Flags (each also read from its SPAREKEY_* environment twin):
  --db sqlite:PATH      the database to copy (SPAREKEY_DB or SPAREKEY_DB_FILE;
                        default sqlite:./sparekey-data/sparekey.db)
  --to FILE             the backup file to create; it must not exist (SPAREKEY_TO)

Example:
  sparekey backup --db sqlite:/var/lib/sparekey/sparekey.db --to /backups/sparekey-2026-03-01.db
`

// backupCommand is `sparekey backup`.
func backupCommand() command {
	return command{name: "backup", summary: "copy a running SQLite database to a backup file", usage: backupUsage, run: backup}
}

func backup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var db, to string
	fs := newFlagSet("backup", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, backupUsage) }
	fs.StringVar(&db, "db", defaultDB, "the SQLite database to copy")
	fs.StringVar(&to, "to", "", "the backup file to create")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if to == "" {
		return settingError("to", "is required: the backup file to create")
	}
	if isPostgres(db) {
		return usageError{"sparekey backup copies SQLite databases; back up PostgreSQL with pg_dump, e.g. " +
			"pg_dump --format=custom --file=sparekey.dump \"$DATABASE_URL\", and restore with pg_restore"}
	}
	src := storageFlags{db: db}
	path, err := src.sqlitePath()
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("--db %s: %w", displayDB(db), err) // never create an empty database to back up
	}
	if err := sqlite.Backup(ctx, path, to); err != nil {
		return err
	}
	info, err := os.Stat(to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%d bytes, integrity check ok)\n", path, to, info.Size())
	return nil
}
