package api

import (
	"net/http"

	"github.com/sparekey/sparekey/internal/auth"
)

type memberRequest struct {
	EmailAddress          *string         `json:"email_address"`
	Name                  *string         `json:"name"`
	ExternalID            *string         `json:"external_id"`
	TrustedMetadata       *map[string]any `json:"trusted_metadata"`
	UntrustedMetadata     *map[string]any `json:"untrusted_metadata"`
	CreateMemberAsPending *bool           `json:"create_member_as_pending"`
	IsBreakglass          *bool           `json:"is_breakglass"`
	MFAPhoneNumber        *string         `json:"mfa_phone_number"`
	MFAEnrolled           *bool           `json:"mfa_enrolled"`
	Roles                 *[]string       `json:"roles"`
	DefaultMFAMethod      *string         `json:"default_mfa_method"`
	// Accepted for compatibility; sparekey never ends sessions on a member update.
	PreserveExistingSessions *bool `json:"preserve_existing_sessions"`
}

func (q *memberRequest) input() auth.MemberInput {
	return auth.MemberInput{
		EmailAddress:          q.EmailAddress,
		Name:                  q.Name,
		ExternalID:            q.ExternalID,
		TrustedMetadata:       q.TrustedMetadata,
		UntrustedMetadata:     q.UntrustedMetadata,
		IsBreakglass:          q.IsBreakglass,
		MFAPhoneNumber:        q.MFAPhoneNumber,
		MFAEnrolled:           q.MFAEnrolled,
		Roles:                 q.Roles,
		CreateMemberAsPending: q.CreateMemberAsPending,
		DefaultMFAMethod:      q.DefaultMFAMethod,
	}
}

type memberResponse struct {
	envelope
	MemberID     string           `json:"member_id"`
	Member       memberJSON       `json:"member"`
	Organization organizationJSON `json:"organization"`
}

func memberResponseOut(org *auth.Organization, m *auth.Member) *memberResponse {
	return &memberResponse{MemberID: m.ID, Member: memberOut(m), Organization: organizationOut(org)}
}

func pathMember(r *http.Request) auth.MemberRef {
	return auth.MemberRef{OrganizationID: r.PathValue("organization_id"), MemberID: r.PathValue("member_id")}
}

func (s *Server) createMember(w http.ResponseWriter, r *http.Request, projectID string) {
	var req memberRequest
	if !s.decode(w, r, &req) {
		return
	}
	req.DefaultMFAMethod = nil // not a create field
	org, m, err := s.svc.CreateMember(r.Context(), projectID, r.PathValue("organization_id"), req.input(), actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, memberResponseOut(&org, &m))
}

func (s *Server) getMember(w http.ResponseWriter, r *http.Request, projectID string) {
	q := r.URL.Query()
	org, m, err := s.svc.GetMember(r.Context(), projectID, auth.GetMemberInput{
		OrganizationID: r.PathValue("organization_id"),
		MemberID:       q.Get("member_id"),
		EmailAddress:   q.Get("email_address"),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, memberResponseOut(&org, &m))
}

func (s *Server) updateMember(w http.ResponseWriter, r *http.Request, projectID string) {
	var req memberRequest
	if !s.decode(w, r, &req) {
		return
	}
	req.CreateMemberAsPending = nil
	org, m, err := s.svc.UpdateMember(r.Context(), projectID, pathMember(r), req.input(), actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, memberResponseOut(&org, &m))
}

type memberDeleted struct {
	envelope
	MemberID string `json:"member_id"`
}

func (s *Server) deleteMember(w http.ResponseWriter, r *http.Request, projectID string) {
	if !s.decode(w, r, &struct{}{}) {
		return
	}
	id, err := s.svc.DeleteMember(r.Context(), projectID, pathMember(r), actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, &memberDeleted{MemberID: id})
}

func (s *Server) deleteMemberTOTP(w http.ResponseWriter, r *http.Request, projectID string) {
	if !s.decode(w, r, &struct{}{}) {
		return
	}
	org, m, err := s.svc.DeleteMemberTOTP(r.Context(), projectID, pathMember(r), actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.ok(w, r, memberResponseOut(&org, &m))
}
