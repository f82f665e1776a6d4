package auth

import (
	"context"
	"strings"
	"time"

	"github.com/sparekey/sparekey/internal/secret"
)

// MemberRef names a member inside an organization; both accept their aliases (§2).
type MemberRef struct {
	OrganizationID string
	MemberID       string
}

func (r MemberRef) validate() error {
	if r.OrganizationID == "" || r.MemberID == "" {
		return ErrBadRequest
	}
	return nil
}

// RecoveryCodes is a member's active set as GET and rotate return it.
type RecoveryCodes struct {
	Organization Organization
	Member       Member
	Codes        []string // unused codes in issue order, as shown to the member
}

// GetRecoveryCodes returns the member's unused codes, and records that they were read: when the
// record cannot be written the codes are not shown, so no read goes unaudited. Under the strict
// storage policy, and for a set issued under it, there is nothing to show:
// ErrRecoveryCodesNotRetrievable.
func (s *Service) GetRecoveryCodes(ctx context.Context, projectID string, ref MemberRef) (RecoveryCodes, error) {
	if err := ref.validate(); err != nil {
		return RecoveryCodes{}, err
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return RecoveryCodes{}, err
	}
	// The codes shown and the event that records their showing come from one transaction: the
	// set and the state of its codes are one snapshot, with the member (a rotate committing
	// meanwhile must not pair the old set's display strings with the new set's rows), and no
	// code is shown unless its read is recorded.
	q := CodeOwnerQuery{OrganizationRef: ref.OrganizationID, MemberRef: ref.MemberID, UnusedCodes: true, Now: s.now()}
	var unused []string
	owner, err := s.store.RecordedCodeOwner(ctx, ps.Project.ID, q, func(owner CodeOwner) ([]Event, error) {
		reg, m := owner.Registration, &owner.Member
		if reg == nil {
			return nil, ErrNoRecoveryCodeFactor
		}
		// The policy is the deployment's promise that codes are never shown after issue, so it
		// also covers sets sealed before it was turned on.
		if s.cfg.CodeStorage == CodeStorageStrict || reg.SealedCodes == nil {
			return nil, ErrRecoveryCodesNotRetrievable
		}
		shown, err := s.openCodeSet(m.ID, *reg)
		if err != nil {
			return nil, err
		}
		unused = make([]string, 0, len(owner.UnusedPositions))
		for _, p := range owner.UnusedPositions {
			if p < len(shown) {
				unused = append(unused, shown[p])
			}
		}
		return []Event{memberEvent(ctx, EventRecoveryCodesRead, q.Now, m, map[string]any{"totp_registration_id": reg.ID, "count": len(unused)})}, nil
	})
	if err != nil {
		return RecoveryCodes{}, err
	}
	owner.Member.settleLock(q.Now)
	return RecoveryCodes{Organization: owner.Organization, Member: owner.Member, Codes: unused}, nil
}

// RotateRecoveryCodes replaces the member's whole set with ten new codes. Sessions, the lock and
// the failure counter are untouched.
func (s *Service) RotateRecoveryCodes(ctx context.Context, projectID string, ref MemberRef) (RecoveryCodes, error) {
	ps, owner, err := s.codeOwner(ctx, projectID, ref, CodeOwnerQuery{})
	if err != nil {
		return RecoveryCodes{}, err
	}
	reg, m := owner.Registration, &owner.Member
	shown, err := secret.NewRecoveryCodes(codesPerSet, s.cfg.CodeSymbols)
	if err != nil {
		return RecoveryCodes{}, err
	}
	sealed, codes := s.codeSet(ps, m.ID, reg.ID, shown)
	rotated := memberEvent(ctx, EventRecoveryCodesRotated, s.now(), m, map[string]any{"totp_registration_id": reg.ID, "count": len(codes)})
	if err := s.store.ReplaceRecoveryCodes(ctx, ps.Project.ID, reg.ID, sealed, codes, rotated); err != nil {
		if isType(err, ErrTOTPNotFound) {
			return RecoveryCodes{}, ErrNoRecoveryCodeFactor
		}
		return RecoveryCodes{}, err
	}
	return RecoveryCodes{Organization: owner.Organization, Member: owner.Member, Codes: shown}, nil
}

// codeOwner resolves the member whose codes GET and rotate act on, with its registration and
// what q asks for besides (q's refs and time are filled in here), in one read.
func (s *Service) codeOwner(ctx context.Context, projectID string, ref MemberRef, q CodeOwnerQuery) (*projectState, CodeOwner, error) {
	if err := ref.validate(); err != nil {
		return nil, CodeOwner{}, err
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return nil, CodeOwner{}, err
	}
	owner, err := s.resolveCodeOwner(ctx, ps, ref, q)
	if err != nil {
		return nil, CodeOwner{}, err
	}
	if owner.Registration == nil {
		return nil, CodeOwner{}, ErrNoRecoveryCodeFactor
	}
	return ps, owner, nil
}

// resolveCodeOwner runs a CodeOwnerQuery for ref and settles the member's lapsed lock, as every
// member lookup does.
func (s *Service) resolveCodeOwner(ctx context.Context, ps *projectState, ref MemberRef, q CodeOwnerQuery) (CodeOwner, error) {
	q.OrganizationRef, q.MemberRef = ref.OrganizationID, ref.MemberID
	if q.Now.IsZero() {
		q.Now = s.now()
	}
	owner, err := s.store.CodeOwner(ctx, ps.Project.ID, q)
	if err != nil {
		return CodeOwner{}, err
	}
	owner.Member.settleLock(q.Now)
	return owner, nil
}

// codeSet derives each code's verification MAC from its normalised form and, unless the storage
// policy is strict (then the sealed set is nil), seals the set's display forms for GET.
func (s *Service) codeSet(ps *projectState, memberID, regID string, shown []string) ([]byte, []RecoveryCode) {
	codes := make([]RecoveryCode, len(shown))
	for i, c := range shown {
		codes[i] = RecoveryCode{
			ID:       newID(kindRecoveryCode),
			Position: i,
			MAC:      secret.CodeMAC(ps.pepper, secret.NormalizeRecoveryCode(c)),
		}
	}
	if s.cfg.CodeStorage == CodeStorageStrict {
		return nil, codes
	}
	sealed := s.keys.Seal([]byte(strings.Join(shown, "\n")), codeSetAD(memberID, regID))
	return sealed, codes
}

func (s *Service) openCodeSet(memberID string, reg TOTPRegistration) ([]string, error) {
	pt, err := s.keys.Open(reg.SealedCodes, codeSetAD(memberID, reg.ID))
	if err != nil {
		return nil, err
	}
	return strings.Split(string(pt), "\n"), nil
}

// RecoverInput is a recover request.
type RecoverInput struct {
	MemberRef
	RecoveryCode string
	SessionArgs
	SessionOptions
	TelemetryID string
}

// Recover spends one recovery code as the member's second factor and lands a session (§6.1).
// The checks run in the contract's order; the code is looked at last, so a wrong one costs one
// HMAC and one index probe and reveals nothing an earlier check would not.
func (s *Service) Recover(ctx context.Context, projectID string, in RecoverInput) (Authenticated, error) {
	if err := in.MemberRef.validate(); err != nil {
		return Authenticated{}, err
	}
	if in.RecoveryCode == "" {
		return Authenticated{}, ErrBadRequest
	}
	opts, err := in.SessionOptions.validate()
	if err != nil {
		return Authenticated{}, err
	}
	if err := secondFactorArgs(in.SessionArgs); err != nil {
		return Authenticated{}, err
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return Authenticated{}, err
	}
	// Everything the checks below look at is read at once, in one snapshot: the member, its
	// registration, the intermediate session sent and the code with the sent code's MAC. The
	// checks still run, and answer, in the contract's order; reading a row early reveals nothing
	// a later check would not. A code that is not well formed gets no MAC and no lookup.
	now := s.now()
	q := CodeOwnerQuery{Now: now}
	if t := in.IntermediateSessionToken; t != "" && secret.IsToken(t) {
		q.ISTDigest = secret.Digest(t)
	}
	normalized := secret.NormalizeRecoveryCode(in.RecoveryCode)
	shape := secret.ClassifyRecoveryCode(normalized)
	if shape == secret.CodeWellFormed {
		q.CodeMAC = secret.CodeMAC(ps.pepper, normalized)
	}
	owner, err := s.resolveCodeOwner(ctx, ps, in.MemberRef, q)
	if err != nil {
		return Authenticated{}, err
	}
	org, m, reg := owner.Organization, owner.Member, owner.Registration
	if totpRestricted(&org, &m) {
		return Authenticated{}, ErrMFAMethodRestricted
	}
	if reg == nil {
		return Authenticated{}, ErrNoRecoveryCodeFactor
	}
	base, err := s.resolveSessionArgs(ctx, ps, &org, &m, in.SessionArgs, now, readAhead{ist: owner.IST, done: q.ISTDigest != nil})
	if err != nil {
		return Authenticated{}, err
	}
	if err := base.checkMergedClaims(opts); err != nil {
		return Authenticated{}, err
	}
	if err := m.LockError(now); err != nil {
		return Authenticated{}, err
	}

	switch shape {
	case secret.CodeLooksTOTP:
		return Authenticated{}, ErrTOTPCodeAsRecoveryCode
	case secret.CodeMalformed:
		return Authenticated{}, ErrInvalidRecoveryCode
	}
	if owner.Code == nil {
		return Authenticated{}, s.failRecover(ctx, ps, &m, now, "wrong_code")
	}
	code := *owner.Code
	if !code.UsedAt.IsZero() {
		// A spent code presented again gets the same answer as a wrong one, but the audit trail
		// tells them apart: whoever sent it holds a code that already served, which a typo
		// cannot produce (the replay alarm).
		replayed := memberEvent(ctx, EventRecoveryCodeReplayed, now, &m, map[string]any{
			"totp_recovery_code_id": code.ID,
			"used_at":               eventTime(code.UsedAt),
		})
		return Authenticated{}, s.failRecover(ctx, ps, &m, now, "replayed", replayed)
	}

	factor := Factor{
		Type:                FactorRecoveryCodes,
		DeliveryMethod:      DeliveryRecovery,
		CreatedAt:           now,
		UpdatedAt:           now,
		LastAuthenticatedAt: now,
		RecoveryCode:        &RecoveryCodeFactor{TOTPRecoveryCodeID: code.ID},
	}
	l := s.land(ps, &org, &m, base, factor, opts, now)
	l.completion.RefuseIfLocked = true
	l.completion.SpendRecoveryCode = code.ID
	l.completion.ApplyMember = mfaPassed(&org, now)
	l.recordEvents(ctx, func(done *Completed) []Event {
		used := memberEvent(ctx, EventRecoveryCodeUsed, now, &done.Member, map[string]any{
			"totp_recovery_code_id": code.ID,
			"remaining":             done.RemainingCodes,
			"member_session_id":     done.Session.ID,
		})
		return append([]Event{used}, s.lowCodeEvents(ctx, &done.Member, now, done.RemainingCodes)...)
	})
	out, err := s.complete(ctx, ps, &org, l)
	if isType(err, ErrRecoveryCodeRejected) {
		// Another request spent the code first, or a rotate replaced the set: a lost race
		// counts as a failed attempt, so racing cannot multiply guesses.
		return Authenticated{}, s.failRecover(ctx, ps, &m, now, "lost_race")
	}
	return out, err
}

// failRecover counts a failed recover, recording recovery_code.failed with its reason.
func (s *Service) failRecover(ctx context.Context, ps *projectState, m *Member, now time.Time, reason string, alarm ...Event) error {
	return s.failAttempt(ctx, ps, m, now, ErrRecoveryCodeRejected, func(after *Member) Event {
		return memberEvent(ctx, EventRecoveryCodeFailed, now, after, map[string]any{"reason": reason, "failed_attempts": after.FailedAttempts})
	}, alarm...)
}

// secondFactorArgs enforces that a second factor builds on exactly one proof of a first one.
func secondFactorArgs(a SessionArgs) error {
	switch a.count() {
	case 0:
		return ErrMissingPrimaryFactor
	case 1:
		return nil
	}
	return ErrTooManySessionArguments
}

// totpRestricted reports the §6.0.4 restriction: the organization allows only MFA methods other
// than TOTP (and so its recovery codes), and the member is not a break-glass account.
func totpRestricted(org *Organization, m *Member) bool {
	if org.MFAMethods != Restricted || m.IsBreakglass {
		return false
	}
	for _, method := range org.AllowedMFAMethods {
		if method == "totp" {
			return false
		}
	}
	return true
}
