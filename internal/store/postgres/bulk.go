package postgres

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/sparekey/sparekey/internal/auth"
)

var _ auth.BulkLoader = (*DB)(nil)

// LoadEnrolledMembers stores members with their registrations and codes in one transaction, each
// table by COPY: at a million members a statement per row, or even per member, is most of the
// load time. Registration keys are drawn from their identity sequence first, so the codes can
// name them without a RETURNING per member (COPY writes identity values as given).
func (db *DB) LoadEnrolledMembers(ctx context.Context, projectID string, batch []auth.EnrolledMember) error {
	if len(batch) == 0 {
		return nil
	}
	members := make([][]any, len(batch))
	var orgs []string
	for i := range batch {
		m := &batch[i].Member
		if m.ProjectID != projectID {
			return auth.ErrOrganizationNotFound
		}
		if !storable(m.ID, m.OrganizationID, m.EmailAddress, m.ExternalID, m.Status, batch[i].Registration.ID) {
			return auth.ErrInvalidRequestValue
		}
		profile, err := profileJSON(m)
		if err != nil {
			return err
		}
		members[i] = []any{m.ID, m.ProjectID, m.OrganizationID, m.EmailAddress, nullString(m.ExternalID), m.Status, profile,
			m.FailedAttempts, ts(m.LockCreatedAt), ts(m.LockExpiresAt), ts(m.CreatedAt), ts(m.UpdatedAt)}
		orgs = append(orgs, m.OrganizationID)
	}
	slices.Sort(orgs)
	orgs = slices.Compact(orgs)
	return db.retry(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			var found int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM organizations WHERE project_id = $1 AND id = ANY($2)`, projectID, orgs).Scan(&found); err != nil {
				return err
			}
			if found != len(orgs) {
				return auth.ErrOrganizationNotFound
			}
			rows, err := tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('totp_registrations', 'pk')) FROM generate_series(1, $1)`, len(batch))
			if err != nil {
				return err
			}
			pks, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			regs := make([][]any, len(batch))
			var codes [][]any
			for i := range batch {
				r := &batch[i].Registration
				regs[i] = []any{pks[i], r.ID, r.MemberID, r.SealedSecret, r.SealedCodes, r.LastStep, int64(r.UnspentSteps), ts(r.CreatedAt)}
				for _, c := range batch[i].Codes {
					id, err := codeUUID(c.ID)
					if err != nil {
						return err
					}
					codes = append(codes, []any{pks[i], c.MAC, int16(c.Position), id, ts(c.UsedAt)})
				}
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"members"},
				[]string{"id", "project_id", "organization_id", "email", "external_id", "status", "profile", "failed_attempts", "lock_created_at", "lock_expires_at", "created_at", "updated_at"},
				pgx.CopyFromRows(members)); err != nil {
				return translate(err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"totp_registrations"},
				[]string{"pk", "id", "member_id", "sealed_secret", "sealed_codes", "last_step", "unspent_steps", "created_at"},
				pgx.CopyFromRows(regs)); err != nil {
				return translate(err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"recovery_codes"},
				[]string{"registration_pk", "mac", "position", "id", "used_at"},
				pgx.CopyFromRows(codes)); err != nil {
				return translate(err)
			}
			return nil
		})
	})
}

// LoadIntermediateSessions stores intermediate sessions in one transaction, by COPY.
func (db *DB) LoadIntermediateSessions(ctx context.Context, ists []auth.IntermediateSession) error {
	if len(ists) == 0 {
		return nil
	}
	rows := make([][]any, len(ists))
	for i := range ists {
		s := &ists[i]
		if !storable(s.ProjectID, s.OrganizationID, s.MemberID) {
			return auth.ErrInvalidRequestValue
		}
		factors, err := json.Marshal(s.Factors)
		if err != nil {
			return err
		}
		rows[i] = []any{s.TokenDigest, s.ProjectID, s.OrganizationID, s.MemberID, factors, ts(s.CreatedAt), ts(s.ExpiresAt)}
	}
	return db.retry(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"intermediate_sessions"},
				[]string{"token_digest", "project_id", "organization_id", "member_id", "factors", "created_at", "expires_at"},
				pgx.CopyFromRows(rows))
			return translate(err)
		})
	})
}
