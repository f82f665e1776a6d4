package api_test

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	totpCreatePath  = "/v1/b2b/totp"
	totpAuthPath    = "/v1/b2b/totp/authenticate"
	totpMigratePath = "/v1/b2b/totp/migrate"
)

var totpSecretRe = regexp.MustCompile(`^[A-Z2-7]{32}$`)

// TestTOTPAuthenticateCheckOrder walks §6.4's TOTP authenticate errors in the §2 check order.
func TestTOTPAuthenticateCheckOrder(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	other := s.enrolledMember(t, o, nil)
	noTOTP := s.newMember(t, o, nil)
	o2 := s.mfaOrg(t)
	m2 := s.enrolledMember(t, o2, nil)
	restricted := s.createOrg(t, map[string]any{"mfa_policy": "REQUIRED_FOR_ALL", "mfa_methods": "RESTRICTED", "allowed_mfa_methods": []string{"sms_otp"}})
	rm := s.enrolledMember(t, restricted, nil)
	rmNoTOTP := s.newMember(t, restricted, nil)
	locked := s.enrolledMember(t, o, nil)
	locked.lock(t)
	otherSession := other.session(t, nil)
	big := map[string]any{"blob": strings.Repeat("x", 4100)}
	wrong := func(m *member) string { return wrongTOTP(m.totpCode(t, -1), m.totpCode(t, 0), m.totpCode(t, 1)) }

	type body = map[string]any
	for _, tc := range []struct {
		name       string
		body       func() body
		wantStatus int
		wantType   string
	}{
		{"missing code", func() body {
			b := m.totpBody("", body{"intermediate_session_token": m.ist(t)})
			delete(b, "code")
			return b
		}, 400, "bad_request"},
		{"empty code", func() body { return m.totpBody("", body{"intermediate_session_token": m.ist(t)}) }, 400, "bad_request"},
		{"code is a number", func() body { return m.totpBody("", body{"code": 123456, "intermediate_session_token": m.ist(t)}) }, 400, "bad_request"},
		{"missing member_id", func() body {
			b := m.totpBody(m.totpCode(t, 0), body{"intermediate_session_token": m.ist(t)})
			delete(b, "member_id")
			return b
		}, 400, "bad_request"},
		{"set_mfa_enrollment a bool", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"intermediate_session_token": m.ist(t), "set_mfa_enrollment": true})
		}, 400, "bad_request"},
		{"set_default_mfa a string", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"intermediate_session_token": m.ist(t), "set_default_mfa": "true"})
		}, 400, "bad_request"},
		{"duration 4", func() body { return m.totpBody(m.totpCode(t, 0), body{"session_duration_minutes": 4}) }, 400, "invalid_session_duration_minutes"},
		{"reserved claim", func() body { return m.totpBody(m.totpCode(t, 0), body{"session_custom_claims": body{"exp": 1}}) }, 400, "reserved_claims_in_custom_claims"},
		{"set_mfa_enrollment out of range beats a missing session argument", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"set_mfa_enrollment": "maybe"})
		}, 400, "invalid_request_value"},
		{"no session argument", func() body { return m.totpBody(m.totpCode(t, 0), nil) }, 400, "invalid_session_missing_primary_factor"},
		{"IST and session JWT", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"intermediate_session_token": m.ist(t), "session_jwt": otherSession.JWT})
		}, 400, "too_many_session_arguments"},
		{"unknown organization", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"organization_id": "nope", "intermediate_session_token": m.ist(t)})
		}, 404, "organization_not_found"},
		{"unknown member", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"member_id": "nope", "intermediate_session_token": m.ist(t)})
		}, 404, "member_not_found"},
		{"organization restricts MFA to SMS", func() body {
			return rm.totpBody(rm.totpCode(t, 0), body{"intermediate_session_token": rm.ist(t)})
		}, 403, "operation_restricted_by_organization_mfa_methods"},
		{"restriction beats a missing registration", func() body {
			return rmNoTOTP.totpBody("123456", body{"intermediate_session_token": rmNoTOTP.ist(t)})
		}, 403, "operation_restricted_by_organization_mfa_methods"},
		{"no registration", func() body { return noTOTP.totpBody("123456", body{"intermediate_session_token": noTOTP.ist(t)}) }, 404, "totp_not_found"},
		{"no registration beats an unknown IST", func() body {
			return noTOTP.totpBody("123456", body{"intermediate_session_token": wellFormedToken})
		}, 404, "totp_not_found"},
		{"unknown IST", func() body { return m.totpBody(m.totpCode(t, 0), body{"intermediate_session_token": wellFormedToken}) }, 404, "intermediate_session_not_found"},
		{"IST of another organization", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"intermediate_session_token": m2.ist(t)})
		}, 400, "invalid_intermediate_session_token_for_organization"},
		{"IST of another member", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"intermediate_session_token": other.ist(t)})
		}, 400, "member_session_member_id_mismatch"},
		{"session of another member", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"session_token": otherSession.Token})
		}, 400, "member_session_member_id_mismatch"},
		{"unknown session token", func() body { return m.totpBody(m.totpCode(t, 0), body{"session_token": wellFormedToken}) }, 404, "session_not_found"},
		{"session error beats oversized claims", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"session_token": wellFormedToken, "session_custom_claims": big})
		}, 404, "session_not_found"},
		{"oversized claims", func() body {
			return m.totpBody(m.totpCode(t, 0), body{"intermediate_session_token": m.ist(t), "session_custom_claims": big})
		}, 400, "custom_claims_too_large"},
		{"oversized claims beat the lock", func() body {
			return locked.totpBody(locked.totpCode(t, 0), body{"intermediate_session_token": locked.ist(t), "session_custom_claims": big})
		}, 400, "custom_claims_too_large"},
		{"session error beats the lock", func() body {
			return locked.totpBody(locked.totpCode(t, 0), body{"session_token": wellFormedToken})
		}, 404, "session_not_found"},
		{"locked member, valid code", func() body {
			return locked.totpBody(locked.totpCode(t, 0), body{"intermediate_session_token": locked.ist(t)})
		}, 429, "user_lock_limit_reached"},
		{"the lock beats a malformed code", func() body {
			return locked.totpBody("12", body{"intermediate_session_token": locked.ist(t)})
		}, 429, "user_lock_limit_reached"},
		{"a recovery code", func() body { return m.totpBody(m.Codes[0], body{"intermediate_session_token": m.ist(t)}) }, 400, "recovery_code_used_as_totp_code"},
		{"a recovery code as typed", func() body {
			return m.totpBody(strings.ToUpper(strings.ReplaceAll(m.Codes[0], "-", " ")), body{"intermediate_session_token": m.ist(t)})
		}, 400, "recovery_code_used_as_totp_code"},
		{"twelve digits", func() body { return m.totpBody("123456789012", body{"intermediate_session_token": m.ist(t)}) }, 400, "recovery_code_used_as_totp_code"},
		{"a 16-symbol recovery code", func() body {
			return m.totpBody("abcd-efgh-jkmn-pqrs", body{"intermediate_session_token": m.ist(t)})
		}, 400, "recovery_code_used_as_totp_code"},
		{"five digits", func() body { return m.totpBody("12345", body{"intermediate_session_token": m.ist(t)}) }, 400, "invalid_totp_code"},
		{"seven digits", func() body { return m.totpBody("1234567", body{"intermediate_session_token": m.ist(t)}) }, 400, "invalid_totp_code"},
		{"a letter", func() body { return m.totpBody("12345a", body{"intermediate_session_token": m.ist(t)}) }, 400, "invalid_totp_code"},
		{"inner space", func() body { return m.totpBody("123 456", body{"intermediate_session_token": m.ist(t)}) }, 400, "invalid_totp_code"},
		{"full-width digits", func() body { return m.totpBody("１２３４５６", body{"intermediate_session_token": m.ist(t)}) }, 400, "invalid_totp_code"},
		{"wrong code", func() body { return m.totpBody(wrong(m), body{"intermediate_session_token": m.ist(t)}) }, 401, "unable_to_authenticate_totp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.post(t, totpAuthPath, tc.body()).fails(t, tc.wantStatus, tc.wantType)
		})
	}
	t.Run("none of that spent the current step", func(t *testing.T) {
		s.post(t, totpAuthPath, m.totpBody(" "+m.totpCode(t, 0)+"\n", map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
	})
}

// TestTOTPAuthenticate: the window, replays and the member effects of §6.4.
func TestTOTPAuthenticate(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	now := s.Clock.Now()

	r := s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, -1), map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
	r.want(t, "member_id", m.ID).
		want(t, "member.mfa_enrolled", true).
		want(t, "member.default_mfa_method", "totp"). // it was ""
		want(t, "member.totp_registration_id", m.TOTPID).
		want(t, "member_session.expires_at", ts(now.Add(time.Hour))).
		want(t, "member_session.authentication_factors.0.type", "password").
		want(t, "member_session.authentication_factors.1.type", "totp").
		want(t, "member_session.authentication_factors.1.delivery_method", "authenticator_app").
		want(t, "member_session.authentication_factors.1.authenticator_app_factor", map[string]any{"totp_id": m.TOTPID})
	if _, has := r.Body["recovery_codes_remaining"]; has {
		t.Error("TOTP authenticate answers recovery_codes_remaining")
	}
	if !tokenRe.MatchString(r.str(t, "session_token")) {
		t.Errorf("session_token %q", r.str(t, "session_token"))
	}
	token := r.str(t, "session_token")

	// Steps: -1 was accepted; 0 and +1 are still fresh, -1 and older are replays.
	with := func() map[string]any { return map[string]any{"intermediate_session_token": m.ist(t)} }
	s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), with())).ok(t)
	s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 1), map[string]any{"session_token": token})).ok(t).want(t, "session_token", token)
	for i := 0; i < 12; i++ { // replays are not counted: twelve of them do not lock
		s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, int64(i%3)-1), with())).fails(t, 400, "totp_code_already_authenticated")
	}
	m.state(t).want(t, "member.is_locked", false)
	s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 2), with())).fails(t, 401, "unable_to_authenticate_totp")
	s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, -2), with())).fails(t, 401, "unable_to_authenticate_totp")
	s.Clock.Advance(60 * time.Second) // step +2 is now +0, fresh
	s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"session_jwt": r.str(t, "session_jwt")})).ok(t).
		want(t, "session_token", "").
		want(t, "member_session.authentication_factors.1.last_authenticated_at", ts(s.Clock.Now())).
		want(t, "member_session.authentication_factors.1.created_at", ts(now))
	if n := len(m.unusedCodes(t)); n != 10 {
		t.Errorf("TOTP logins changed the recovery codes: %d left", n)
	}

	t.Run("set_mfa_enrollment and set_default_mfa", func(t *testing.T) {
		opt := s.createOrg(t, nil)
		// A verified phone allows default_mfa_method sms_otp.
		m := s.newMember(t, opt, map[string]any{"mfa_phone_number": "+15551231234", "set_phone_number_verified": true})
		m.enroll(t, nil)
		s.put(t, m.path(), map[string]any{"default_mfa_method": "sms_otp"}).ok(t).want(t, "member.default_mfa_method", "sms_otp")
		sess := m.passwordAuth(t, nil).ok(t).str(t, "session_token") // OPTIONAL, not enrolled: a session
		s.Clock.Advance(30 * time.Second)
		s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"session_token": sess, "set_mfa_enrollment": "enroll"})).ok(t).
			want(t, "member.mfa_enrolled", true).
			want(t, "member.default_mfa_method", "sms_otp")
		s.Clock.Advance(30 * time.Second)
		s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"session_token": sess, "set_mfa_enrollment": "unenroll", "set_default_mfa": true})).ok(t).
			want(t, "member.mfa_enrolled", false).
			want(t, "member.default_mfa_method", "totp")
		m.state(t).want(t, "member.mfa_enrolled", false).want(t, "member.default_mfa_method", "totp")
	})
	t.Run("unenroll under REQUIRED_FOR_ALL stays enrolled", func(t *testing.T) {
		m := s.enrolledMember(t, o, nil)
		s.Clock.Advance(30 * time.Second)
		s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"intermediate_session_token": m.ist(t), "set_mfa_enrollment": "unenroll"})).ok(t).
			want(t, "member.mfa_enrolled", true)
	})
	t.Run("break-glass member of a restricting organization", func(t *testing.T) {
		restricted := s.createOrg(t, map[string]any{"mfa_policy": "REQUIRED_FOR_ALL", "mfa_methods": "RESTRICTED", "allowed_mfa_methods": []string{"sms_otp"}})
		bg := s.enrolledMember(t, restricted, map[string]any{})
		s.put(t, bg.path(), map[string]any{"is_breakglass": true}).ok(t)
		s.post(t, totpAuthPath, bg.totpBody(bg.totpCode(t, 0), map[string]any{"intermediate_session_token": bg.ist(t)})).ok(t)
		s.post(t, recoverPath, bg.recoverBody(bg.Codes[0], map[string]any{"intermediate_session_token": bg.ist(t)})).ok(t)
		allowed := s.createOrg(t, map[string]any{"mfa_policy": "REQUIRED_FOR_ALL", "mfa_methods": "RESTRICTED", "allowed_mfa_methods": []string{"totp"}})
		am := s.enrolledMember(t, allowed, nil)
		s.post(t, recoverPath, am.recoverBody(am.Codes[0], map[string]any{"intermediate_session_token": am.ist(t)})).ok(t)
	})
}

// TestTOTPCreate: POST /v1/b2b/totp (§6.4). Each success renders a QR image, so there are few.
func TestTOTPCreate(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	fresh := s.newMember(t, o, nil)
	enrolled := s.enrolledMember(t, o, nil)
	other := s.newMember(t, o, nil)
	o2 := s.mfaOrg(t)
	m2 := s.newMember(t, o2, nil)
	restricted := s.createOrg(t, map[string]any{"mfa_methods": "RESTRICTED", "allowed_mfa_methods": []string{"sms_otp"}})
	rm := s.newMember(t, restricted, nil)
	rmEnrolled := s.enrolledMember(t, restricted, nil)
	ref := func(m *member, extra map[string]any) map[string]any {
		b := map[string]any{"organization_id": m.Org.ID, "member_id": m.ID}
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
		{"missing organization_id", map[string]any{"member_id": fresh.ID}, 400, "bad_request"},
		{"missing member_id", map[string]any{"organization_id": o.ID}, 400, "bad_request"},
		{"expiration_minutes quoted", ref(fresh, map[string]any{"expiration_minutes": "10"}), 400, "bad_request"},
		{"expiration_minutes 4", ref(fresh, map[string]any{"expiration_minutes": 4}), 400, "invalid_request_value"},
		{"expiration_minutes 1441", ref(fresh, map[string]any{"expiration_minutes": 1441}), 400, "invalid_request_value"},
		{"expiration_minutes 10.5", ref(fresh, map[string]any{"expiration_minutes": 10.5}), 400, "invalid_request_value"},
		{"expiration out of range beats too many session arguments", ref(fresh, map[string]any{"expiration_minutes": 0, "session_token": wellFormedToken, "session_jwt": "x"}), 400, "invalid_request_value"},
		{"two session arguments", ref(fresh, map[string]any{"session_token": wellFormedToken, "session_jwt": "x"}), 400, "too_many_session_arguments"},
		{"too many session arguments beats an unknown organization", map[string]any{"organization_id": "nope", "member_id": "nope", "session_token": wellFormedToken, "intermediate_session_token": wellFormedToken}, 400, "too_many_session_arguments"},
		{"unknown organization", map[string]any{"organization_id": "nope", "member_id": fresh.ID}, 404, "organization_not_found"},
		{"unknown member", map[string]any{"organization_id": o.ID, "member_id": m2.ID}, 404, "member_not_found"},
		{"organization restricts MFA to SMS", ref(rm, nil), 403, "operation_restricted_by_organization_mfa_methods"},
		{"restriction beats an existing registration", ref(rmEnrolled, nil), 403, "operation_restricted_by_organization_mfa_methods"},
		{"existing registration", ref(enrolled, nil), 400, "active_totp_exists"},
		{"existing registration beats an unknown IST", ref(enrolled, map[string]any{"intermediate_session_token": wellFormedToken}), 400, "active_totp_exists"},
		{"unknown IST", ref(fresh, map[string]any{"intermediate_session_token": wellFormedToken}), 404, "intermediate_session_not_found"},
		{"IST of another member", ref(fresh, map[string]any{"intermediate_session_token": other.ist(t)}), 400, "member_session_member_id_mismatch"},
		{"IST of another organization", ref(fresh, map[string]any{"intermediate_session_token": m2.ist(t)}), 400, "invalid_intermediate_session_token_for_organization"},
		{"unknown session token", ref(fresh, map[string]any{"session_token": wellFormedToken}), 404, "session_not_found"},
		{"session JWT that is not a JWT", ref(fresh, map[string]any{"session_jwt": "e30.e30.e30"}), 400, "unable_to_parse_session_jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.post(t, totpCreatePath, tc.body).fails(t, tc.wantStatus, tc.wantType)
		})
	}
	fresh.state(t).want(t, "member.totp_registration_id", "")

	t.Run("created", func(t *testing.T) {
		r := s.post(t, totpCreatePath, ref(fresh, map[string]any{"intermediate_session_token": fresh.ist(t), "expiration_minutes": 1440})).ok(t)
		regID := r.str(t, "totp_registration_id")
		sec := r.str(t, "secret")
		r.want(t, "member_id", fresh.ID).
			want(t, "member.totp_registration_id", regID).
			want(t, "organization.organization_id", o.ID)
		if !idPattern("member-totp").MatchString(regID) {
			t.Errorf("totp_registration_id %q", regID)
		}
		if !totpSecretRe.MatchString(sec) {
			t.Errorf("secret %q is not 32 base32 characters", sec)
		}
		checkQRCode(t, r.str(t, "qr_code"))
		codes := r.strings(t, "recovery_codes")
		if len(codes) != 10 {
			t.Fatalf("%d recovery codes", len(codes))
		}
		for _, c := range codes {
			if !codeRe.MatchString(c) {
				t.Errorf("code %q", c)
			}
		}
		fresh.state(t).want(t, "member.totp_registration_id", regID)
		s.get(t, fresh.codesPath()).ok(t).want(t, "recovery_codes", codes)
		// The registration is active at once: its codes log in.
		fresh.TOTPSecret, fresh.TOTPID, fresh.Codes = sec, regID, codes
		s.Clock.Advance(30 * time.Second)
		s.post(t, totpAuthPath, fresh.totpBody(fresh.totpCode(t, 0), map[string]any{"intermediate_session_token": fresh.ist(t)})).ok(t).
			want(t, "member_session.authentication_factors.1.authenticator_app_factor.totp_id", regID)
		s.post(t, totpCreatePath, ref(fresh, nil)).fails(t, 400, "active_totp_exists")
	})
	t.Run("created with the member's own session, by external ids", func(t *testing.T) {
		ext := s.createOrg(t, map[string]any{"organization_external_id": "totp-create-ext"})
		m := s.newMember(t, ext, map[string]any{"external_id": "member-ext-1"})
		sess := m.session(t, nil) // OPTIONAL organization: password alone
		r := s.post(t, totpCreatePath, map[string]any{"organization_id": "totp-create-ext", "member_id": "member-ext-1", "session_jwt": sess.JWT}).ok(t)
		r.want(t, "member_id", m.ID).want(t, "organization.organization_id", ext.ID)
		s.post(t, "/v1/b2b/sessions/authenticate", map[string]any{"session_token": sess.Token}).ok(t)
	})
}

func checkQRCode(t testing.TB, qr string) {
	t.Helper()
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(qr, prefix) {
		t.Fatalf("qr_code %.40q…", qr)
	}
	b, err := base64.StdEncoding.DecodeString(qr[len(prefix):])
	if err != nil {
		t.Fatalf("qr_code is not base64: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("qr_code is not a PNG: %v", err)
	}
}

// TestTOTPMigrate: POST /v1/b2b/totp/migrate (§6.4).
func TestTOTPMigrate(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.newMember(t, o, nil)
	enrolled := s.enrolledMember(t, o, nil)
	const sec = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	ref := func(extra map[string]any) map[string]any {
		b := map[string]any{"organization_id": o.ID, "member_id": m.ID, "secret": sec}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	many := make([]string, 21)
	for i := range many {
		many[i] = strings.Repeat(string("0123456789abcdefghjkm"[i]), 12)
	}

	for _, tc := range []struct {
		name       string
		body       map[string]any
		wantStatus int
		wantType   string
	}{
		{"missing secret", ref(map[string]any{"secret": nil}), 400, "bad_request"},
		{"empty secret", ref(map[string]any{"secret": ""}), 400, "bad_request"},
		{"missing member_id", ref(map[string]any{"member_id": nil}), 400, "bad_request"},
		{"secret a number", ref(map[string]any{"secret": 42}), 400, "bad_request"},
		{"recovery_codes a string", ref(map[string]any{"recovery_codes": "abcd-efgh-jkmn"}), 400, "bad_request"},
		{"recovery_codes holding a number", ref(map[string]any{"recovery_codes": []any{1}}), 400, "bad_request"},
		{"secret too short", ref(map[string]any{"secret": "JBSWY3DPEHPK3PX"}), 400, "invalid_request_value"},
		{"secret not base32", ref(map[string]any{"secret": "JBSWY3DPEHPK3PX1"}), 400, "invalid_request_value"},
		{"secret with punctuation", ref(map[string]any{"secret": "JBSWY3DP-EHPK3PXP"}), 400, "invalid_request_value"},
		{"bad secret beats an unknown organization", ref(map[string]any{"secret": "!!", "organization_id": "nope"}), 400, "invalid_request_value"},
		{"21 recovery codes", ref(map[string]any{"recovery_codes": many}), 400, "invalid_recovery_code"},
		{"duplicate recovery codes once normalised", ref(map[string]any{"recovery_codes": []string{"abcd-efgh-jkmn", "ABCD EFGH JKMN"}}), 400, "invalid_recovery_code"},
		{"a code of 11 symbols", ref(map[string]any{"recovery_codes": []string{"abcd-efgh-jkm"}}), 400, "invalid_recovery_code"},
		{"six digits", ref(map[string]any{"recovery_codes": []string{"123456"}}), 400, "invalid_recovery_code"},
		{"bad codes beat an unknown organization", ref(map[string]any{"recovery_codes": []string{"x"}, "organization_id": "nope"}), 400, "invalid_recovery_code"},
		{"unknown organization", ref(map[string]any{"organization_id": "nope"}), 404, "organization_not_found"},
		{"unknown member", ref(map[string]any{"member_id": "nope"}), 404, "member_not_found"},
		{"existing registration", ref(map[string]any{"member_id": enrolled.ID}), 400, "active_totp_exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.post(t, totpMigratePath, tc.body).fails(t, tc.wantStatus, tc.wantType)
		})
	}
	m.state(t).want(t, "member.totp_registration_id", "")

	t.Run("imported secret and codes", func(t *testing.T) {
		r := s.post(t, totpMigratePath, ref(map[string]any{
			"secret":         "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp====",
			"recovery_codes": []string{" ABCD-EFGH-JKMN ", "pqrs tvwx yz01", "abcd-efgh-jkmn-pqrs"},
		})).ok(t)
		r.want(t, "member_id", m.ID).
			want(t, "recovery_codes", []string{"abcd-efgh-jkmn", "pqrs tvwx yz01", "abcd-efgh-jkmn-pqrs"}).
			want(t, "member.totp_registration_id", r.str(t, "totp_registration_id"))
		if _, has := r.Body["secret"]; has {
			t.Error("migrate echoes the secret")
		}
		s.get(t, m.codesPath()).ok(t).want(t, "recovery_codes", []string{"abcd-efgh-jkmn", "pqrs tvwx yz01", "abcd-efgh-jkmn-pqrs"})
		m.TOTPSecret = sec
		s.Clock.Advance(30 * time.Second)
		s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
		s.post(t, recoverPath, m.recoverBody("PQRS-TVWX-YZ01", map[string]any{"intermediate_session_token": m.ist(t)})).ok(t).
			want(t, "recovery_codes_remaining", 2)
	})
	t.Run("no codes or [] mint ten", func(t *testing.T) {
		for _, codes := range []any{nil, []string{}} {
			m := s.newMember(t, o, nil)
			body := map[string]any{"organization_id": o.ID, "member_id": m.ID, "secret": sec, "recovery_codes": codes}
			got := s.post(t, totpMigratePath, body).ok(t).strings(t, "recovery_codes")
			if len(got) != 10 {
				t.Fatalf("%d codes", len(got))
			}
			for _, c := range got {
				if !codeRe.MatchString(c) {
					t.Errorf("code %q", c)
				}
			}
		}
	})
}

// TestTOTPStepsOnceEach: §6.4 accepts the current step ±1 and "each step at most once per
// registration". A step of the window that was never accepted is not a replay, even when a
// newer step was accepted first (a phone clock running a step fast, then corrected).
func TestTOTPStepsOnceEach(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 1), map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
	s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
	s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"intermediate_session_token": m.ist(t)})).fails(t, 400, "totp_code_already_authenticated")
	s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 1), map[string]any{"intermediate_session_token": m.ist(t)})).fails(t, 400, "totp_code_already_authenticated")
}
