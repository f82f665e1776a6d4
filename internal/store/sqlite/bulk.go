package sqlite

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/sparekey/sparekey/internal/auth"
)

var _ auth.BulkLoader = (*DB)(nil)

// Rows per multi-row INSERT. A statement per row costs a round through database/sql and the
// SQLite VM each; at a million members (twelve rows each) that overhead is most of the load
// time. Each chunk stays far below SQLite's 32766 bound parameters.
const (
	bulkMemberRows = 200  // 12 parameters each
	bulkTOTPRows   = 200  // 7 parameters each
	bulkCodeRows   = 1000 // 5 parameters each
	bulkISTRows    = 500  // 7 parameters each
)

// bulkCacheKiB is the page cache of the write connection while bulk loading. Member ids, email
// and registration ids are random keys, so every index page is touched again and again; with
// SQLite's default 2 MB cache each touch is a read from the OS and a page spilled to the WAL.
// It stays raised for the life of the handle: a larger cache is harmless to later writes.
const bulkCacheKiB = 512 << 10

// multiInsert returns INSERT ... VALUES (?, ...), ... for n rows of cols columns.
func multiInsert(head string, cols, n int) string {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var b strings.Builder
	b.Grow(len(head) + 8 + n*(len(row)+2))
	b.WriteString(head)
	b.WriteString(" VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

const (
	bulkMemberHead = `INSERT INTO members (id, project_id, organization_id, email, external_id, status, profile, failed_attempts, lock_created_at, lock_expires_at, created_at, updated_at)`
	bulkTOTPHead   = `INSERT INTO totp_registrations (pk, id, member_id, sealed_secret, sealed_codes, last_step, created_at)`
	bulkCodeHead   = `INSERT INTO recovery_codes (registration_pk, mac, position, id, used_at)`
	bulkISTHead    = `INSERT INTO intermediate_sessions (token_digest, project_id, organization_id, member_id, factors, created_at, expires_at)`
)

// chunked runs one multi-row INSERT per chunk of rows; args(i) appends row i's values.
func chunked(ctx context.Context, tx *txn, head string, cols, per, n int, args func(dst []any, i int) ([]any, error)) error {
	buf := make([]any, 0, cols*min(per, n))
	for start := 0; start < n; start += per {
		end := min(start+per, n)
		buf = buf[:0]
		for i := start; i < end; i++ {
			var err error
			if buf, err = args(buf, i); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, multiInsert(head, cols, end-start), buf...); err != nil {
			return err
		}
	}
	return nil
}

// prepareBulk prepares the full-chunk statements on the write pool before a transaction takes
// its only connection, so even the first batch runs prepared.
func (db *DB) prepareBulk(ctx context.Context, stmts ...string) error {
	for _, q := range stmts {
		if _, err := db.write.stmt(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// LoadEnrolledMembers inserts members with their registrations and codes in one transaction,
// in multi-row statements. Registration keys are assigned here, after the largest one (the
// single writer makes that race-free), so codes can name them without a RETURNING per member.
func (db *DB) LoadEnrolledMembers(ctx context.Context, projectID string, batch []auth.EnrolledMember) error {
	if len(batch) == 0 {
		return nil
	}
	if _, err := db.write.db.ExecContext(ctx, `PRAGMA cache_size = -`+strconv.Itoa(bulkCacheKiB)); err != nil {
		return err
	}
	if err := db.prepareBulk(ctx,
		multiInsert(bulkMemberHead, 12, bulkMemberRows),
		multiInsert(bulkTOTPHead, 7, bulkTOTPRows),
		multiInsert(bulkCodeHead, 5, bulkCodeRows)); err != nil {
		return err
	}
	profiles := make([]string, len(batch))
	type code struct {
		member int
		c      *auth.RecoveryCode
	}
	var codes []code
	for i := range batch {
		m := &batch[i].Member
		if m.ProjectID != projectID {
			return auth.ErrOrganizationNotFound
		}
		p, err := json.Marshal(m.MemberProfile)
		if err != nil {
			return err
		}
		profiles[i] = string(p)
		for j := range batch[i].Codes {
			codes = append(codes, code{member: i, c: &batch[i].Codes[j]})
		}
	}
	return db.tx(ctx, func(tx *txn) error {
		orgs := map[string]bool{}
		for i := range batch {
			o := batch[i].Member.OrganizationID
			if orgs[o] {
				continue
			}
			var n int
			if err := tx.queryRow(ctx, `SELECT count(*) FROM organizations WHERE id = ? AND project_id = ?`, o, projectID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return auth.ErrOrganizationNotFound
			}
			orgs[o] = true
		}
		var base int64
		if err := tx.queryRow(ctx, `SELECT coalesce(max(pk), 0) FROM totp_registrations`).Scan(&base); err != nil {
			return err
		}
		err := chunked(ctx, tx, bulkMemberHead, 12, bulkMemberRows, len(batch), func(dst []any, i int) ([]any, error) {
			m := &batch[i].Member
			return append(dst, m.ID, m.ProjectID, m.OrganizationID, m.EmailAddress, nullString(m.ExternalID), m.Status, profiles[i],
				m.FailedAttempts, unix(m.LockCreatedAt), unix(m.LockExpiresAt), unix(m.CreatedAt), unix(m.UpdatedAt)), nil
		})
		if isUnique(err) {
			return auth.ErrDuplicateMemberEmail // ids are random: the address is what repeats
		}
		if err != nil {
			return err
		}
		err = chunked(ctx, tx, bulkTOTPHead, 7, bulkTOTPRows, len(batch), func(dst []any, i int) ([]any, error) {
			r := &batch[i].Registration
			return append(dst, base+1+int64(i), r.ID, r.MemberID, r.SealedSecret, r.SealedCodes, r.LastStep, unix(r.CreatedAt)), nil
		})
		if err != nil {
			return err
		}
		return chunked(ctx, tx, bulkCodeHead, 5, bulkCodeRows, len(codes), func(dst []any, i int) ([]any, error) {
			c := codes[i]
			id, err := codeIDBytes(c.c.ID)
			if err != nil {
				return nil, err
			}
			return append(dst, base+1+int64(c.member), c.c.MAC, c.c.Position, id, unix(c.c.UsedAt)), nil
		})
	})
}

// LoadIntermediateSessions inserts intermediate sessions in one transaction.
func (db *DB) LoadIntermediateSessions(ctx context.Context, ists []auth.IntermediateSession) error {
	if len(ists) == 0 {
		return nil
	}
	factors := make([]string, len(ists))
	for i := range ists {
		f, err := json.Marshal(ists[i].Factors)
		if err != nil {
			return err
		}
		factors[i] = string(f)
	}
	if err := db.prepareBulk(ctx, multiInsert(bulkISTHead, 7, bulkISTRows)); err != nil {
		return err
	}
	return db.tx(ctx, func(tx *txn) error {
		return chunked(ctx, tx, bulkISTHead, 7, bulkISTRows, len(ists), func(dst []any, i int) ([]any, error) {
			s := &ists[i]
			return append(dst, s.TokenDigest, s.ProjectID, s.OrganizationID, s.MemberID, factors[i], unix(s.CreatedAt), unix(s.ExpiresAt)), nil
		})
	})
}

// Footprint reports the database's size, page_count × page_size as of the latest commit, and how
// many members it holds, for a benchmark's bytes-per-member figure. That is the size of the main
// file once every committed page is checkpointed into it. File sizes would not do: the WAL's
// length depends on whether a checkpoint happened to finish (the background checkpointer running
// at the same moment makes a TRUNCATE checkpoint give up), which at a thousand members moved the
// figure by 15 %.
func (db *DB) Footprint(ctx context.Context) (bytes, members int64, err error) {
	err = db.tx(ctx, func(tx *txn) error {
		var pages, size int64
		if err := tx.queryRow(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			return err
		}
		if err := tx.queryRow(ctx, `PRAGMA page_size`).Scan(&size); err != nil {
			return err
		}
		bytes = pages * size
		return tx.queryRow(ctx, `SELECT count(*) FROM members`).Scan(&members)
	})
	return bytes, members, err
}
