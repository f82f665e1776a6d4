package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/sparekey/sparekey/internal/auth"
)

const projectCreateUsage = `Usage: sparekey project create [--db sqlite:PATH] [--json]

Creates a project and prints its id and secret. The secret is shown only this once.
With --json it prints {"project_id": "...", "secret": "..."}.
`

func projectCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		f      storageFlags
		asJSON bool
	)
	fs := newFlagSet("project create", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, projectCreateUsage) }
	f.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	store, err := f.openStore(ctx, true)
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
