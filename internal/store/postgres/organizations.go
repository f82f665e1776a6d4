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
		key.ProjectID = p.ID
		queueInsertSigningKey(b, key, jwk)
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
	rows, err := db.pool.Query(ctx, `SELECT kid, sealed_private_key, jwk, created_at, activates_at, retires_at FROM signing_keys WHERE project_id = $1 ORDER BY created_at DESC, kid DESC`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auth.SigningKey
	for rows.Next() {
		var (
			k                           = auth.SigningKey{ProjectID: projectID}
			jwk                         []byte
			created, activates, retires pgtype.Timestamptz
		)
		if err := rows.Scan(&k.KID, &k.SealedPrivateKey, &jwk, &created, &activates, &retires); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(jwk, &k.JWK); err != nil {
			return nil, err
		}
		k.CreatedAt, k.ActivatesAt, k.RetiresAt = fromTS(created), fromTS(activates), fromTS(retires)
		out = append(out, k)
	}
	return out, rows.Err()
}

const orgColumns = `o.id, o.project_id, o.name, o.slug, o.external_id, o.settings, o.trusted_metadata, o.created_at, o.updated_at`

func scanOrganization(r scanner) (auth.Organization, error) {
	var (
		o                  auth.Organization
		extID              pgtype.Text
		settings, metadata []byte
		created, updated   pgtype.Timestamptz
	)
	if err := r.Scan(&o.ID, &o.ProjectID, &o.Name, &o.Slug, &extID, &settings, &metadata, &created, &updated); err != nil {
		return auth.Organization{}, err
	}
	if err := json.Unmarshal(settings, &o.OrganizationSettings); err != nil {
		return auth.Organization{}, err
	}
	if err := json.Unmarshal(metadata, &o.TrustedMetadata); err != nil {
		return auth.Organization{}, err
	}
	o.ExternalID = extID.String
	o.CreatedAt, o.UpdatedAt = fromTS(created), fromTS(updated)
	return o, nil
}

// organizationDocuments encodes an organization's two JSON columns: the settings, and apart
// from them the trusted metadata (see auth.OrganizationSettings).
func organizationDocuments(o *auth.Organization) (settings, metadata []byte, err error) {
	if settings, err = json.Marshal(o.OrganizationSettings); err != nil {
		return nil, nil, err
	}
	if metadata, err = json.Marshal(o.TrustedMetadata); err != nil {
		return nil, nil, err
	}
	return settings, metadata, nil
}

// CreateOrganization is one INSERT: the unique constraints decide a race for a slug or an
// external id, and the loser's violation becomes the domain error.
func (db *DB) CreateOrganization(ctx context.Context, o auth.Organization) error {
	settings, metadata, err := organizationDocuments(&o)
	if err != nil {
		return err
	}
	return db.retry(ctx, func() error {
		_, err := db.pool.Exec(ctx, `INSERT INTO organizations (id, project_id, name, name_folded, slug, external_id, settings, trusted_metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			o.ID, o.ProjectID, o.Name, auth.FoldCase(o.Name), o.Slug, nullString(o.ExternalID), settings, metadata, ts(o.CreatedAt), ts(o.UpdatedAt))
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
		settings, metadata, err := organizationDocuments(&o)
		if err != nil {
			return err
		}
		b = &pgx.Batch{}
		b.Queue(`UPDATE organizations SET name = $1, name_folded = $2, slug = $3, external_id = $4, settings = $5, trusted_metadata = $6, updated_at = $7 WHERE id = $8`,
			o.Name, auth.FoldCase(o.Name), o.Slug, nullString(o.ExternalID), settings, metadata, ts(o.UpdatedAt), o.ID)
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

// Search builds a statement whose size does not grow with the request: the operands are grouped
// by filter name, and each group becomes one condition with at most one parameter, an array.
// PostgreSQL turns each EXISTS of an AND into a semi-join and plans the joins together, which
// takes seconds at a hundred operands and minutes at a few hundred; grouped, the planner sees at
// most one condition per filter name.

// searchGroup is a filter group this store renders.
type searchGroup struct{ *auth.FilterGroup }

// storableValues keeps the values PostgreSQL can hold; the others (a NUL, invalid UTF-8) can
// neither equal nor be part of a stored value, so they are dropped rather than sent.
func storableValues(values []string) []string {
	out := make([]string, 0, len(values))
	for _, v := range values {
		if storable(v) {
			out = append(out, v)
		}
	}
	return out
}

// listMatch is the condition that o has a value of the list filter among anyOf, a text[]
// expression.
func listMatch(name, anyOf string) string {
	switch name {
	case auth.FilterOrganizationIDs:
		return "o.id = ANY(" + anyOf + ")"
	case auth.FilterOrganizationSlugs:
		return "o.slug = ANY(" + anyOf + ")"
	case auth.FilterMemberEmails:
		return "EXISTS (SELECT 1 FROM members m WHERE m.organization_id = o.id AND m.email = ANY(" + anyOf + "))"
	case auth.FilterAllowedDomains:
		return "EXISTS (SELECT 1 FROM " + jsonArray("email_allowed_domains") + " d(v) WHERE d.v = ANY(" + anyOf + "))"
	}
	return "EXISTS (SELECT 1 FROM " + jsonArray("claimed_email_domains") + " d(v) WHERE d.v = ANY(" + anyOf + "))"
}

// substringMatch is the condition that o has a value of the substring filter containing sub, an
// SQL expression.
func substringMatch(name, sub string) string {
	switch name {
	case auth.FilterSlugFuzzy:
		return "strpos(lower(o.slug), " + sub + ") > 0"
	case auth.FilterNameFuzzy:
		return "strpos(o.name_folded, " + sub + ") > 0"
	case auth.FilterMemberEmailFuzzy:
		return "EXISTS (SELECT 1 FROM members m WHERE m.organization_id = o.id AND strpos(m.email, " + sub + ") > 0)"
	}
	return "EXISTS (SELECT 1 FROM " + jsonArray("email_allowed_domains") + " d(v) WHERE strpos(d.v, " + sub + ") > 0)"
}

// condition renders a group as one condition: every operand matches (and) or some does.
func (q *searchQuery) condition(g *searchGroup, and bool) (string, error) {
	switch g.Name {
	case auth.FilterOrganizationIDs, auth.FilterOrganizationSlugs:
		// An organization has one id and one slug: it is in every list when it is in their
		// intersection.
		if and {
			return q.listCondition(g.Name, g.Intersection(storableValues)), nil
		}
		return q.listCondition(g.Name, g.Union(storableValues)), nil
	case auth.FilterMemberEmails, auth.FilterAllowedDomains, auth.FilterClaimedEmailDomains:
		if !and || len(g.Lists) == 1 {
			return q.listCondition(g.Name, g.Union(storableValues)), nil
		}
		// Every list must hold one of the organization's values, not necessarily the same one.
		lists := make([][]string, len(g.Lists))
		for i, l := range g.Lists {
			if lists[i] = storableValues(l); len(lists[i]) == 0 {
				return "FALSE", nil
			}
		}
		b, err := json.Marshal(lists)
		if err != nil {
			return "", err
		}
		return "NOT EXISTS (SELECT 1 FROM jsonb_array_elements(" + q.arg(b) + "::jsonb) op(list) WHERE NOT " +
			listMatch(g.Name, "ARRAY(SELECT jsonb_array_elements_text(op.list))") + ")", nil
	case auth.FilterSlugFuzzy, auth.FilterNameFuzzy, auth.FilterMemberEmailFuzzy, auth.FilterAllowedDomainFuzzy:
		values := storableValues(g.Values)
		switch {
		case and && len(values) < len(g.Values), len(values) == 0:
			return "FALSE", nil
		case len(values) == 1:
			return substringMatch(g.Name, q.arg(values[0])), nil
		case and:
			return "NOT EXISTS (SELECT 1 FROM unnest(" + q.arg(values) + "::text[]) s(v) WHERE NOT " + substringMatch(g.Name, "s.v") + ")", nil
		}
		return "EXISTS (SELECT 1 FROM unnest(" + q.arg(values) + "::text[]) s(v) WHERE " + substringMatch(g.Name, "s.v") + ")", nil
	case auth.FilterMatchAll:
		return "TRUE", nil
	}
	return "FALSE", nil // FilterMatchNone, and anything the domain did not validate
}

// listCondition matches an organization with a value among values; none matches nothing.
func (q *searchQuery) listCondition(name string, values []string) string {
	if len(values) == 0 {
		return "FALSE"
	}
	return listMatch(name, q.arg(values)+"::text[]")
}

// SearchOrganizations counts the matches and reads one page in one round trip.
func (db *DB) SearchOrganizations(ctx context.Context, projectID string, q auth.OrganizationQuery) (auth.OrganizationPage, error) {
	var (
		sq    searchQuery
		where = "o.project_id = " + sq.arg(projectID)
		page  auth.OrganizationPage
	)
	if len(q.Filters) > 0 {
		and, op := q.Operator != "OR", " AND "
		if !and {
			op = " OR "
		}
		var conds []string
		for _, fg := range auth.GroupFilters(q.Filters) {
			g := &searchGroup{fg}
			c, err := sq.condition(g, and)
			if err != nil {
				return page, err
			}
			conds = append(conds, "("+c+")")
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
