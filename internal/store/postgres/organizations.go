package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sparekey/sparekey/internal/auth"
)

const projectColumns = `id, secret_digest, sealed_pepper, created_at`

func scanProject(r scanner) (auth.Project, error) {
	var (
		p       auth.Project
		created pgtype.Timestamptz
	)
	if err := r.Scan(&p.ID, &p.SecretDigest, &p.SealedPepper, &created); err != nil {
		return auth.Project{}, err
	}
	p.CreatedAt = fromTS(created)
	return p, nil
}

func (db *DB) CreateProject(ctx context.Context, p auth.Project, key auth.SigningKey) error {
	jwk, err := json.Marshal(key.JWK)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *txn) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO projects (`+projectColumns+`) VALUES ($1, $2, $3, $4)`,
			p.ID, p.SecretDigest, p.SealedPepper, ts(p.CreatedAt))
		b.Queue(`INSERT INTO signing_keys (kid, project_id, sealed_private_key, jwk, created_at) VALUES ($1, $2, $3, $4, $5)`,
			key.KID, p.ID, key.SealedPrivateKey, jwk, ts(key.CreatedAt))
		return tx.commitWith(ctx, b)
	})
}

func (db *DB) Project(ctx context.Context, id string) (auth.Project, error) {
	if !storable(id) {
		return auth.Project{}, auth.ErrProjectNotFound
	}
	p, err := scanProject(db.pool.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Project{}, auth.ErrProjectNotFound
	}
	return p, err
}

func (db *DB) Projects(ctx context.Context) ([]auth.Project, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY created_at, id`)
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
	if !storable(projectID) {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT kid, sealed_private_key, jwk, created_at FROM signing_keys WHERE project_id = $1 ORDER BY created_at DESC, kid DESC`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auth.SigningKey
	for rows.Next() {
		var (
			k       = auth.SigningKey{ProjectID: projectID}
			jwk     []byte
			created pgtype.Timestamptz
		)
		if err := rows.Scan(&k.KID, &k.SealedPrivateKey, &jwk, &created); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(jwk, &k.JWK); err != nil {
			return nil, err
		}
		k.CreatedAt = fromTS(created)
		out = append(out, k)
	}
	return out, rows.Err()
}

const orgColumns = `o.id, o.project_id, o.name, o.slug, o.external_id, o.settings, o.created_at, o.updated_at`

func scanOrganization(r scanner) (auth.Organization, error) {
	var (
		o                auth.Organization
		extID            pgtype.Text
		settings         []byte
		created, updated pgtype.Timestamptz
	)
	if err := r.Scan(&o.ID, &o.ProjectID, &o.Name, &o.Slug, &extID, &settings, &created, &updated); err != nil {
		return auth.Organization{}, err
	}
	if err := json.Unmarshal(settings, &o.OrganizationSettings); err != nil {
		return auth.Organization{}, err
	}
	o.ExternalID = extID.String
	o.CreatedAt, o.UpdatedAt = fromTS(created), fromTS(updated)
	return o, nil
}

// CreateOrganization is one INSERT: the unique constraints decide a race for a slug or an
// external id, and the loser's violation becomes the domain error.
func (db *DB) CreateOrganization(ctx context.Context, o auth.Organization) error {
	settings, err := json.Marshal(o.OrganizationSettings)
	if err != nil {
		return err
	}
	return db.retry(ctx, func() error {
		_, err := db.pool.Exec(ctx, `INSERT INTO organizations (id, project_id, name, name_folded, slug, external_id, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			o.ID, o.ProjectID, o.Name, auth.FoldCase(o.Name), o.Slug, nullString(o.ExternalID), settings, ts(o.CreatedAt), ts(o.UpdatedAt))
		return err
	})
}

// organizationByRef resolves ref as an id, then a slug, then an external id, in one round trip:
// each branch is one index probe, and the rank keeps the first kind that matches.
const organizationByRef = `SELECT ` + orgColumns + ` FROM (
	SELECT 1 AS rank, * FROM organizations WHERE project_id = $1 AND id = $2
	UNION ALL SELECT 2, * FROM organizations WHERE project_id = $1 AND slug = $2
	UNION ALL SELECT 3, * FROM organizations WHERE project_id = $1 AND external_id = $2
) o ORDER BY o.rank LIMIT 1`

func (db *DB) Organization(ctx context.Context, projectID, ref string) (auth.Organization, error) {
	if !storable(projectID, ref) {
		return auth.Organization{}, auth.ErrOrganizationNotFound
	}
	o, err := scanOrganization(db.pool.QueryRow(ctx, organizationByRef, projectID, ref))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Organization{}, auth.ErrOrganizationNotFound
	}
	return o, err
}

func (db *DB) UpdateOrganization(ctx context.Context, projectID, id string, apply func(*auth.Organization) error) (auth.Organization, error) {
	if !storable(projectID, id) {
		return auth.Organization{}, auth.ErrOrganizationNotFound
	}
	var out auth.Organization
	err := db.tx(ctx, func(tx *txn) error {
		var o auth.Organization
		b := &pgx.Batch{}
		b.Queue(`SELECT `+orgColumns+` FROM organizations o WHERE o.project_id = $1 AND o.id = $2 FOR UPDATE`, projectID, id).QueryRow(func(row pgx.Row) error {
			var err error
			o, err = scanOrganization(row)
			if errors.Is(err, pgx.ErrNoRows) {
				return tx.refuse(auth.ErrOrganizationNotFound)
			}
			return err
		})
		if err := tx.send(ctx, b); err != nil {
			return err
		}
		if err := apply(&o); err != nil {
			return err
		}
		settings, err := json.Marshal(o.OrganizationSettings)
		if err != nil {
			return err
		}
		b = &pgx.Batch{}
		b.Queue(`UPDATE organizations SET name = $1, name_folded = $2, slug = $3, external_id = $4, settings = $5, updated_at = $6 WHERE id = $7`,
			o.Name, auth.FoldCase(o.Name), o.Slug, nullString(o.ExternalID), settings, ts(o.UpdatedAt), o.ID)
		if err := tx.commitWith(ctx, b); err != nil {
			return err
		}
		out = o
		return nil
	})
	return out, err
}

func (db *DB) DeleteOrganization(ctx context.Context, projectID, id string) error {
	if !storable(projectID, id) {
		return auth.ErrOrganizationNotFound
	}
	return db.retry(ctx, func() error {
		tag, err := db.pool.Exec(ctx, `DELETE FROM organizations WHERE project_id = $1 AND id = $2`, projectID, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return auth.ErrOrganizationNotFound
		}
		return nil
	})
}

// searchQuery builds the WHERE clause of a search with numbered parameters.
type searchQuery struct {
	args []any
}

func (q *searchQuery) arg(v any) string {
	q.args = append(q.args, v)
	return fmt.Sprintf("$%d", len(q.args))
}

// jsonArray yields the text items of one of the settings' string lists; a null list (Go's nil
// slice) has none, as SQLite's json_each has for null.
func jsonArray(key string) string {
	return `jsonb_array_elements_text(CASE WHEN jsonb_typeof(o.settings -> '` + key + `') = 'array' THEN o.settings -> '` + key + `' ELSE '[]' END)`
}

// condition renders one validated filter. Values holding a NUL cannot equal or be part of a
// stored value (PostgreSQL stores none), so they are dropped rather than sent.
func (q *searchQuery) condition(f auth.OrganizationFilter) string {
	values := make([]string, 0, len(f.Values))
	for _, v := range f.Values {
		if storable(v) {
			values = append(values, v)
		}
	}
	switch f.Name {
	case auth.FilterOrganizationIDs, auth.FilterOrganizationSlugs, auth.FilterMemberEmails, auth.FilterAllowedDomains, auth.FilterClaimedEmailDomains:
		if len(values) == 0 {
			return "FALSE" // an empty list matches nothing
		}
	case auth.FilterSlugFuzzy, auth.FilterNameFuzzy, auth.FilterMemberEmailFuzzy, auth.FilterAllowedDomainFuzzy:
		if !storable(f.Value) {
			return "FALSE"
		}
	}
	switch f.Name {
	case auth.FilterOrganizationIDs:
		return "o.id = ANY(" + q.arg(values) + "::text[])"
	case auth.FilterOrganizationSlugs:
		return "o.slug = ANY(" + q.arg(values) + "::text[])"
	case auth.FilterSlugFuzzy:
		return "strpos(lower(o.slug), " + q.arg(f.Value) + ") > 0"
	case auth.FilterNameFuzzy:
		return "strpos(o.name_folded, " + q.arg(f.Value) + ") > 0"
	case auth.FilterMemberEmails:
		return "EXISTS (SELECT 1 FROM members m WHERE m.organization_id = o.id AND m.email = ANY(" + q.arg(values) + "::text[]))"
	case auth.FilterMemberEmailFuzzy:
		return "EXISTS (SELECT 1 FROM members m WHERE m.organization_id = o.id AND strpos(m.email, " + q.arg(f.Value) + ") > 0)"
	case auth.FilterAllowedDomains:
		return "EXISTS (SELECT 1 FROM " + jsonArray("email_allowed_domains") + " j(v) WHERE j.v = ANY(" + q.arg(values) + "::text[]))"
	case auth.FilterClaimedEmailDomains:
		return "EXISTS (SELECT 1 FROM " + jsonArray("claimed_email_domains") + " j(v) WHERE j.v = ANY(" + q.arg(values) + "::text[]))"
	case auth.FilterAllowedDomainFuzzy:
		return "EXISTS (SELECT 1 FROM " + jsonArray("email_allowed_domains") + " j(v) WHERE strpos(j.v, " + q.arg(f.Value) + ") > 0)"
	case auth.FilterMatchAll:
		return "TRUE"
	}
	return "FALSE" // FilterMatchNone, and anything the domain did not validate
}

// SearchOrganizations counts the matches and reads one page in one round trip.
func (db *DB) SearchOrganizations(ctx context.Context, projectID string, q auth.OrganizationQuery) (auth.OrganizationPage, error) {
	var (
		sq    searchQuery
		where = "o.project_id = " + sq.arg(projectID)
		page  auth.OrganizationPage
	)
	if len(q.Filters) > 0 {
		conds := make([]string, len(q.Filters))
		for i, f := range q.Filters {
			conds[i] = "(" + sq.condition(f) + ")"
		}
		op := " AND "
		if q.Operator == "OR" {
			op = " OR "
		}
		where += " AND (" + strings.Join(conds, op) + ")"
	}
	countArgs := append([]any(nil), sq.args...)
	countWhere := where
	if q.After != nil {
		if !storable(q.After.ID) {
			// No cursor sparekey issued holds such an id.
			return page, auth.ErrInvalidRequestValue
		}
		where += " AND (o.created_at, o.id) > (" + sq.arg(at(q.After.CreatedAt)) + ", " + sq.arg(q.After.ID) + ")"
	}
	limit := sq.arg(q.Limit + 1)

	page.Organizations = []auth.Organization{}
	b := &pgx.Batch{}
	b.Queue(`SELECT count(*) FROM organizations o WHERE `+countWhere, countArgs...).QueryRow(func(row pgx.Row) error {
		return row.Scan(&page.Total)
	})
	b.Queue(`SELECT `+orgColumns+` FROM organizations o WHERE `+where+` ORDER BY o.created_at, o.id LIMIT `+limit, sq.args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			o, err := scanOrganization(rows)
			if err != nil {
				return err
			}
			page.Organizations = append(page.Organizations, o)
		}
		return rows.Err()
	})
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return auth.OrganizationPage{}, err
	}
	if len(page.Organizations) > q.Limit {
		page.Organizations, page.More = page.Organizations[:q.Limit], true
	}
	return page, nil
}
