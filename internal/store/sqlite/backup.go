package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database at path to dst, a file that must not exist
// yet, while other connections (a running server, in this process or another) keep reading and
// writing it.
//
// It uses VACUUM INTO, not SQLite's online backup API. VACUUM INTO is one statement, so it reads
// the whole database inside one read transaction: in WAL mode that is one snapshot, taken
// without blocking the server's writer, and every committed transaction is either wholly in the
// copy or wholly absent. The backup API copies pages in steps and starts over whenever another
// connection writes between two steps, so under steady load it only finishes when asked to copy
// everything in one step, which is the same single read transaction, reached through the
// driver's raw connection rather than SQL. VACUUM INTO also leaves a compact file, with no free
// pages and nothing in a WAL beside it: a single file to move, and to open as it is.
//
// The copy is written under a temporary name in dst's folder, synced, checked with SQLite's
// integrity check and only then renamed to dst, so dst never names a partial or damaged copy.
func Backup(ctx context.Context, path, dst string) (err error) {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("the database to back up: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("%s already exists; give a new file name", dst)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".partial-*")
	if err != nil {
		return fmt.Errorf("create the backup file: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close() // VACUUM INTO accepts an empty file, and the name is now ours
	defer func() {
		if err != nil {
			os.Remove(tmpPath)
		}
	}()

	src, err := sql.Open("sqlite", readOnlyDSN(path))
	if err != nil {
		return err
	}
	_, err = src.ExecContext(ctx, `VACUUM INTO ?`, tmpPath)
	src.Close()
	if err != nil {
		return fmt.Errorf("copy %s: %w", path, err)
	}
	if err := syncFile(tmpPath); err != nil {
		return err
	}
	if err := checkCopy(ctx, tmpPath); err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("%s appeared while the backup was written; the backup was not kept", dst)
	}
	if err := os.Rename(tmpPath, dst); err != nil {
		return err
	}
	return syncFile(dir) // the rename itself survives a power cut
}

// Backup is the package function for an open store: a copy of the database it serves.
func (db *DB) Backup(ctx context.Context, dst string) error { return Backup(ctx, db.path, dst) }

// checkCopy runs the integrity and foreign-key checks on a finished copy.
func checkCopy(ctx context.Context, path string) error {
	c, err := OpenReadOnly(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.IntegrityCheck(ctx); err != nil {
		return fmt.Errorf("the copy failed its check, and was not kept: %w", err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// OpenReadOnly opens an existing database for reading only: it creates nothing, writes nothing
// (Close's checkpoint is refused by SQLite on a read-only connection and ignored), and leaves the
// schema as it is. It serves commands that inspect a database a server may be running on.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	open := func(conns int) (*sql.DB, error) {
		d, err := sql.Open("sqlite", readOnlyDSN(path))
		if err != nil {
			return nil, err
		}
		d.SetMaxOpenConns(conns)
		return d, nil
	}
	w, err := open(1)
	if err != nil {
		return nil, err
	}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r, err := open(4)
	if err != nil {
		w.Close()
		return nil, err
	}
	return newDB(path, w, r, nil), nil
}
