package api_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// membersPath is POST …/{organization_id}/members.
func membersPath(orgRef string) string { return orgsPath + "/" + orgRef + "/members" }

// TestMembersCreate: POST /v1/b2b/organizations/{organization_id}/members (§6.3, §5.2).
func TestMembersCreate(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	taken := s.newMember(t, o, map[string]any{"external_id": fmt.Sprintf("mc-%d", s.next())})
	takenExt := taken.state(t).str(t, "member.external_id")
	p2 := s.secondProject(t)
	foreign := p2.createOrg(t, nil)
	email := func() string { return fmt.Sprintf("created%d@example.com", s.next()) }

	for _, tc := range []struct {
		name       string
		org        string
		body       map[string]any
		wantStatus int
		wantType   string
	}{
		{"no email", o.ID, map[string]any{"name": "x"}, 400, "bad_request"},
		{"empty email", o.ID, map[string]any{"email_address": ""}, 400, "bad_request"},
		{"email a number", o.ID, map[string]any{"email_address": 1}, 400, "bad_request"},
		{"roles a string", o.ID, map[string]any{"email_address": email(), "roles": "stytch_admin"}, 400, "bad_request"},
		{"is_breakglass a string", o.ID, map[string]any{"email_address": email(), "is_breakglass": "true"}, 400, "bad_request"},
		{"trusted_metadata a string", o.ID, map[string]any{"email_address": email(), "trusted_metadata": "{}"}, 400, "bad_request"},
		{"invalid email", o.ID, map[string]any{"email_address": "no-at-sign"}, 400, "invalid_email"},
		{"email with a display name", o.ID, map[string]any{"email_address": "Ann <ann@example.com>"}, 400, "invalid_email"},
		{"invalid email beats an unknown organization", "nope", map[string]any{"email_address": "x@"}, 400, "invalid_email"},
		{"external id syntax", o.ID, map[string]any{"email_address": email(), "external_id": "has space"}, 400, "invalid_request_value"},
		{"phone not E.164", o.ID, map[string]any{"email_address": email(), "mfa_phone_number": "555-123-4567"}, 400, "invalid_phone_number"},
		{"unknown role", o.ID, map[string]any{"email_address": email(), "roles": []string{"stytch_admin", "owner"}}, 400, "invalid_rbac_role_id"},
		{"unknown organization", "nope", map[string]any{"email_address": email()}, 404, "organization_not_found"},
		{"organization of another project", foreign.ID, map[string]any{"email_address": email()}, 404, "organization_not_found"},
		{"email taken", o.ID, map[string]any{"email_address": taken.Email}, 400, "duplicate_member_email"},
		{"email taken, other case", o.ID, map[string]any{"email_address": strings.ToUpper(taken.Email)}, 400, "duplicate_member_email"},
		{"external id taken", o.ID, map[string]any{"email_address": email(), "external_id": takenExt}, 400, "duplicate_member_external_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.post(t, membersPath(tc.org), tc.body).fails(t, tc.wantStatus, tc.wantType)
			if e, ok := tc.body["email_address"].(string); ok && strings.Contains(e, "@example.com") && e != taken.Email && tc.org == o.ID {
				s.get(t, orgsPath+"/"+o.ID+"/member?email_address="+url.QueryEscape(e)).fails(t, 404, "member_not_found")
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		now := s.Clock.Now()
		e := email()
		r := s.post(t, membersPath(o.Slug), map[string]any{"email_address": strings.ToUpper(e)}).ok(t)
		if len(r.Body) != 5 {
			t.Errorf("create answers %d keys", len(r.Body))
		}
		id := r.str(t, "member_id")
		if !idPattern("member").MatchString(id) {
			t.Errorf("member_id %q", id)
		}
		r.want(t, "organization.organization_id", o.ID)
		r.want(t, "member", map[string]any{
			"organization_id": o.ID, "member_id": id, "email_address": e, "status": "active", "name": "", "external_id": "",
			"email_address_verified": false, "mfa_phone_number_verified": false, "retired_email_addresses": []any{},
			"is_breakglass": false, "is_admin": false,
			"roles":        []any{map[string]any{"role_id": "stytch_member", "sources": []any{map[string]any{"type": "direct_assignment", "details": map[string]any{}}}}},
			"mfa_enrolled": false, "mfa_phone_number": "", "default_mfa_method": "", "totp_registration_id": "", "member_password_id": "",
			"is_locked": false, "lock_created_at": nil, "lock_expires_at": nil,
			"sso_registrations": []any{}, "oauth_registrations": []any{}, "scim_registration": nil,
			"trusted_metadata": map[string]any{}, "untrusted_metadata": map[string]any{},
			"created_at": ts(now), "updated_at": ts(now),
		})
	})
	t.Run("every field", func(t *testing.T) {
		ext := fmt.Sprintf("all.fields|%d", s.next())
		r := s.post(t, membersPath(o.ID), map[string]any{
			"email_address": email(), "name": "Ann Example", "external_id": ext,
			"trusted_metadata": map[string]any{"t": 1}, "untrusted_metadata": map[string]any{"u": []any{1}},
			"create_member_as_pending": true, "is_breakglass": true, "mfa_phone_number": "+447700900123", "mfa_enrolled": true,
			"roles": []string{"stytch_member", "stytch_admin", "stytch_admin"}, "default_mfa_method": "sms_otp",
		}).ok(t)
		r.want(t, "member.status", "pending").want(t, "member.name", "Ann Example").want(t, "member.external_id", ext).
			want(t, "member.trusted_metadata", map[string]any{"t": 1}).want(t, "member.untrusted_metadata", map[string]any{"u": []any{1}}).
			want(t, "member.is_breakglass", true).want(t, "member.mfa_phone_number", "+447700900123").
			want(t, "member.mfa_phone_number_verified", false).want(t, "member.mfa_enrolled", true).
			want(t, "member.is_admin", true).want(t, "member.default_mfa_method", ""). // not a create field
			want(t, "member.roles", []any{
				map[string]any{"role_id": "stytch_member", "sources": []any{map[string]any{"type": "direct_assignment", "details": map[string]any{}}}},
				map[string]any{"role_id": "stytch_admin", "sources": []any{map[string]any{"type": "direct_assignment", "details": map[string]any{}}}},
			})
	})
	t.Run("one address in two organizations", func(t *testing.T) {
		o2 := s.createOrg(t, nil)
		s.post(t, membersPath(o2.ID), map[string]any{"email_address": taken.Email}).ok(t)
	})
}

// TestMembersGet: GET /v1/b2b/organizations/{organization_id}/member (§6.3).
func TestMembersGet(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, map[string]any{"organization_external_id": fmt.Sprintf("mg-%d", s.next())})
	orgExt := s.get(t, orgsPath+"/"+o.ID).ok(t).str(t, "organization.organization_external_id")
	m := s.newMember(t, o, map[string]any{"external_id": fmt.Sprintf("getme-%d", s.next())})
	ext := m.state(t).str(t, "member.external_id")
	n := s.newMember(t, o, nil)
	o2 := s.createOrg(t, nil)
	elsewhere := s.newMember(t, o2, nil)
	get := func(org, query string) *response { return s.get(t, orgsPath+"/"+org+"/member?"+query) }

	for _, tc := range []struct{ name, org, query, want string }{
		{"by id", o.ID, "member_id=" + m.ID, m.ID},
		{"by external id", o.ID, "member_id=" + ext, m.ID},
		{"by email", o.ID, "email_address=" + m.Email, m.ID},
		{"by email in another case", o.ID, "email_address=" + url.QueryEscape(strings.ToUpper(m.Email)), m.ID},
		{"member_id wins over email_address", o.ID, "email_address=" + n.Email + "&member_id=" + m.ID, m.ID},
		{"by organization slug", o.Slug, "member_id=" + m.ID, m.ID},
		{"by organization external id", orgExt, "member_id=" + m.ID, m.ID},
		{"query organization_id is ignored, the path wins", o.ID, "member_id=" + m.ID + "&organization_id=" + o2.ID, m.ID},
		{"repeated parameters, as Python sends them", o.ID, "member_id=" + m.ID + "&member_id=" + m.ID + "&unknown=1", m.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			get(tc.org, tc.query).ok(t).want(t, "member_id", tc.want).want(t, "member.member_id", tc.want).want(t, "organization.organization_id", o.ID)
		})
	}
	for _, tc := range []struct {
		name, org, query string
		wantStatus       int
		wantType         string
	}{
		{"neither parameter", o.ID, "", 400, "bad_request"},
		{"both empty", o.ID, "member_id=&email_address=", 400, "bad_request"},
		{"neither parameter beats an unknown organization", "nope", "", 400, "bad_request"},
		{"unknown organization", "nope", "member_id=" + m.ID, 404, "organization_not_found"},
		{"unknown member", o.ID, "member_id=nope", 404, "member_not_found"},
		{"unknown email", o.ID, "email_address=nobody@example.com", 404, "member_not_found"},
		{"member of another organization", o.ID, "member_id=" + elsewhere.ID, 404, "member_not_found"},
		{"email of another organization's member", o.ID, "email_address=" + elsewhere.Email, 404, "member_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) { get(tc.org, tc.query).fails(t, tc.wantStatus, tc.wantType) })
	}
}

// TestMembersUpdate: PUT /v1/b2b/organizations/{organization_id}/members/{member_id} (§6.3).
func TestMembersUpdate(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	m := s.newMember(t, o, map[string]any{"external_id": fmt.Sprintf("upd-%d", s.next()), "name": "Before"})
	other := s.newMember(t, o, map[string]any{"external_id": fmt.Sprintf("upd-%d", s.next())})
	otherExt := other.state(t).str(t, "member.external_id")
	before := m.state(t)

	for _, tc := range []struct {
		name       string
		path       string
		body       map[string]any
		wantStatus int
		wantType   string
	}{
		{"name a number", m.path(), map[string]any{"name": 1}, 400, "bad_request"},
		{"roles holding a number", m.path(), map[string]any{"roles": []any{1}}, 400, "bad_request"},
		{"invalid email", m.path(), map[string]any{"email_address": "nope", "name": "After"}, 400, "invalid_email"},
		{"invalid email beats an unknown member", orgsPath + "/" + o.ID + "/members/nope", map[string]any{"email_address": "nope"}, 400, "invalid_email"},
		{"external id syntax", m.path(), map[string]any{"external_id": "a b"}, 400, "invalid_request_value"},
		{"phone not E.164", m.path(), map[string]any{"mfa_phone_number": "12345"}, 400, "invalid_phone_number"},
		{"unknown role", m.path(), map[string]any{"roles": []string{"root"}}, 400, "invalid_rbac_role_id"},
		{"default_mfa_method unknown", m.path(), map[string]any{"default_mfa_method": "email"}, 400, "invalid_mfa_default_method"},
		{"unknown organization", orgsPath + "/nope/members/" + m.ID, map[string]any{"name": "x"}, 404, "organization_not_found"},
		{"unknown member", orgsPath + "/" + o.ID + "/members/nope", map[string]any{"name": "x"}, 404, "member_not_found"},
		{"email of another member", m.path(), map[string]any{"email_address": strings.ToUpper(other.Email), "name": "After"}, 400, "duplicate_member_email"},
		{"external id of another member", m.path(), map[string]any{"external_id": otherExt, "name": "After"}, 400, "duplicate_member_external_id"},
		{"default totp without a registration", m.path(), map[string]any{"default_mfa_method": "totp", "name": "After"}, 400, "default_mfa_member_missing_factor"},
		{"default sms_otp without a phone", m.path(), map[string]any{"default_mfa_method": "sms_otp", "name": "After"}, 400, "default_mfa_member_missing_factor"},
	} {
		t.Run(tc.name, func(t *testing.T) { s.put(t, tc.path, tc.body).fails(t, tc.wantStatus, tc.wantType) })
	}
	m.state(t).want(t, "member", before.at("member"))

	t.Run("email change retires the old address", func(t *testing.T) {
		s.Clock.Advance(time.Minute)
		first := m.Email
		r := s.put(t, m.path(), map[string]any{"email_address": "Renamed." + first, "preserve_existing_sessions": true}).ok(t)
		r.want(t, "member.email_address", "renamed."+first).
			want(t, "member.email_address_verified", false).
			want(t, "member.updated_at", ts(s.Clock.Now())).
			want(t, "member.created_at", before.at("member.created_at")).
			want(t, "member.name", "Before")
		retired := r.list(t, "member.retired_email_addresses")
		if len(retired) != 1 || lookup(retired[0], "email_address") != first || !idPattern("email").MatchString(lookup(retired[0], "email_id").(string)) {
			t.Fatalf("retired_email_addresses %v", retired)
		}
		r = s.put(t, m.path(), map[string]any{"email_address": "third." + first}).ok(t)
		if retired := r.list(t, "member.retired_email_addresses"); len(retired) != 2 || lookup(retired[1], "email_address") != "renamed."+first {
			t.Errorf("retired_email_addresses %v", retired)
		}
		// The same address again is no change.
		r = s.put(t, m.path(), map[string]any{"email_address": "THIRD." + first}).ok(t)
		if n := len(r.list(t, "member.retired_email_addresses")); n != 2 {
			t.Errorf("re-sending the current address retired it (%d)", n)
		}
		m.Email = "third." + first
		s.get(t, orgsPath+"/"+o.ID+"/member?email_address="+first).fails(t, 404, "member_not_found")
		s.post(t, membersPath(o.ID), map[string]any{"email_address": first}).ok(t) // the old address is free
	})
	t.Run("phone and default_mfa_method", func(t *testing.T) {
		p := s.newMember(t, o, map[string]any{"mfa_phone_number": "+15551231234", "set_phone_number_verified": true})
		p.state(t).want(t, "member.mfa_phone_number_verified", true)
		s.put(t, p.path(), map[string]any{"default_mfa_method": "sms_otp"}).ok(t).want(t, "member.default_mfa_method", "sms_otp")
		s.put(t, p.path(), map[string]any{"mfa_phone_number": "+15551231234"}).ok(t).want(t, "member.mfa_phone_number_verified", true) // unchanged
		s.put(t, p.path(), map[string]any{"mfa_phone_number": "+15559999999"}).ok(t).
			want(t, "member.mfa_phone_number_verified", false).
			want(t, "member.default_mfa_method", "sms_otp")
		s.put(t, p.path(), map[string]any{"default_mfa_method": "sms_otp"}).fails(t, 400, "default_mfa_member_missing_factor") // unverified now
		s.put(t, p.path(), map[string]any{"mfa_phone_number": ""}).ok(t).
			want(t, "member.mfa_phone_number", "").
			want(t, "member.default_mfa_method", "")
		p.enroll(t, nil)
		s.put(t, p.path(), map[string]any{"default_mfa_method": "totp"}).ok(t).want(t, "member.default_mfa_method", "totp")
		s.put(t, p.path(), map[string]any{"mfa_phone_number": "+15550000000"}).ok(t).want(t, "member.default_mfa_method", "totp")
		s.put(t, p.path(), map[string]any{"default_mfa_method": ""}).ok(t).want(t, "member.default_mfa_method", "")
	})
	t.Run("roles", func(t *testing.T) {
		admin := []any{
			map[string]any{"role_id": "stytch_member", "sources": []any{map[string]any{"type": "direct_assignment", "details": map[string]any{}}}},
			map[string]any{"role_id": "stytch_admin", "sources": []any{map[string]any{"type": "direct_assignment", "details": map[string]any{}}}},
		}
		s.put(t, m.path(), map[string]any{"roles": []string{"stytch_admin"}}).ok(t).want(t, "member.is_admin", true).want(t, "member.roles", admin)
		s.put(t, m.path(), map[string]any{"name": "No role change"}).ok(t).want(t, "member.is_admin", true)
		s.put(t, m.path(), map[string]any{"roles": []string{"stytch_member"}}).ok(t).want(t, "member.is_admin", false).want(t, "member.roles", admin[:1])
		s.put(t, m.path(), map[string]any{"roles": []string{"stytch_admin"}}).ok(t)
		s.put(t, m.path(), map[string]any{"roles": []string{}}).ok(t).want(t, "member.is_admin", false).want(t, "member.roles", admin[:1])
	})
	t.Run("other fields, by aliases", func(t *testing.T) {
		ext := m.state(t).str(t, "member.external_id")
		r := s.put(t, orgsPath+"/"+o.Slug+"/members/"+ext, map[string]any{
			"organization_id": "ignored", "member_id": "ignored",
			"name": "", "trusted_metadata": map[string]any{"x": 1}, "untrusted_metadata": map[string]any{}, "is_breakglass": true, "mfa_enrolled": true,
			"create_member_as_pending": true,
		}).ok(t)
		r.want(t, "member_id", m.ID).want(t, "member.name", "").want(t, "member.trusted_metadata", map[string]any{"x": 1}).
			want(t, "member.is_breakglass", true).want(t, "member.mfa_enrolled", true).want(t, "member.status", "active")
		s.put(t, m.path(), map[string]any{"trusted_metadata": map[string]any{"y": 2}}).ok(t).want(t, "member.trusted_metadata", map[string]any{"y": 2})
		s.put(t, m.path(), map[string]any{"external_id": ""}).ok(t).want(t, "member.external_id", "")
		s.get(t, orgsPath+"/"+o.ID+"/member?member_id="+ext).fails(t, 404, "member_not_found")
	})
}

// TestMembersDelete: DELETE …/members/{member_id} and …/members/{member_id}/totp (§6.3).
func TestMembersDelete(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)

	t.Run("member", func(t *testing.T) {
		m := s.enrolledMember(t, o, map[string]any{"external_id": fmt.Sprintf("del-%d", s.next())})
		ext := m.state(t).str(t, "member.external_id")
		sess := m.session(t, nil)
		ist := m.ist(t)
		r := s.delete(t, orgsPath+"/"+o.Slug+"/members/"+ext).ok(t)
		r.want(t, "member_id", m.ID)
		if len(r.Body) != 3 {
			t.Errorf("delete answers %s", r.Raw)
		}
		s.get(t, orgsPath+"/"+o.ID+"/member?member_id="+m.ID).fails(t, 404, "member_not_found")
		s.get(t, m.codesPath()).fails(t, 404, "member_not_found")
		s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": ist})).fails(t, 404, "member_not_found")
		s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token}).fails(t, 404, "session_not_found")
		s.post(t, sessRevokePath, map[string]any{"member_id": m.ID}).fails(t, 404, "member_not_found")
		s.get(t, "/v1/b2b/sessions?organization_id="+o.ID+"&member_id="+m.ID).fails(t, 404, "member_not_found")
		s.put(t, m.path(), map[string]any{"name": "x"}).fails(t, 404, "member_not_found")
		s.delete(t, m.path()).fails(t, 404, "member_not_found")
		s.delete(t, m.path()+"/totp").fails(t, 404, "member_not_found")
		// The address and external id are free again; the new member starts clean.
		again := s.post(t, membersPath(o.ID), map[string]any{"email_address": m.Email, "external_id": ext}).ok(t)
		again.want(t, "member.totp_registration_id", "").want(t, "member.member_password_id", "")
		if again.str(t, "member_id") == m.ID {
			t.Error("a deleted member's id came back")
		}
		s.post(t, sessAuthPath, map[string]any{"session_jwt": sess.JWT}).fails(t, 404, "session_not_found")
	})
	t.Run("member delete removes the member's intermediate sessions", func(t *testing.T) {
		m := s.enrolledMember(t, o, nil)
		ist := m.ist(t)
		s.delete(t, m.path()).ok(t)
		// The same person comes back as a new member with the same address and password.
		again := s.newMember(t, o, map[string]any{"email_address": m.Email, "hash": bcryptHash(t, m.Password)})
		again.Password = m.Password
		again.passwordAuth(t, map[string]any{"intermediate_session_token": ist}).fails(t, 404, "intermediate_session_not_found")
	})
	t.Run("delete without a body, and errors", func(t *testing.T) {
		m := s.newMember(t, o, nil)
		s.do(t, "DELETE", orgsPath+"/nope/members/"+m.ID, nil).fails(t, 404, "organization_not_found")
		s.do(t, "DELETE", orgsPath+"/"+o.ID+"/members/nope", nil).fails(t, 404, "member_not_found")
		s.do(t, "DELETE", m.path(), nil).ok(t).want(t, "member_id", m.ID)
	})
	t.Run("TOTP registration", func(t *testing.T) {
		m := s.enrolledMember(t, o, nil)
		s.put(t, m.path(), map[string]any{"default_mfa_method": "totp"}).ok(t)
		sess := m.session(t, nil) // also sets mfa_enrolled under REQUIRED_FOR_ALL
		m.lock(t)
		r := s.delete(t, m.path()+"/totp").ok(t)
		r.want(t, "member_id", m.ID).
			want(t, "member.totp_registration_id", "").
			want(t, "member.default_mfa_method", "").
			want(t, "member.mfa_enrolled", true).
			want(t, "member.is_locked", true).
			want(t, "organization.organization_id", o.ID)
		if len(r.Body) != 5 {
			t.Errorf("TOTP delete answers %d keys", len(r.Body))
		}
		s.get(t, m.codesPath()).fails(t, 400, "no_active_recovery_code_backed_factor")
		s.post(t, rotatePath, map[string]any{"organization_id": o.ID, "member_id": m.ID}).fails(t, 400, "no_active_recovery_code_backed_factor")
		s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token}).ok(t)
		// The member is still locked, but a missing registration is checked before the lock.
		s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": m.ist(t)})).fails(t, 400, "no_active_recovery_code_backed_factor")
		s.post(t, totpAuthPath, m.totpBody("123456", map[string]any{"intermediate_session_token": m.ist(t)})).fails(t, 404, "totp_not_found")
		s.delete(t, m.path()+"/totp").fails(t, 404, "totp_not_found")
		s.do(t, "DELETE", orgsPath+"/nope/members/"+m.ID+"/totp", nil).fails(t, 404, "organization_not_found")
		// A new registration may follow.
		m.enroll(t, nil)
		s.get(t, m.codesPath()).ok(t).want(t, "recovery_codes", m.Codes)
	})
}

// TestMemberSessionHeaders: X-Stytch-Member-Session / -SessionJWT on the writes that take them (§2).
func TestMemberSessionHeaders(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	o2 := s.createOrg(t, nil)
	admin := s.newMember(t, o, map[string]any{"roles": []string{"stytch_admin"}})
	plain := s.newMember(t, o, nil)
	outsider := s.newMember(t, o2, map[string]any{"roles": []string{"stytch_admin"}})
	adminSess, plainSess, outsiderSess := admin.session(t, nil), plain.session(t, nil), outsider.session(t, nil)
	ended := admin.session(t, nil)
	s.post(t, sessRevokePath, map[string]any{"member_session_id": ended.ID}).ok(t)

	type write struct {
		name   string
		call   func(t *testing.T, opts ...option) *response
		before func(t *testing.T) any // state the refused write must leave alone
	}
	target := s.newMember(t, o, nil)
	target.enroll(t, nil)
	targetSess := target.session(t, nil)
	writes := []write{
		{"update organization", func(t *testing.T, opts ...option) *response {
			return s.put(t, orgsPath+"/"+o.ID, map[string]any{"organization_name": "Changed"}, opts...)
		}, func(t *testing.T) any { return s.get(t, orgsPath+"/"+o.ID).ok(t).at("organization.organization_name") }},
		{"create member", func(t *testing.T, opts ...option) *response {
			return s.post(t, membersPath(o.ID), map[string]any{"email_address": "header-made@example.com"}, opts...)
		}, func(t *testing.T) any {
			return s.get(t, orgsPath+"/"+o.ID+"/member?email_address=header-made@example.com").Status
		}},
		{"update member", func(t *testing.T, opts ...option) *response {
			return s.put(t, target.path(), map[string]any{"name": "Changed"}, opts...)
		}, func(t *testing.T) any { return target.state(t).at("member.name") }},
		{"delete member TOTP", func(t *testing.T, opts ...option) *response {
			return s.delete(t, target.path()+"/totp", opts...)
		}, func(t *testing.T) any { return target.state(t).at("member.totp_registration_id") }},
		{"revoke", func(t *testing.T, opts ...option) *response {
			return s.post(t, sessRevokePath, map[string]any{"member_session_id": targetSess.ID}, opts...)
		}, func(t *testing.T) any {
			return s.post(t, sessAuthPath, map[string]any{"session_token": targetSess.Token}).Status
		}},
		{"delete member", func(t *testing.T, opts ...option) *response {
			return s.delete(t, target.path(), opts...)
		}, func(t *testing.T) any { return target.state(t).at("member.member_id") }},
		{"delete organization", func(t *testing.T, opts ...option) *response {
			return s.delete(t, orgsPath+"/"+o.ID, opts...)
		}, func(t *testing.T) any { return s.get(t, orgsPath+"/"+o.ID).Status }},
	}
	refusals := []struct {
		name       string
		opt        option
		wantStatus int
		wantType   string
	}{
		{"unknown session token", memberSession(wellFormedToken), 404, "session_not_found"},
		{"revoked session", memberSession(ended.Token), 404, "session_not_found"},
		{"revoked session by JWT", memberSessionJWT(ended.JWT), 404, "session_not_found"},
		{"JWT signed by a stranger", memberSessionJWT(strangerJWT(t, s, admin.ID)), 400, "unable_to_parse_session_jwt"},
		{"admin of another organization", memberSession(outsiderSess.Token), 403, "session_authorization_tenancy_error"},
		{"admin of another organization, by JWT", memberSessionJWT(outsiderSess.JWT), 403, "session_authorization_tenancy_error"},
		{"member without stytch_admin", memberSession(plainSess.Token), 403, "session_authorization_error"},
		{"member without stytch_admin, by JWT", memberSessionJWT(plainSess.JWT), 403, "session_authorization_error"},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			before := w.before(t)
			for _, rf := range refusals {
				w.call(t, rf.opt).fails(t, rf.wantStatus, rf.wantType)
			}
			if after := w.before(t); canon(after) != canon(before) {
				t.Fatalf("refused writes changed state: %v → %v", before, after)
			}
			opt := memberSession(adminSess.Token)
			if w.name == "update member" {
				opt = memberSessionJWT(adminSess.JWT)
			}
			w.call(t, opt).ok(t)
		})
	}
}

// TestMemberAliases: a member reference is the member id, then an external id inside the
// resolved organization (§2); external ids are unique per organization, and "" is none.
func TestMemberAliases(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	o2 := s.createOrg(t, nil)
	a := s.newMember(t, o, nil)
	// b's external id is a's id; in o2, c's external id is also a's id.
	b := s.newMember(t, o, map[string]any{"external_id": a.ID})
	c := s.newMember(t, o2, map[string]any{"external_id": a.ID})
	get := func(org, ref string) *response { return s.get(t, orgsPath+"/"+org+"/member?member_id="+ref) }
	get(o.ID, a.ID).ok(t).want(t, "member_id", a.ID) // the id wins
	get(o2.ID, a.ID).ok(t).want(t, "member_id", c.ID)
	s.put(t, membersPath(o2.ID)+"/"+a.ID, map[string]any{"name": "C"}).ok(t).want(t, "member_id", c.ID)
	s.get(t, "/v1/b2b/recovery_codes/"+o2.ID+"/"+b.ID).fails(t, 404, "member_not_found")

	t.Run(`"" is no external id`, func(t *testing.T) {
		x := s.post(t, membersPath(o.ID), map[string]any{"email_address": fmt.Sprintf("noext%d@example.com", s.next()), "external_id": ""}).ok(t).str(t, "member_id")
		s.post(t, membersPath(o.ID), map[string]any{"email_address": fmt.Sprintf("noext%d@example.com", s.next()), "external_id": ""}).ok(t)
		s.put(t, b.path(), map[string]any{"external_id": ""}).ok(t)
		s.put(t, membersPath(o.ID)+"/"+x, map[string]any{"external_id": ""}).ok(t)
		get(o.ID, "").fails(t, 400, "bad_request")
	})
}
