package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/sparekey/sparekey/internal/auth"
)

const projectCreateUsage = `Usage: sparekey project create [--db sqlite:PATH|postgres://...] [--json]

Creates a project and prints its id and secret. The secret is shown only this once.
With --json it prints {"project_id": "...", "secret": "..."}.

On PostgreSQL the master key must be given (--master-key, --master-key-file or their
SPAREKEY_* twins, the same key serve uses), and the schema must be migrated (sparekey migrate,
or --migrate here).

Example:
  sparekey project create --json > project.json
`

func projectCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		f      storageFlags
		asJSON bool
	)
	fs := newFlagSet("project create", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, projectCreateUsage) }
	f.register(fs)
	f.registerMigrate(fs)
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.checkMasterKeySource(); err != nil {
		return err
	}
	store, err := f.openStore(ctx, f.migrate)
	if err != nil {
		return err
	}
	defer store.Close()
	keys, err := f.keyring(ctx, store, stderr)
	if err != nil {
		return err
	}
	svc, err := auth.NewService(store, keys, auth.DefaultConfig(), nil)
	if err != nil {
		return err
	}
	if err := svc.CheckMasterKey(ctx); err != nil {
		return err
	}
	p, sec, err := svc.CreateProject(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"project_id": p.ID, "secret": sec})
	}
	fmt.Fprintf(stdout, "project_id: %s\nsecret:     %s\n", p.ID, sec)
	return nil
}
