package api_test

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

const (
	pwMigratePath = "/v1/b2b/passwords/migrate"
	pwAuthPath    = "/v1/b2b/passwords/authenticate"
)

const wrongCredentials = "The email address or password is incorrect."

// TestPasswordsMigrate: POST /v1/b2b/passwords/migrate (§6.5).
func TestPasswordsMigrate(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	taken := s.newMember(t, o, map[string]any{"external_id": fmt.Sprintf("taken-%d", s.next())})
	takenExt := taken.state(t).str(t, "member.external_id")
	hash := bcryptHash(t, "hunter2")
	body := func(extra map[string]any) map[string]any {
		b := map[string]any{"organization_id": o.ID, "email_address": fmt.Sprintf("migrated%d@example.com", s.next()), "hash_type": "bcrypt", "hash": hash}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}

	for _, tc := range []struct {
		name       string
		body       map[string]any
		wantStatus int
		wantType   string
	}{
		{"missing organization_id", body(map[string]any{"organization_id": nil}), 400, "bad_request"},
		{"missing email_address", body(map[string]any{"email_address": nil}), 400, "bad_request"},
		{"missing hash", body(map[string]any{"hash": nil}), 400, "bad_request"},
		{"empty hash_type", body(map[string]any{"hash_type": ""}), 400, "bad_request"},
		{"hash a number", body(map[string]any{"hash": 5}), 400, "bad_request"},
		{"config a string", body(map[string]any{"hash_type": "sha_1", "sha_1_config": "salt"}), 400, "bad_request"},
		{"config field quoted number", body(map[string]any{"hash_type": "pbkdf_2", "pbkdf_2_config": map[string]any{"iteration_amount": "1000"}}), 400, "bad_request"},
		{"roles a string", body(map[string]any{"roles": "stytch_admin"}), 400, "bad_request"},
		{"hash type sha_512", body(map[string]any{"hash_type": "sha_512"}), 400, "invalid_hash_type"},
		{"hash type phpass", body(map[string]any{"hash_type": "phpass"}), 400, "invalid_hash_type"},
		{"hash type unknown", body(map[string]any{"hash_type": "rot13"}), 400, "invalid_hash_type"},
		{"malformed bcrypt", body(map[string]any{"hash": "$2a$04$tooshort"}), 400, "invalid_hash"},
		{"pbkdf_2 without its config", body(map[string]any{"hash_type": "pbkdf_2", "hash": "c2FsdA=="}), 400, "invalid_hash"},
		{"md_5 that is not hex", body(map[string]any{"hash_type": "md_5", "hash": "zz"}), 400, "invalid_hash"},
		{"invalid email", body(map[string]any{"email_address": "not-an-email"}), 400, "invalid_email"},
		{"invalid email beats an unknown organization", body(map[string]any{"email_address": "x", "organization_id": "nope"}), 400, "invalid_email"},
		{"invalid hash type beats an unknown organization", body(map[string]any{"hash_type": "sha_512", "organization_id": "nope"}), 400, "invalid_hash_type"},
		{"invalid phone number", body(map[string]any{"mfa_phone_number": "5551234"}), 400, "invalid_phone_number"},
		{"unknown role", body(map[string]any{"roles": []string{"owner"}}), 400, "invalid_rbac_role_id"},
		{"external id syntax", body(map[string]any{"external_id": "has space"}), 400, "invalid_request_value"},
		{"unknown organization", body(map[string]any{"organization_id": "nope"}), 404, "organization_not_found"},
		{"external id of another member", body(map[string]any{"external_id": takenExt}), 400, "duplicate_member_external_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			email, _ := tc.body["email_address"].(string)
			s.post(t, pwMigratePath, tc.body).fails(t, tc.wantStatus, tc.wantType)
			if strings.Contains(email, "@") && tc.body["organization_id"] == o.ID {
				s.get(t, "/v1/b2b/organizations/"+o.ID+"/member?email_address="+email).fails(t, 404, "member_not_found")
			}
		})
	}

	t.Run("a new address creates the member", func(t *testing.T) {
		email := fmt.Sprintf("New.Person%d@Example.COM", s.next())
		r := s.post(t, pwMigratePath, body(map[string]any{
			"email_address": email, "name": "New Person", "external_id": fmt.Sprintf("np-%d", s.next()),
			"trusted_metadata": map[string]any{"tier": "gold"}, "untrusted_metadata": map[string]any{"theme": "dark"},
			"roles": []string{"stytch_admin"}, "mfa_phone_number": "+15551231234", "set_phone_number_verified": true,
			"preserve_existing_sessions": true,
		})).ok(t)
		r.want(t, "member_created", true).
			want(t, "member_id", r.str(t, "member.member_id")).
			want(t, "member.email_address", strings.ToLower(email)).
			want(t, "member.status", "active").
			want(t, "member.name", "New Person").
			want(t, "member.trusted_metadata", map[string]any{"tier": "gold"}).
			want(t, "member.untrusted_metadata", map[string]any{"theme": "dark"}).
			want(t, "member.is_admin", true).
			want(t, "member.roles.1.role_id", "stytch_admin").
			want(t, "member.mfa_phone_number", "+15551231234").
			want(t, "member.mfa_phone_number_verified", true).
			want(t, "organization.organization_id", o.ID)
		if id := r.str(t, "member.member_password_id"); !idPattern("member-password").MatchString(id) {
			t.Errorf("member_password_id %q", id)
		}
		s.post(t, pwAuthPath, map[string]any{"organization_id": o.ID, "email_address": email, "password": "hunter2"}).ok(t)
	})
	t.Run("an existing address only gets the password", func(t *testing.T) {
		m := s.newMember(t, o, map[string]any{"name": "Before"})
		before := m.state(t)
		r := s.post(t, pwMigratePath, map[string]any{
			"organization_id": o.Slug, "email_address": strings.ToUpper(m.Email), "hash_type": "bcrypt", "hash": bcryptHash(t, "new password"),
			"name": "After", "roles": []string{"stytch_admin"},
		}).ok(t)
		r.want(t, "member_created", false).
			want(t, "member_id", m.ID).
			want(t, "member.name", "Before").
			want(t, "member.is_admin", false).
			want(t, "organization.organization_id", o.ID)
		if r.str(t, "member.member_password_id") == before.str(t, "member.member_password_id") {
			t.Error("member_password_id unchanged by a new password")
		}
		s.post(t, pwAuthPath, map[string]any{"organization_id": o.ID, "email_address": m.Email, "password": m.Password}).fails(t, 401, "unauthorized_credentials")
		s.post(t, pwAuthPath, map[string]any{"organization_id": o.ID, "email_address": m.Email, "password": "new password"}).ok(t)
	})
	t.Run("other hash types", func(t *testing.T) {
		md := md5.Sum([]byte("pre" + "secret md5" + "post"))
		sh := sha1.Sum([]byte("secret sha1"))
		for _, tc := range []struct {
			pw   string
			body map[string]any
		}{
			{"secret md5", body(map[string]any{"hash_type": "md_5", "hash": hex.EncodeToString(md[:]), "md_5_config": map[string]any{"prepend_salt": "pre", "append_salt": "post"}})},
			{"secret sha1", body(map[string]any{"hash_type": "sha_1", "hash": hex.EncodeToString(sh[:])})},
		} {
			r := s.post(t, pwMigratePath, tc.body).ok(t).want(t, "member_created", true)
			s.post(t, pwAuthPath, map[string]any{"organization_id": o.ID, "email_address": r.str(t, "member.email_address"), "password": tc.pw}).ok(t)
			s.post(t, pwAuthPath, map[string]any{"organization_id": o.ID, "email_address": r.str(t, "member.email_address"), "password": tc.pw + "!"}).fails(t, 401, "unauthorized_credentials")
		}
	})
}

// TestPasswordsAuthenticateErrors: §6.5's refusals in check order. The password is checked
// before any intermediate session or session.
func TestPasswordsAuthenticateErrors(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	other := s.enrolledMember(t, o, nil)
	o2 := s.mfaOrg(t)
	m2 := s.enrolledMember(t, o2, nil)
	noPassword := s.post(t, "/v1/b2b/organizations/"+o.ID+"/members", map[string]any{"email_address": fmt.Sprintf("nopw%d@example.com", s.next())}).ok(t).str(t, "member.email_address")
	gone := s.newMember(t, o, nil)
	s.delete(t, gone.path()).ok(t)
	otherSession := other.session(t, nil)
	body := func(extra map[string]any) map[string]any {
		b := map[string]any{"organization_id": o.ID, "email_address": m.Email, "password": m.Password}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}

	for _, tc := range []struct {
		name       string
		body       map[string]any
		wantStatus int
		wantType   string
	}{
		{"missing organization_id", body(map[string]any{"organization_id": nil}), 400, "bad_request"},
		{"missing email_address", body(map[string]any{"email_address": nil}), 400, "bad_request"},
		{"empty password", body(map[string]any{"password": ""}), 400, "bad_request"},
		{"password a number", body(map[string]any{"password": 1234}), 400, "bad_request"},
		{"locale a number", body(map[string]any{"locale": 1}), 400, "bad_request"},
		{"duration 527041", body(map[string]any{"session_duration_minutes": 527041}), 400, "invalid_session_duration_minutes"},
		{"stytch claim", body(map[string]any{"session_custom_claims": map[string]any{"https://stytch.com/organization": "x"}}), 400, "stytch_claims_in_custom_claims"},
		{"bad duration beats a wrong password", body(map[string]any{"password": "wrong", "session_duration_minutes": 4}), 400, "invalid_session_duration_minutes"},
		{"IST and session token", body(map[string]any{"intermediate_session_token": wellFormedToken, "session_token": wellFormedToken}), 400, "too_many_session_arguments"},
		{"too many arguments beats an unknown organization", body(map[string]any{"organization_id": "nope", "session_jwt": "x", "session_token": wellFormedToken}), 400, "too_many_session_arguments"},
		{"unknown organization", body(map[string]any{"organization_id": "nope"}), 404, "organization_not_found"},
		{"unknown organization beats a wrong password", body(map[string]any{"organization_id": "nope", "password": "wrong"}), 404, "organization_not_found"},
		{"wrong password", body(map[string]any{"password": "wrong"}), 401, "unauthorized_credentials"},
		{"password of another case", body(map[string]any{"password": strings.ToUpper(m.Password)}), 401, "unauthorized_credentials"},
		{"unknown address", body(map[string]any{"email_address": "nobody@example.com"}), 401, "unauthorized_credentials"},
		{"member without a password", body(map[string]any{"email_address": noPassword}), 401, "unauthorized_credentials"},
		{"deleted member", body(map[string]any{"email_address": gone.Email, "password": gone.Password}), 401, "unauthorized_credentials"},
		{"wrong password beats an unknown IST", body(map[string]any{"password": "wrong", "intermediate_session_token": wellFormedToken}), 401, "unauthorized_credentials"},
		{"unknown IST", body(map[string]any{"intermediate_session_token": wellFormedToken}), 404, "intermediate_session_not_found"},
		{"IST of another member", body(map[string]any{"intermediate_session_token": other.ist(t)}), 400, "member_session_member_id_mismatch"},
		{"IST of another organization", body(map[string]any{"intermediate_session_token": m2.ist(t)}), 400, "invalid_intermediate_session_token_for_organization"},
		{"session of another member", body(map[string]any{"session_token": otherSession.Token}), 400, "member_session_member_id_mismatch"},
		{"unknown session token", body(map[string]any{"session_token": wellFormedToken}), 404, "session_not_found"},
		{"session JWT signed by a stranger", body(map[string]any{"session_jwt": strangerJWT(t, s, m.ID)}), 400, "unable_to_parse_session_jwt"},
		{"oversized claims", body(map[string]any{"session_custom_claims": map[string]any{"blob": strings.Repeat("x", 4100)}}), 400, "custom_claims_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantStatus == 401 {
				// An unknown address costs a bcrypt verification of the decoy at cost 10:
				// seconds under -race, so these overlap.
				t.Parallel()
			}
			r := s.post(t, pwAuthPath, tc.body).fails(t, tc.wantStatus, tc.wantType)
			if tc.wantStatus == 401 && r.Body["error_message"] != wrongCredentials {
				t.Errorf("error_message %q, want the one message for every credential failure", r.Body["error_message"])
			}
		})
	}
}

// TestPasswordsAuthenticateBranches: MFA required or not (§6.5's table).
func TestPasswordsAuthenticateBranches(t *testing.T) {
	s := sharedServer(t)
	optional := s.createOrg(t, nil)
	required := s.mfaOrg(t)

	t.Run("optional organization, nothing sent: a session", func(t *testing.T) {
		m := s.newMember(t, optional, nil)
		now := s.Clock.Now()
		r := s.post(t, pwAuthPath, map[string]any{"organization_id": optional.Slug, "email_address": strings.ToUpper(m.Email), "password": m.Password, "locale": "en", "telemetry_id": "t"}).ok(t)
		r.want(t, "member_id", m.ID).
			want(t, "organization_id", optional.ID).
			want(t, "member_authenticated", true).
			want(t, "intermediate_session_token", "").
			want(t, "intermediate_session_token_expires_at", nil).
			want(t, "mfa_required", nil).
			want(t, "primary_required", nil).
			want(t, "member_session.expires_at", ts(now.Add(time.Hour))).
			want(t, "member_session.authentication_factors", []any{map[string]any{
				"type": "password", "delivery_method": "knowledge",
				"created_at": ts(now), "updated_at": ts(now), "last_authenticated_at": ts(now),
			}})
		if !tokenRe.MatchString(r.str(t, "session_token")) || r.str(t, "session_jwt") == "" {
			t.Errorf("no session token or JWT: %s", r)
		}
	})
	t.Run("REQUIRED_FOR_ALL: an intermediate session", func(t *testing.T) {
		m := s.enrolledMember(t, required, map[string]any{"mfa_phone_number": "+15551231234"})
		now := s.Clock.Now()
		r := m.passwordAuth(t, nil).ok(t)
		r.want(t, "member_authenticated", false).
			want(t, "session_token", "").
			want(t, "session_jwt", "").
			want(t, "member_session", nil).
			want(t, "intermediate_session_token_expires_at", ts(now.Add(10*time.Minute))).
			want(t, "mfa_required", map[string]any{
				"member_options":           map[string]any{"mfa_phone_number": "XXXXXXX1234", "totp_registration_id": m.TOTPID},
				"secondary_auth_initiated": nil,
			}).
			want(t, "primary_required", nil)
		if !tokenRe.MatchString(r.str(t, "intermediate_session_token")) {
			t.Errorf("intermediate_session_token %q", r.str(t, "intermediate_session_token"))
		}
	})
	t.Run("member_options without phone or TOTP", func(t *testing.T) {
		m := s.newMember(t, required, nil)
		m.passwordAuth(t, nil).ok(t).want(t, "mfa_required.member_options", map[string]any{"mfa_phone_number": "", "totp_registration_id": ""})
	})
	t.Run("optional organization, enrolled member: MFA required", func(t *testing.T) {
		m := s.newMember(t, optional, nil)
		s.put(t, m.path(), map[string]any{"mfa_enrolled": true}).ok(t)
		m.passwordAuth(t, nil).ok(t).want(t, "member_authenticated", false).want(t, "member_session", nil)
	})
	t.Run("an IST sent along gains the password factor and keeps its expiry", func(t *testing.T) {
		m := s.enrolledMember(t, required, nil)
		first := m.passwordAuth(t, nil).ok(t)
		ist, expires := first.str(t, "intermediate_session_token"), first.str(t, "intermediate_session_token_expires_at")
		s.Clock.Advance(2 * time.Minute)
		r := m.passwordAuth(t, map[string]any{"intermediate_session_token": ist}).ok(t)
		r.want(t, "intermediate_session_token", ist).
			want(t, "intermediate_session_token_expires_at", expires).
			want(t, "member_authenticated", false)
		rec := s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": ist})).ok(t)
		factors := rec.list(t, "member_session.authentication_factors")
		if len(factors) != 2 {
			t.Fatalf("factors %v: the password factor should be renewed in place", factors)
		}
		rec.want(t, "member_session.authentication_factors.0.type", "password").
			want(t, "member_session.authentication_factors.0.last_authenticated_at", ts(s.Clock.Now()))
	})
	t.Run("a session of the member skips MFA", func(t *testing.T) {
		m := s.enrolledMember(t, required, nil)
		sess := m.session(t, nil)
		s.Clock.Advance(time.Minute)
		r := m.passwordAuth(t, map[string]any{"session_token": sess.Token, "session_duration_minutes": 10}).ok(t)
		r.want(t, "member_authenticated", true).
			want(t, "session_token", sess.Token).
			want(t, "intermediate_session_token", "").
			want(t, "mfa_required", nil).
			want(t, "member_session.member_session_id", sess.ID).
			want(t, "member_session.expires_at", ts(s.Clock.Now().Add(10*time.Minute))).
			want(t, "member_session.authentication_factors.0.type", "password").
			want(t, "member_session.authentication_factors.1.type", "recovery_codes")
		if n := len(r.list(t, "member_session.authentication_factors")); n != 2 {
			t.Errorf("%d factors, want the password factor renewed in place", n)
		}
		m.passwordAuth(t, map[string]any{"session_jwt": sess.JWT}).ok(t).
			want(t, "session_token", "").
			want(t, "member_session.member_session_id", sess.ID)
	})
	t.Run("an IST sent along when MFA is not required is consumed", func(t *testing.T) {
		m := s.newMember(t, optional, nil)
		s.put(t, m.path(), map[string]any{"mfa_enrolled": true}).ok(t)
		ist := m.ist(t)
		s.put(t, m.path(), map[string]any{"mfa_enrolled": false}).ok(t)
		r := m.passwordAuth(t, map[string]any{"intermediate_session_token": ist}).ok(t)
		r.want(t, "member_authenticated", true).want(t, "intermediate_session_token", "")
		if n := len(r.list(t, "member_session.authentication_factors")); n != 1 {
			t.Errorf("%d factors, want one password factor", n)
		}
		m.passwordAuth(t, map[string]any{"intermediate_session_token": ist}).fails(t, 404, "intermediate_session_not_found")
	})
	t.Run("oversized claims leave a sent IST unconsumed", func(t *testing.T) {
		m := s.newMember(t, optional, nil)
		s.put(t, m.path(), map[string]any{"mfa_enrolled": true}).ok(t)
		ist := m.ist(t)
		s.put(t, m.path(), map[string]any{"mfa_enrolled": false}).ok(t)
		m.passwordAuth(t, map[string]any{"intermediate_session_token": ist, "session_custom_claims": map[string]any{"k": strings.Repeat("x", 4096)}}).fails(t, 400, "custom_claims_too_large")
		m.passwordAuth(t, map[string]any{"intermediate_session_token": ist}).ok(t).want(t, "member_authenticated", true)
	})
	t.Run("claims on the MFA-required branch are checked, then dropped", func(t *testing.T) {
		m := s.enrolledMember(t, required, nil)
		m.passwordAuth(t, map[string]any{"session_custom_claims": map[string]any{"nbf": 1}}).fails(t, 400, "reserved_claims_in_custom_claims")
		ist := m.passwordAuth(t, map[string]any{"session_custom_claims": map[string]any{"team": "blue"}}).ok(t).str(t, "intermediate_session_token")
		s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": ist})).ok(t).
			want(t, "member_session.custom_claims", map[string]any{})
	})
	t.Run("a pending member becomes active", func(t *testing.T) {
		for _, o := range []org{optional, required} {
			email := fmt.Sprintf("pending%d@example.com", s.next())
			s.post(t, "/v1/b2b/organizations/"+o.ID+"/members", map[string]any{"email_address": email, "create_member_as_pending": true}).ok(t).
				want(t, "member.status", "pending")
			s.post(t, pwMigratePath, map[string]any{"organization_id": o.ID, "email_address": email, "hash_type": "bcrypt", "hash": bcryptHash(t, "pw")}).ok(t).
				want(t, "member_created", false).want(t, "member.status", "pending")
			s.post(t, pwAuthPath, map[string]any{"organization_id": o.ID, "email_address": email, "password": "pw"}).ok(t).
				want(t, "member.status", "active")
			s.get(t, "/v1/b2b/organizations/"+o.ID+"/member?email_address="+email).ok(t).want(t, "member.status", "active")
		}
	})
}
