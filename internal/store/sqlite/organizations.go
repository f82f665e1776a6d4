package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

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
		key.ProjectID = p.ID
		return insertSigningKey(ctx, tx, key, string(jwk))
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
	rows, err := db.read.query(ctx, `SELECT kid, sealed_private_key, jwk, created_at, activates_at, retires_at FROM signing_keys WHERE project_id = ? ORDER BY created_at DESC, kid DESC`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auth.SigningKey
	for rows.Next() {
		var (
			k                           = auth.SigningKey{ProjectID: projectID}
			jwk                         string
			created, activates, retires sql.NullInt64
		)
		if err := rows.Scan(&k.KID, &k.SealedPrivateKey, &jwk, &created, &activates, &retires); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(jwk), &k.JWK); err != nil {
			return nil, err
		}
		k.CreatedAt, k.ActivatesAt, k.RetiresAt = fromUnix(created), fromUnix(activates), fromUnix(retires)
		out = append(out, k)
	}
	return out, rows.Err()
}

const orgColumns = `o.id, o.project_id, o.name, o.slug, o.external_id, o.settings, o.trusted_metadata, o.created_at, o.updated_at`

func scanOrganization(r scanner, extra ...any) (auth.Organization, error) {
	var (
		o                  auth.Organization
		extID              sql.NullString
		settings, metadata string
		created, updated   sql.NullInt64
	)
	dest := append([]any{&o.ID, &o.ProjectID, &o.Name, &o.Slug, &extID, &settings, &metadata, &created, &updated}, extra...)
	if err := r.Scan(dest...); err != nil {
		return auth.Organization{}, err
	}
	if err := decodeStored(settings, &o.OrganizationSettings); err != nil {
		return auth.Organization{}, err
	}
	if err := decodeStored(metadata, &o.TrustedMetadata); err != nil {
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

// organizationDocuments encodes an organization's two JSON columns: the settings, and apart
// from them the trusted metadata (see auth.OrganizationSettings).
func organizationDocuments(o *auth.Organization) (settings, metadata string, err error) {
	s, err := json.Marshal(o.OrganizationSettings)
	if err != nil {
		return "", "", err
	}
	m, err := json.Marshal(o.TrustedMetadata)
	if err != nil {
		return "", "", err
	}
	return string(s), string(m), nil
}

func (db *DB) CreateOrganization(ctx context.Context, o auth.Organization) error {
	settings, metadata, err := organizationDocuments(&o)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *txn) error {
		if err := checkOrganizationUnique(ctx, tx, &o); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO organizations (id, project_id, name, name_folded, slug, external_id, settings, trusted_metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.ProjectID, o.Name, auth.FoldCase(o.Name), o.Slug, nullString(o.ExternalID), settings, metadata, unix(o.CreatedAt), unix(o.UpdatedAt))
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
		settings, metadata, err := organizationDocuments(&o)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE organizations SET name = ?, name_folded = ?, slug = ?, external_id = ?, settings = ?, trusted_metadata = ?, updated_at = ? WHERE id = ?`,
			o.Name, auth.FoldCase(o.Name), o.Slug, nullString(o.ExternalID), settings, metadata, unix(o.UpdatedAt), o.ID); err != nil {
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

// Search builds a statement whose size does not grow with the request: the operands are grouped
// by filter name, and each group becomes one condition with at most one parameter, a JSON array
// that SQL reads back with json_each. So neither a long list nor thousands of operands run into
// SQLite's limits on bound parameters (32766) and expression depth (1000), and the planner
// sees at most one condition per filter name.

// searchGroup is a filter group this store renders.
type searchGroup struct{ *auth.FilterGroup }

// bindable keeps the values JSON carries unchanged: encoding/json would replace the bytes of
// invalid UTF-8, and the result might match. The value itself matches nothing, equal or part:
// every stored value came through the JSON API, so it is valid UTF-8.
func bindable(values []string) []string {
	out := make([]string, 0, len(values))
	for _, v := range values {
		if utf8.ValidString(v) {
			out = append(out, v)
		}
	}
	return out
}

// jsonArg binds v as one parameter, its JSON text.
func jsonArg(v any) ([]any, error) {
	b, err := json.Marshal(v)
	return []any{string(b)}, err
}

// listMatch is the condition that o has a value of the list filter among the values of src, a
// json_each table. IN over json_each(?) is built once per statement, as a temporary index.
func listMatch(name, src string) string {
	in := "IN (SELECT value FROM " + src + ")"
	switch name {
	case auth.FilterOrganizationIDs:
		return "o.id " + in
	case auth.FilterOrganizationSlugs:
		return "o.slug " + in
	case auth.FilterMemberEmails:
		return "EXISTS (SELECT 1 FROM members m WHERE m.organization_id = o.id AND m.email " + in + ")"
	case auth.FilterAllowedDomains:
		return "EXISTS (SELECT 1 FROM json_each(o.settings, '$.email_allowed_domains') d WHERE d.value " + in + ")"
	}
	return "EXISTS (SELECT 1 FROM json_each(o.settings, '$.claimed_email_domains') d WHERE d.value " + in + ")"
}

// substringMatch is the condition that o has a value of the substring filter containing sub, an
// SQL expression.
func substringMatch(name, sub string) string {
	switch name {
	case auth.FilterSlugFuzzy:
		return "instr(lower(o.slug), " + sub + ") > 0"
	case auth.FilterNameFuzzy:
		return "instr(o.name_folded, " + sub + ") > 0"
	case auth.FilterMemberEmailFuzzy:
		return "EXISTS (SELECT 1 FROM members m WHERE m.organization_id = o.id AND instr(m.email, " + sub + ") > 0)"
	}
	return "EXISTS (SELECT 1 FROM json_each(o.settings, '$.email_allowed_domains') d WHERE instr(d.value, " + sub + ") > 0)"
}

// condition renders the group as one condition: every operand matches (and) or some does.
func (g *searchGroup) condition(and bool) (string, []any, error) {
	switch g.Name {
	case auth.FilterOrganizationIDs, auth.FilterOrganizationSlugs:
		// An organization has one id and one slug: it is in every list when it is in their
		// intersection.
		if and {
			return listCondition(g.Name, g.Intersection(bindable))
		}
		return listCondition(g.Name, g.Union(bindable))
	case auth.FilterMemberEmails, auth.FilterAllowedDomains, auth.FilterClaimedEmailDomains:
		if !and || len(g.Lists) == 1 {
			return listCondition(g.Name, g.Union(bindable))
		}
		// Every list must hold one of the organization's values, not necessarily the same one.
		lists := make([][]string, len(g.Lists))
		for i, l := range g.Lists {
			if lists[i] = bindable(l); len(lists[i]) == 0 {
				return "0", nil, nil
			}
		}
		args, err := jsonArg(lists)
		return "NOT EXISTS (SELECT 1 FROM json_each(?) op WHERE NOT " + listMatch(g.Name, "json_each(op.value)") + ")", args, err
	case auth.FilterSlugFuzzy, auth.FilterNameFuzzy, auth.FilterMemberEmailFuzzy, auth.FilterAllowedDomainFuzzy:
		values := bindable(g.Values)
		switch {
		case and && len(values) < len(g.Values), len(values) == 0:
			return "0", nil, nil
		case len(values) == 1:
			return substringMatch(g.Name, "?"), []any{values[0]}, nil
		}
		args, err := jsonArg(values)
		if and {
			return "NOT EXISTS (SELECT 1 FROM json_each(?) s WHERE NOT " + substringMatch(g.Name, "s.value") + ")", args, err
		}
		return "EXISTS (SELECT 1 FROM json_each(?) s WHERE " + substringMatch(g.Name, "s.value") + ")", args, err
	case auth.FilterMatchAll:
		return "1", nil, nil
	}
	return "0", nil, nil // FilterMatchNone, and anything the domain did not validate
}

// listCondition matches an organization with a value among values; none matches nothing.
func listCondition(name string, values []string) (string, []any, error) {
	if len(values) == 0 {
		return "0", nil, nil
	}
	args, err := jsonArg(values)
	return listMatch(name, "json_each(?)"), args, err
}

func (db *DB) SearchOrganizations(ctx context.Context, projectID string, q auth.OrganizationQuery) (auth.OrganizationPage, error) {
	where, args := "o.project_id = ?", []any{projectID}
	if len(q.Filters) > 0 {
		and, op := q.Operator != "OR", " AND "
		if !and {
			op = " OR "
		}
		var conds []string
		for _, fg := range auth.GroupFilters(q.Filters) {
			g := &searchGroup{fg}
			c, a, err := g.condition(and)
			if err != nil {
				return auth.OrganizationPage{}, err
			}
			conds = append(conds, "("+c+")")
			args = append(args, a...)
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
