package auth

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/totp"
)

// CreateTOTPInput is a TOTP create request.
type CreateTOTPInput struct {
	MemberRef
	ExpirationMinutes *json.Number
	SessionArgs
}

// TOTPEnrollment is a new registration as create and migrate return it.
type TOTPEnrollment struct {
	Organization   Organization
	Member         Member
	RegistrationID string
	Secret         string // create only
	QRCode         string // create only
	RecoveryCodes  []string
}

// CreateTOTP registers an authenticator app for a member and issues its recovery codes.
func (s *Service) CreateTOTP(ctx context.Context, projectID string, in CreateTOTPInput) (TOTPEnrollment, error) {
	if err := in.MemberRef.validate(); err != nil {
		return TOTPEnrollment{}, err
	}
	if in.ExpirationMinutes != nil {
		n, err := in.ExpirationMinutes.Int64()
		if err != nil || n < 5 || n > 1440 {
			return TOTPEnrollment{}, ErrInvalidRequestValue
		}
	}
	if in.SessionArgs.count() > 1 {
		return TOTPEnrollment{}, ErrTooManySessionArguments
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	org, m, err := s.orgMember(ctx, ps, in.OrganizationID, in.MemberID)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	if totpRestricted(&org, &m) {
		return TOTPEnrollment{}, ErrMFAMethodRestricted
	}
	// TOTP is the only MFA factor sparekey issues, so refusing a second registration already
	// keeps a member with active MFA from enrolling a new app without presenting it.
	if m.TOTPRegistrationID != "" {
		return TOTPEnrollment{}, ErrActiveTOTPExists
	}
	if _, err := s.resolveSessionArgs(ctx, ps, &org, &m, in.SessionArgs, s.now(), readAhead{}); err != nil {
		return TOTPEnrollment{}, err
	}
	sec, err := totp.NewSecret()
	if err != nil {
		return TOTPEnrollment{}, err
	}
	codes, err := secret.NewRecoveryCodes(codesPerSet, s.cfg.CodeSymbols)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	// The QR image costs milliseconds of CPU: render it before anything is written.
	qr, err := totp.QRCode(totp.URL(org.Name, m.EmailAddress, sec))
	if err != nil {
		return TOTPEnrollment{}, err
	}
	enr, err := s.enroll(ctx, ps, org, m, sec, codes, "totp_create", false)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	enr.Secret, enr.QRCode = sec, qr
	return enr, nil
}

// enroll stores a registration with its secret and code set (sealed, the set unless the policy
// is strict), recording totp.enrolled and recovery_codes.issued. source names the endpoint;
// imported tells whether the codes came with the request.
func (s *Service) enroll(ctx context.Context, ps *projectState, org Organization, m Member, sec string, shown []string, source string, imported bool) (TOTPEnrollment, error) {
	now := s.now()
	reg := TOTPRegistration{ID: newID(kindTOTP), MemberID: m.ID, CreatedAt: now}
	reg.SealedSecret = s.keys.Seal([]byte(sec), totpSecretAD(m.ID, reg.ID))
	var codes []RecoveryCode
	reg.SealedCodes, codes = s.codeSet(ps, m.ID, reg.ID, shown)
	events := []Event{
		memberEvent(ctx, EventTOTPEnrolled, now, &m, map[string]any{"totp_registration_id": reg.ID, "source": source}),
		memberEvent(ctx, EventRecoveryCodesIssued, now, &m, map[string]any{
			"totp_registration_id": reg.ID,
			"count":                len(codes),
			"source":               source,
			"imported":             imported,
		}),
	}
	if err := s.store.CreateTOTP(ctx, ps.Project.ID, reg, codes, events...); err != nil {
		return TOTPEnrollment{}, err
	}
	m.TOTPRegistrationID = reg.ID
	return TOTPEnrollment{Organization: org, Member: m, RegistrationID: reg.ID, RecoveryCodes: shown}, nil
}

// MigrateTOTPInput imports an authenticator app (and optionally its recovery codes).
type MigrateTOTPInput struct {
	MemberRef
	Secret        string
	RecoveryCodes []string
}

const maxImportedCodes = 20

// MigrateTOTP imports a registration from another system.
func (s *Service) MigrateTOTP(ctx context.Context, projectID string, in MigrateTOTPInput) (TOTPEnrollment, error) {
	if err := in.MemberRef.validate(); err != nil {
		return TOTPEnrollment{}, err
	}
	if in.Secret == "" {
		return TOTPEnrollment{}, ErrBadRequest
	}
	sec, err := totp.ParseSecret(in.Secret)
	if err != nil {
		return TOTPEnrollment{}, ErrInvalidRequestValue
	}
	shown, err := importedCodes(in.RecoveryCodes)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	imported := len(shown) > 0
	if !imported {
		if shown, err = secret.NewRecoveryCodes(codesPerSet, s.cfg.CodeSymbols); err != nil {
			return TOTPEnrollment{}, err
		}
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	org, m, err := s.orgMember(ctx, ps, in.OrganizationID, in.MemberID)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	if m.TOTPRegistrationID != "" {
		return TOTPEnrollment{}, ErrActiveTOTPExists
	}
	return s.enroll(ctx, ps, org, m, sec, shown, "totp_migrate", imported)
}

// importedCodes checks imported codes (1–20, each a recovery code once normalised, distinct as
// normalised) and returns them as they will be shown: trimmed and lowercased.
func importedCodes(codes []string) ([]string, error) {
	if len(codes) > maxImportedCodes {
		return nil, ErrInvalidRecoveryCode
	}
	seen := make(map[string]bool, len(codes))
	shown := make([]string, 0, len(codes))
	for _, c := range codes {
		n := secret.NormalizeRecoveryCode(c)
		if secret.ClassifyRecoveryCode(n) != secret.CodeWellFormed || seen[n] {
			return nil, ErrInvalidRecoveryCode
		}
		seen[n] = true
		shown = append(shown, strings.ToLower(strings.TrimSpace(c)))
	}
	return shown, nil
}

// AuthenticateTOTPInput is a TOTP authenticate request.
type AuthenticateTOTPInput struct {
	MemberRef
	Code string
	SessionArgs
	SessionOptions
	SetMFAEnrollment string // "", "enroll" or "unenroll"
	SetDefaultMFA    bool
	TelemetryID      string
}

// AuthenticateTOTP checks a TOTP code as the member's second factor and lands a session.
func (s *Service) AuthenticateTOTP(ctx context.Context, projectID string, in AuthenticateTOTPInput) (Authenticated, error) {
	if err := in.MemberRef.validate(); err != nil {
		return Authenticated{}, err
	}
	if in.Code == "" {
		return Authenticated{}, ErrBadRequest
	}
	opts, err := in.SessionOptions.validate()
	if err != nil {
		return Authenticated{}, err
	}
	if !oneOf(in.SetMFAEnrollment, "", "enroll", "unenroll") {
		return Authenticated{}, ErrInvalidRequestValue
	}
	if err := secondFactorArgs(in.SessionArgs); err != nil {
		return Authenticated{}, err
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return Authenticated{}, err
	}
	org, m, err := s.orgMember(ctx, ps, in.OrganizationID, in.MemberID)
	if err != nil {
		return Authenticated{}, err
	}
	if totpRestricted(&org, &m) {
		return Authenticated{}, ErrMFAMethodRestricted
	}
	reg, err := s.store.TOTP(ctx, ps.Project.ID, m.ID)
	if err != nil {
		return Authenticated{}, err
	}
	now := s.now()
	base, err := s.resolveSessionArgs(ctx, ps, &org, &m, in.SessionArgs, now, readAhead{})
	if err != nil {
		return Authenticated{}, err
	}
	if err := base.checkMergedClaims(opts); err != nil {
		return Authenticated{}, err
	}
	if err := m.LockError(now); err != nil {
		return Authenticated{}, err
	}

	code := strings.TrimSpace(in.Code)
	if !totp.IsCode(code) {
		if secret.ClassifyRecoveryCode(secret.NormalizeRecoveryCode(code)) == secret.CodeWellFormed {
			return Authenticated{}, ErrRecoveryCodeAsTOTPCode
		}
		return Authenticated{}, ErrInvalidTOTPCode
	}
	sec, err := s.keys.Open(reg.SealedSecret, totpSecretAD(m.ID, reg.ID))
	if err != nil {
		return Authenticated{}, err
	}
	step, result, err := totp.Check(string(sec), code, now, reg.SpentSteps())
	if err != nil {
		return Authenticated{}, err
	}
	switch result {
	case totp.Replayed:
		return Authenticated{}, ErrTOTPCodeAlreadyUsed
	case totp.Wrong:
		return Authenticated{}, s.failAttempt(ctx, ps, &m, now, ErrTOTPRejected, func(after *Member) Event {
			return memberEvent(ctx, EventTOTPFailed, now, after, map[string]any{"failed_attempts": after.FailedAttempts})
		})
	}

	factor := Factor{
		Type:                FactorTOTP,
		DeliveryMethod:      DeliveryAuthApp,
		CreatedAt:           now,
		UpdatedAt:           now,
		LastAuthenticatedAt: now,
		AuthenticatorApp:    &AuthenticatorAppFactor{TOTPID: reg.ID},
	}
	l := s.land(ps, &org, &m, base, factor, opts, now)
	l.completion.RefuseIfLocked = true
	l.completion.SpendTOTPStep = &TOTPStep{RegistrationID: reg.ID, Step: step}
	passed := mfaPassed(&org, now)
	l.completion.ApplyMember = func(x *Member) error {
		switch in.SetMFAEnrollment {
		case "enroll":
			x.MFAEnrolled = true
		case "unenroll":
			x.MFAEnrolled = false
		}
		if in.SetDefaultMFA || x.DefaultMFAMethod == "" {
			x.DefaultMFAMethod = "totp"
		}
		if in.SetMFAEnrollment != "" || x.DefaultMFAMethod != m.DefaultMFAMethod {
			x.UpdatedAt = now
		}
		return passed(x)
	}
	l.recordEvents(ctx, func(done *Completed) []Event {
		return []Event{memberEvent(ctx, EventTOTPAuthenticated, now, &done.Member, map[string]any{
			"totp_registration_id": reg.ID,
			"member_session_id":    done.Session.ID,
		})}
	})
	return s.complete(ctx, ps, &org, l)
}

// SpentSteps is the set of time steps the registration has accepted.
func (r *TOTPRegistration) SpentSteps() totp.Spent {
	return totp.Spent{Last: r.LastStep, Unspent: r.UnspentSteps}
}

// SpendStep marks step accepted, or returns ErrTOTPCodeAlreadyUsed when it already was. Stores
// call it in Complete on the registration as they read it under a write lock in the same
// transaction, so of two requests with one step exactly one finds it unspent.
func (r *TOTPRegistration) SpendStep(step int64) error {
	next, ok := r.SpentSteps().Add(step)
	if !ok {
		return ErrTOTPCodeAlreadyUsed
	}
	r.LastStep, r.UnspentSteps = next.Last, next.Unspent
	return nil
}
