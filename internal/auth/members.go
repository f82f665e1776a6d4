package auth

import (
	"context"
	"time"
)

// Actor is the member session a caller may name in the X-Stytch-Member-Session(JWT) headers to
// act as that member; "" means not sent.
type Actor struct {
	SessionToken string
	SessionJWT   string
}

// authorizeActor enforces the member-session headers (§2): when sent, the session must be live,
// belong to the target organization, and its member must hold stytch_admin. The check counts as
// a use of the session.
func (s *Service) authorizeActor(ctx context.Context, projectID, organizationID string, a Actor) error {
	if a.SessionToken == "" && a.SessionJWT == "" {
		return nil
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return err
	}
	now := s.now()
	sess, err := s.sessionFromArgs(ctx, ps, a.SessionToken, a.SessionJWT, now)
	if err != nil {
		return err
	}
	if sess.OrganizationID != organizationID {
		return ErrSessionTenancy
	}
	m, err := s.store.Member(ctx, projectID, sess.OrganizationID, sess.MemberID)
	if err != nil {
		if isType(err, ErrMemberNotFound) {
			return ErrSessionNotFound
		}
		return err
	}
	if !m.IsAdmin() {
		return ErrSessionAuthorization
	}
	_, err = s.store.UpdateSession(ctx, projectID, sess.ID, now, func(x *Session) error {
		x.LastAccessedAt = now
		return nil
	})
	return err
}

// orgMember resolves an organization and a member in it, both by id or alias.
func (s *Service) orgMember(ctx context.Context, ps *projectState, orgRef, memberRef string) (Organization, Member, error) {
	org, err := s.GetOrganization(ctx, ps.Project.ID, orgRef)
	if err != nil {
		return Organization{}, Member{}, err
	}
	m, err := s.member(ctx, ps.Project.ID, org.ID, memberRef)
	return org, m, err
}

// member resolves a member of an organization by id or external id, with a lapsed lock ended.
func (s *Service) member(ctx context.Context, projectID, organizationID, ref string) (Member, error) {
	if ref == "" {
		return Member{}, ErrMemberNotFound
	}
	m, err := s.store.Member(ctx, projectID, organizationID, ref)
	if err != nil {
		return Member{}, err
	}
	m.settleLock(s.now())
	return m, nil
}

// MemberInput carries the member fields of create and update (§6.3); nil is absent.
type MemberInput struct {
	EmailAddress      *string
	Name              *string
	ExternalID        *string
	TrustedMetadata   *map[string]any
	UntrustedMetadata *map[string]any
	IsBreakglass      *bool
	MFAPhoneNumber    *string
	MFAEnrolled       *bool
	Roles             *[]string
	// Create only.
	CreateMemberAsPending *bool
	// Update only.
	DefaultMFAMethod *string
}

// validate checks the present fields and returns the normalised email address, if one was sent.
func (in *MemberInput) validate() error {
	if in.EmailAddress != nil {
		e, ok := normalizeEmail(*in.EmailAddress)
		if !ok {
			return ErrInvalidEmail
		}
		in.EmailAddress = &e
	}
	if in.ExternalID != nil && *in.ExternalID != "" && !externalIDPattern.MatchString(*in.ExternalID) {
		return ErrInvalidRequestValue
	}
	if in.MFAPhoneNumber != nil && *in.MFAPhoneNumber != "" && !e164Pattern.MatchString(*in.MFAPhoneNumber) {
		return ErrInvalidPhoneNumber
	}
	if in.Roles != nil {
		for _, r := range *in.Roles {
			if !knownRole(r) {
				return ErrInvalidRoleID
			}
		}
	}
	if in.DefaultMFAMethod != nil && !oneOf(*in.DefaultMFAMethod, "", "totp", "sms_otp") {
		return ErrInvalidDefaultMFAMethod
	}
	return nil
}

// apply writes the present fields onto m, with the side effects the contract ties to them.
func (in *MemberInput) apply(m *Member, now time.Time) error {
	if in.EmailAddress != nil && *in.EmailAddress != m.EmailAddress {
		if m.EmailAddress != "" {
			m.RetiredEmails = append(m.RetiredEmails, RetiredEmail{EmailID: newID(kindEmail), EmailAddress: m.EmailAddress})
		}
		m.EmailAddress = *in.EmailAddress
		m.EmailVerified = false
	}
	setString(&m.Name, in.Name)
	setString(&m.ExternalID, in.ExternalID)
	if in.TrustedMetadata != nil {
		m.TrustedMetadata = *in.TrustedMetadata
	}
	if in.UntrustedMetadata != nil {
		m.UntrustedMetadata = *in.UntrustedMetadata
	}
	if in.IsBreakglass != nil {
		m.IsBreakglass = *in.IsBreakglass
	}
	if in.MFAPhoneNumber != nil && *in.MFAPhoneNumber != m.MFAPhoneNumber {
		m.MFAPhoneNumber = *in.MFAPhoneNumber
		m.MFAPhoneVerified = false
		if m.MFAPhoneNumber == "" && m.DefaultMFAMethod == "sms_otp" {
			m.DefaultMFAMethod = ""
		}
	}
	if in.MFAEnrolled != nil {
		m.MFAEnrolled = *in.MFAEnrolled
	}
	if in.Roles != nil {
		m.Roles = explicitRoles(*in.Roles)
	}
	if in.DefaultMFAMethod != nil {
		switch *in.DefaultMFAMethod {
		case "totp":
			if m.TOTPRegistrationID == "" {
				return ErrDefaultMFAMissingFactor
			}
		case "sms_otp":
			if m.MFAPhoneNumber == "" || !m.MFAPhoneVerified {
				return ErrDefaultMFAMissingFactor
			}
		}
		m.DefaultMFAMethod = *in.DefaultMFAMethod
	}
	m.UpdatedAt = now
	return nil
}

// explicitRoles keeps the roles beyond the implied stytch_member, once each.
func explicitRoles(roles []string) []string {
	var out []string
	for _, r := range roles {
		if r != RoleMember && !oneOf(r, out...) {
			out = append(out, r)
		}
	}
	return out
}

// CreateMember adds a member to an organization.
func (s *Service) CreateMember(ctx context.Context, projectID, orgRef string, in MemberInput, actor Actor) (Organization, Member, error) {
	if in.EmailAddress == nil || *in.EmailAddress == "" {
		return Organization{}, Member{}, ErrBadRequest
	}
	if in.DefaultMFAMethod != nil {
		in.DefaultMFAMethod = nil // not a create field
	}
	if err := in.validate(); err != nil {
		return Organization{}, Member{}, err
	}
	org, err := s.GetOrganization(ctx, projectID, orgRef)
	if err != nil {
		return Organization{}, Member{}, err
	}
	if err := s.authorizeActor(ctx, projectID, org.ID, actor); err != nil {
		return Organization{}, Member{}, err
	}
	m := s.newMember(projectID, org.ID)
	if in.CreateMemberAsPending != nil && *in.CreateMemberAsPending {
		m.Status = StatusPending
	}
	if err := in.apply(&m, m.CreatedAt); err != nil {
		return Organization{}, Member{}, err
	}
	if err := s.store.CreateMember(ctx, m, nil); err != nil {
		return Organization{}, Member{}, err
	}
	return org, m, nil
}

func (s *Service) newMember(projectID, organizationID string) Member {
	now := s.now()
	return Member{
		ID:             newID(kindMember),
		OrganizationID: organizationID,
		ProjectID:      projectID,
		Status:         StatusActive,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
}

// GetMemberInput names a member by id (or external id) or, failing that, email address.
type GetMemberInput struct {
	OrganizationID string
	MemberID       string
	EmailAddress   string
}

// GetMember returns a member; member_id wins when both it and an address are sent.
func (s *Service) GetMember(ctx context.Context, projectID string, in GetMemberInput) (Organization, Member, error) {
	if in.MemberID == "" && in.EmailAddress == "" {
		return Organization{}, Member{}, ErrBadRequest
	}
	org, err := s.GetOrganization(ctx, projectID, in.OrganizationID)
	if err != nil {
		return Organization{}, Member{}, err
	}
	var m Member
	if in.MemberID != "" {
		m, err = s.member(ctx, projectID, org.ID, in.MemberID)
	} else {
		m, err = s.store.MemberByEmail(ctx, projectID, org.ID, lower(in.EmailAddress))
		m.settleLock(s.now())
	}
	return org, m, err
}

// memberForActor resolves the member a write names and checks that actor, when it carries a
// session, may act in the member's organization.
func (s *Service) memberForActor(ctx context.Context, projectID string, ref MemberRef, actor Actor) (Organization, Member, error) {
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return Organization{}, Member{}, err
	}
	org, m, err := s.orgMember(ctx, ps, ref.OrganizationID, ref.MemberID)
	if err != nil {
		return Organization{}, Member{}, err
	}
	return org, m, s.authorizeActor(ctx, projectID, org.ID, actor)
}

// UpdateMember changes the present fields.
func (s *Service) UpdateMember(ctx context.Context, projectID string, ref MemberRef, in MemberInput, actor Actor) (Organization, Member, error) {
	in.CreateMemberAsPending = nil
	if err := in.validate(); err != nil {
		return Organization{}, Member{}, err
	}
	org, m, err := s.memberForActor(ctx, projectID, ref, actor)
	if err != nil {
		return Organization{}, Member{}, err
	}
	now := s.now()
	m, err = s.store.UpdateMember(ctx, projectID, m.ID, func(x *Member) ([]Event, error) { return nil, in.apply(x, now) })
	m.settleLock(now)
	return org, m, err
}

// DeleteMember removes a member and everything that is theirs; it returns the canonical id.
func (s *Service) DeleteMember(ctx context.Context, projectID string, ref MemberRef, actor Actor) (string, error) {
	_, m, err := s.memberForActor(ctx, projectID, ref, actor)
	if err != nil {
		return "", err
	}
	return m.ID, s.store.DeleteMember(ctx, projectID, m.ID)
}

// DeleteMemberTOTP removes the member's TOTP registration and all its recovery codes.
// mfa_enrolled, sessions and the lock stay as they are.
func (s *Service) DeleteMemberTOTP(ctx context.Context, projectID string, ref MemberRef, actor Actor) (Organization, Member, error) {
	org, m, err := s.memberForActor(ctx, projectID, ref, actor)
	if err != nil {
		return Organization{}, Member{}, err
	}
	now := s.now()
	m, err = s.store.DeleteTOTP(ctx, projectID, m.ID, func(x *Member) ([]Event, error) {
		deleted := memberEvent(ctx, EventTOTPDeleted, now, x, map[string]any{"totp_registration_id": x.TOTPRegistrationID})
		x.TOTPRegistrationID = ""
		if x.DefaultMFAMethod == "totp" {
			x.DefaultMFAMethod = ""
		}
		x.UpdatedAt = now
		return []Event{deleted}, nil
	})
	m.settleLock(now)
	return org, m, err
}
