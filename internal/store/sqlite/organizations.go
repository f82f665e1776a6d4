package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"github.com/sparekey/sparekey/internal/auth"
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

const projectColumns = `id, secret_digest, sealed_pepper, created_at`

func scanProject(r scanner) (auth.Project, error) {
	var (
		p       auth.Project
		created sql.NullInt64
	)
	if err := r.Scan(&p.ID, &p.SecretDigest, &p.SealedPepper, &created); err != nil {
		return auth.Project{}, err
	}
	p.CreatedAt = fromUnix(created)
	return p, nil
}

func (db *DB) CreateProject(ctx context.Context, p auth.Project, key auth.SigningKey) error {
	jwk, err := json.Marshal(key.JWK)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *txn) error {
		if _, err := tx.exec(ctx, `INSERT INTO projects (`+projectColumns+`) VALUES (?, ?, ?, ?)`,
			p.ID, p.SecretDigest, p.SealedPepper, unix(p.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO signing_keys (kid, project_id, sealed_private_key, jwk, created_at) VALUES (?, ?, ?, ?, ?)`,
			key.KID, p.ID, key.SealedPrivateKey, string(jwk), unix(key.CreatedAt))
		return err
	})
}

func (db *DB) Project(ctx context.Context, id string) (auth.Project, error) {
	p, err := scanProject(db.read.queryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Project{}, auth.ErrProjectNotFound
	}
	return p, err
}

func (db *DB) Projects(ctx context.Context) ([]auth.Project, error) {
	rows, err := db.read.query(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auth.Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (db *DB) SigningKeys(ctx context.Context, projectID string) ([]auth.SigningKey, error) {
	rows, err := db.read.query(ctx, `SELECT kid, sealed_private_key, jwk, created_at FROM signing_keys WHERE project_id = ? ORDER BY created_at DESC, kid DESC`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auth.SigningKey
	for rows.Next() {
		var (
			k       = auth.SigningKey{ProjectID: projectID}
			jwk     string
			created sql.NullInt64
		)
		if err := rows.Scan(&k.KID, &k.SealedPrivateKey, &jwk, &created); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(jwk), &k.JWK); err != nil {
			return nil, err
		}
		k.CreatedAt = fromUnix(created)
		out = append(out, k)
	}
	return out, rows.Err()
}

const orgColumns = `o.id, o.project_id, o.name, o.slug, o.external_id, o.settings, o.created_at, o.updated_at`

func scanOrganization(r scanner, extra ...any) (auth.Organization, error) {
	var (
		o                auth.Organization
		extID            sql.NullString
		settings         string
		created, updated sql.NullInt64
	)
	dest := append([]any{&o.ID, &o.ProjectID, &o.Name, &o.Slug, &extID, &settings, &created, &updated}, extra...)
	if err := r.Scan(dest...); err != nil {
		return auth.Organization{}, err
	}
	if err := json.Unmarshal([]byte(settings), &o.OrganizationSettings); err != nil {
		return auth.Organization{}, err
	}
	o.ExternalID = extID.String
	o.CreatedAt, o.UpdatedAt = fromUnix(created), fromUnix(updated)
	return o, nil
}

// checkOrganizationUnique finds another organization holding o's slug or external id. The
// single writer makes check-then-write race-free.
func checkOrganizationUnique(ctx context.Context, tx *txn, o *auth.Organization) error {
	var n int
	if err := tx.queryRow(ctx, `SELECT count(*) FROM organizations WHERE project_id = ? AND slug = ? AND id <> ?`, o.ProjectID, o.Slug, o.ID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return auth.ErrOrganizationSlugUsed
	}
	if o.ExternalID != "" {
		if err := tx.queryRow(ctx, `SELECT count(*) FROM organizations WHERE project_id = ? AND external_id = ? AND id <> ?`, o.ProjectID, o.ExternalID, o.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return auth.ErrOrganizationExtIDUsed
		}
	}
	return nil
}

func (db *DB) CreateOrganization(ctx context.Context, o auth.Organization) error {
	settings, err := json.Marshal(o.OrganizationSettings)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *txn) error {
		if err := checkOrganizationUnique(ctx, tx, &o); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO organizations (id, project_id, name, name_folded, slug, external_id, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.ProjectID, o.Name, auth.FoldCase(o.Name), o.Slug, nullString(o.ExternalID), string(settings), unix(o.CreatedAt), unix(o.UpdatedAt))
		return err
	})
}

// Organization tries the id, then the slug, then the external id: the common case, an id, costs
// one probe.
func (db *DB) Organization(ctx context.Context, projectID, ref string) (auth.Organization, error) {
	return organization(ctx, db.read, projectID, ref)
}

func organization(ctx context.Context, q querier, projectID, ref string) (auth.Organization, error) {
	for _, where := range []string{`o.id = ?`, `o.slug = ?`, `o.external_id = ?`} {
		o, err := scanOrganization(q.queryRow(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.project_id = ? AND `+where, projectID, ref))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		return o, err
	}
	return auth.Organization{}, auth.ErrOrganizationNotFound
}

func (db *DB) UpdateOrganization(ctx context.Context, projectID, id string, apply func(*auth.Organization) error) (auth.Organization, error) {
	var out auth.Organization
	err := db.tx(ctx, func(tx *txn) error {
		o, err := scanOrganization(tx.queryRow(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.project_id = ? AND o.id = ?`, projectID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return auth.ErrOrganizationNotFound
		}
		if err != nil {
			return err
		}
		if err := apply(&o); err != nil {
			return err
		}
		if err := checkOrganizationUnique(ctx, tx, &o); err != nil {
			return err
		}
		settings, err := json.Marshal(o.OrganizationSettings)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE organizations SET name = ?, name_folded = ?, slug = ?, external_id = ?, settings = ?, updated_at = ? WHERE id = ?`,
			o.Name, auth.FoldCase(o.Name), o.Slug, nullString(o.ExternalID), string(settings), unix(o.UpdatedAt), o.ID); err != nil {
			return err
		}
		out = o
		return nil
	})
	return out, err
}

func (db *DB) DeleteOrganization(ctx context.Context, projectID, id string) error {
	return db.tx(ctx, func(tx *txn) error {
		res, err := tx.exec(ctx, `DELETE FROM organizations WHERE project_id = ? AND id = ?`, projectID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return auth.ErrOrganizationNotFound
		}
		return nil
	})
}

// searchCondition renders one validated filter as SQL.
func searchCondition(f auth.OrganizationFilter) (string, []any) {
	in := func(n int) string { return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")" }
	values := func() []any {
		out := make([]any, len(f.Values))
		for i, v := range f.Values {
			out[i] = v
		}
		return out
	}
	if len(f.Values) == 0 {
		switch f.Name {
		case auth.FilterOrganizationIDs, auth.FilterOrganizationSlugs, auth.FilterMemberEmails, auth.FilterAllowedDomains, auth.FilterClaimedEmailDomains:
			return "0", nil // an empty list matches nothing
		}
	}
	switch f.Name {
	case auth.FilterOrganizationIDs:
		return "o.id IN " + in(len(f.Values)), values()
	case auth.FilterOrganizationSlugs:
		return "o.slug IN " + in(len(f.Values)), values()
	case auth.FilterSlugFuzzy:
		return "instr(lower(o.slug), ?) > 0", []any{f.Value}
	case auth.FilterNameFuzzy:
		return "instr(o.name_folded, ?) > 0", []any{f.Value}
	case auth.FilterMemberEmails:
		return "EXISTS (SELECT 1 FROM members m WHERE m.organization_id = o.id AND m.email IN " + in(len(f.Values)) + ")", values()
	case auth.FilterMemberEmailFuzzy:
		return "EXISTS (SELECT 1 FROM members m WHERE m.organization_id = o.id AND instr(m.email, ?) > 0)", []any{f.Value}
	case auth.FilterAllowedDomains:
		return "EXISTS (SELECT 1 FROM json_each(o.settings, '$.email_allowed_domains') j WHERE j.value IN " + in(len(f.Values)) + ")", values()
	case auth.FilterClaimedEmailDomains:
		return "EXISTS (SELECT 1 FROM json_each(o.settings, '$.claimed_email_domains') j WHERE j.value IN " + in(len(f.Values)) + ")", values()
	case auth.FilterAllowedDomainFuzzy:
		return "EXISTS (SELECT 1 FROM json_each(o.settings, '$.email_allowed_domains') j WHERE instr(j.value, ?) > 0)", []any{f.Value}
	case auth.FilterMatchAll:
		return "1", nil
	}
	return "0", nil // FilterMatchNone, and anything the domain did not validate
}

func (db *DB) SearchOrganizations(ctx context.Context, projectID string, q auth.OrganizationQuery) (auth.OrganizationPage, error) {
	where, args := "o.project_id = ?", []any{projectID}
	if len(q.Filters) > 0 {
		conds := make([]string, len(q.Filters))
		for i, f := range q.Filters {
			c, a := searchCondition(f)
			conds[i] = "(" + c + ")"
			args = append(args, a...)
		}
		op := " AND "
		if q.Operator == "OR" {
			op = " OR "
		}
		where += " AND (" + strings.Join(conds, op) + ")"
	}
	var page auth.OrganizationPage
	// Search is rare and its SQL varies with the query, so it is not worth a prepared statement.
	if err := db.read.db.QueryRowContext(ctx, `SELECT count(*) FROM organizations o WHERE `+where, args...).Scan(&page.Total); err != nil {
		return page, err
	}
	if q.After != nil {
		where += " AND (o.created_at > ? OR (o.created_at = ? AND o.id > ?))"
		args = append(args, q.After.CreatedAt.Unix(), q.After.CreatedAt.Unix(), q.After.ID)
	}
	args = append(args, q.Limit+1)
	rows, err := db.read.db.QueryContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE `+where+` ORDER BY o.created_at, o.id LIMIT ?`, args...)
	if err != nil {
		return page, err
	}
	defer rows.Close()
	page.Organizations = []auth.Organization{}
	for rows.Next() {
		o, err := scanOrganization(rows)
		if err != nil {
			return page, err
		}
		page.Organizations = append(page.Organizations, o)
	}
	if len(page.Organizations) > q.Limit {
		page.Organizations, page.More = page.Organizations[:q.Limit], true
	}
	return page, rows.Err()
}
