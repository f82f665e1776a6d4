package auth

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/sparekey/sparekey/internal/password"
	"github.com/sparekey/sparekey/internal/secret"
)

// MigratePasswordInput imports a password hash, creating the member when the address is new.
type MigratePasswordInput struct {
	OrganizationID string
	EmailAddress   string
	Hash           string
	HashType       string
	Config         password.Config
	// Used only when the member is created.
	Name                   *string
	TrustedMetadata        *map[string]any
	UntrustedMetadata      *map[string]any
	Roles                  *[]string
	MFAPhoneNumber         *string
	SetPhoneNumberVerified *bool
	ExternalID             *string
}

// PasswordMigrated is the outcome of a password migration.
type PasswordMigrated struct {
	Organization  Organization
	Member        Member
	MemberCreated bool
}

// MigratePassword sets the member's password to an imported hash. A new address creates the
// member with the other fields; for an existing member only the password changes.
func (s *Service) MigratePassword(ctx context.Context, projectID string, in MigratePasswordInput) (PasswordMigrated, error) {
	if in.OrganizationID == "" || in.EmailAddress == "" || in.Hash == "" || in.HashType == "" {
		return PasswordMigrated{}, ErrBadRequest
	}
	mi := MemberInput{
		EmailAddress:      &in.EmailAddress,
		Name:              in.Name,
		ExternalID:        in.ExternalID,
		TrustedMetadata:   in.TrustedMetadata,
		UntrustedMetadata: in.UntrustedMetadata,
		MFAPhoneNumber:    in.MFAPhoneNumber,
		Roles:             in.Roles,
	}
	if err := mi.validate(); err != nil {
		return PasswordMigrated{}, err
	}
	h, err := password.Parse(in.HashType, in.Hash, in.Config)
	switch {
	case errors.Is(err, password.ErrUnsupportedType):
		return PasswordMigrated{}, ErrInvalidHashType
	case err != nil:
		return PasswordMigrated{}, ErrInvalidHash
	}
	record, err := json.Marshal(h)
	if err != nil {
		return PasswordMigrated{}, err
	}
	org, err := s.GetOrganization(ctx, projectID, in.OrganizationID)
	if err != nil {
		return PasswordMigrated{}, err
	}
	now := s.now()
	for attempt := 0; attempt < 2; attempt++ {
		existing, err := s.store.MemberByEmail(ctx, projectID, org.ID, *mi.EmailAddress)
		switch {
		case err == nil:
			pw := s.sealPassword(existing.ID, record, now)
			if err := s.store.SetPassword(ctx, projectID, pw); err != nil {
				return PasswordMigrated{}, err
			}
			existing.PasswordID = pw.ID
			existing.settleLock(now)
			return PasswordMigrated{Organization: org, Member: existing}, nil
		case !isType(err, ErrMemberNotFound):
			return PasswordMigrated{}, err
		}
		m := s.newMember(projectID, org.ID)
		if err := mi.apply(&m, now); err != nil {
			return PasswordMigrated{}, err
		}
		if in.SetPhoneNumberVerified != nil && *in.SetPhoneNumberVerified && m.MFAPhoneNumber != "" {
			m.MFAPhoneVerified = true
		}
		pw := s.sealPassword(m.ID, record, now)
		m.PasswordID = pw.ID
		err = s.store.CreateMember(ctx, m, &pw)
		if isType(err, ErrDuplicateMemberEmail) {
			continue // created concurrently: set the password on that member instead
		}
		if err != nil {
			return PasswordMigrated{}, err
		}
		return PasswordMigrated{Organization: org, Member: m, MemberCreated: true}, nil
	}
	return PasswordMigrated{}, ErrDuplicateMemberEmail
}

func (s *Service) sealPassword(memberID string, record []byte, now time.Time) Password {
	id := newID(kindPassword)
	return Password{ID: id, MemberID: memberID, Sealed: s.keys.Seal(record, passwordAD(memberID, id)), CreatedAt: now}
}

// AuthenticatePasswordInput is a password authenticate request.
type AuthenticatePasswordInput struct {
	OrganizationID string
	EmailAddress   string
	Password       string
	SessionArgs
	SessionOptions
}

// AuthenticatePassword checks a member's password, the primary factor. When MFA is required
// the member gets an intermediate session instead of a session (§6.5).
func (s *Service) AuthenticatePassword(ctx context.Context, projectID string, in AuthenticatePasswordInput) (Authenticated, error) {
	if in.OrganizationID == "" || in.EmailAddress == "" || in.Password == "" {
		return Authenticated{}, ErrBadRequest
	}
	opts, err := in.SessionOptions.validate()
	if err != nil {
		return Authenticated{}, err
	}
	if in.SessionArgs.count() > 1 {
		return Authenticated{}, ErrTooManySessionArguments
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return Authenticated{}, err
	}
	org, err := s.GetOrganization(ctx, projectID, in.OrganizationID)
	if err != nil {
		return Authenticated{}, err
	}
	m, refusal, err := s.checkPassword(ctx, projectID, org.ID, in.EmailAddress, in.Password)
	if err != nil {
		return Authenticated{}, err
	}
	now := s.now()
	if refusal != "" {
		// Every refusal is recorded, an unknown address too: each then costs the same write,
		// and the answer's timing still tells nothing about which addresses exist.
		failed := newEvent(ctx, EventPasswordFailed, now, projectID, org.ID, m.ID, map[string]any{"reason": refusal})
		if err := s.store.RecordEvents(ctx, failed); err != nil {
			return Authenticated{}, err
		}
		return Authenticated{}, ErrWrongEmailOrPassword
	}
	m.settleLock(now)
	base, err := s.resolveSessionArgs(ctx, ps, &org, &m, in.SessionArgs, now, readAhead{})
	if err != nil {
		return Authenticated{}, err
	}
	if err := base.checkMergedClaims(opts); err != nil {
		return Authenticated{}, err
	}
	factor := Factor{Type: FactorPassword, DeliveryMethod: DeliveryKnowledge, CreatedAt: now, UpdatedAt: now, LastAuthenticatedAt: now}
	activate := func(x *Member) error {
		if x.Status == StatusPending {
			x.Status = StatusActive
			x.UpdatedAt = now
		}
		return nil
	}

	// A live session of this member already carries the MFA the policy asks for.
	mfaRequired := (org.MFAPolicy == MFAPolicyRequiredForAll || m.MFAEnrolled) && base.session == nil
	authenticated := func(x *Member) Event {
		return memberEvent(ctx, EventPasswordAuthenticated, now, x, map[string]any{"mfa_required": mfaRequired})
	}
	if !mfaRequired {
		l := s.land(ps, &org, &m, base, factor, opts, now)
		l.completion.ApplyMember = activate
		l.recordEvents(ctx, func(done *Completed) []Event { return []Event{authenticated(&done.Member)} })
		return s.complete(ctx, ps, &org, l)
	}

	if m.Status == StatusPending {
		m, err = s.store.UpdateMember(ctx, projectID, m.ID, func(x *Member) ([]Event, error) { return nil, activate(x) })
		if err != nil {
			return Authenticated{}, err
		}
		m.settleLock(now)
	}
	out := Authenticated{Organization: org, Member: m}
	if base.ist != nil {
		ist, err := s.store.UpdateIntermediateSession(ctx, projectID, base.ist.TokenDigest, now, func(x *IntermediateSession) error {
			x.Factors = addFactor(x.Factors, factor)
			return nil
		}, authenticated(&m))
		if err != nil {
			return Authenticated{}, err
		}
		out.IntermediateSessionToken, out.ISTExpiresAt = base.istToken, ist.ExpiresAt
		return out, nil
	}
	token := secret.NewToken()
	ist := IntermediateSession{
		TokenDigest:    secret.Digest(token),
		ProjectID:      projectID,
		OrganizationID: org.ID,
		MemberID:       m.ID,
		Factors:        []Factor{factor},
		CreatedAt:      now,
		ExpiresAt:      now.Add(istLifetime),
	}
	if err := s.store.CreateIntermediateSession(ctx, ist, authenticated(&m)); err != nil {
		return Authenticated{}, err
	}
	out.IntermediateSessionToken, out.ISTExpiresAt = token, ist.ExpiresAt
	return out, nil
}

// checkPassword finds the member by address and verifies the password. Every refusal (unknown
// address, no password, wrong password) costs comparable work, so its timing never tells
// whether an address exists; it is reported as the reason ("unknown_member", "no_password",
// "wrong_password") with the member when there is one, and the caller answers all of them
// alike. err is a fault.
func (s *Service) checkPassword(ctx context.Context, projectID, organizationID, email, pw string) (m Member, refusal string, err error) {
	m, err = s.store.MemberByEmail(ctx, projectID, organizationID, lower(email))
	if err != nil {
		if isType(err, ErrMemberNotFound) {
			s.decoy.Verify(pw)
			return Member{}, "unknown_member", nil
		}
		return Member{}, "", err
	}
	stored, err := s.store.Password(ctx, projectID, m.ID)
	if err != nil {
		if isType(err, ErrNoPassword) {
			s.decoy.Verify(pw)
			return m, "no_password", nil
		}
		return Member{}, "", err
	}
	record, err := s.keys.Open(stored.Sealed, passwordAD(m.ID, stored.ID))
	if err != nil {
		return Member{}, "", err
	}
	var h password.Hash
	if err := json.Unmarshal(record, &h); err != nil {
		return Member{}, "", err
	}
	if !h.Verify(pw) {
		return m, "wrong_password", nil
	}
	return m, "", nil
}

// MFAOptions is what the MFA-required answer tells the caller about the member's factors.
func (m *Member) MFAOptions() (maskedPhone, totpRegistrationID string) {
	if m.MFAPhoneNumber != "" {
		maskedPhone = maskPhone(m.MFAPhoneNumber)
	}
	return maskedPhone, m.TOTPRegistrationID
}
