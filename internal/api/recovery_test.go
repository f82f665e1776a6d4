package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const recoverPath = "/v1/b2b/recovery_codes/recover"
const rotatePath = "/v1/b2b/recovery_codes/rotate"

var codeRe = regexp.MustCompile(`^[0-9abcdefghjkmnpqrstvwxyz]{4}-[0-9abcdefghjkmnpqrstvwxyz]{4}-[0-9abcdefghjkmnpqrstvwxyz]{4}$`)

// wellFormedToken has the shape of a token (§4) but was never issued.
const wellFormedToken = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// lock makes the member fail ten counted attempts; the tenth is answered 429 (§6.0.3).
func (m *member) lock(t testing.TB) *response {
	t.Helper()
	ist := m.ist(t)
	for i := 1; i < 10; i++ {
		m.s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_recovery_code")
	}
	return m.s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 429, "user_lock_limit_reached")
}

// TestRecoverCheckOrder walks §6.1's error list for recover. Each case that names two faults
// expects the one the contract checks first.
func TestRecoverCheckOrder(t *testing.T) {
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
	m2Session := m2.session(t, nil)
	big := map[string]any{"blob": strings.Repeat("x", 4100)}

	type body = map[string]any
	for _, tc := range []struct {
		name       string
		body       func() body
		wantStatus int
		wantType   string
	}{
		{"missing organization_id", func() body {
			b := m.recoverBody(m.Codes[0], body{"intermediate_session_token": m.ist(t)})
			delete(b, "organization_id")
			return b
		}, 400, "bad_request"},
		{"empty organization_id", func() body {
			return m.recoverBody(m.Codes[0], body{"organization_id": "", "intermediate_session_token": m.ist(t)})
		}, 400, "bad_request"},
		{"missing member_id", func() body {
			b := m.recoverBody(m.Codes[0], body{"intermediate_session_token": m.ist(t)})
			delete(b, "member_id")
			return b
		}, 400, "bad_request"},
		{"missing recovery_code", func() body {
			b := m.recoverBody("", body{"intermediate_session_token": m.ist(t)})
			delete(b, "recovery_code")
			return b
		}, 400, "bad_request"},
		{"empty recovery_code", func() body { return m.recoverBody("", body{"intermediate_session_token": m.ist(t)}) }, 400, "bad_request"},
		{"recovery_code is a number", func() body { return m.recoverBody("", body{"recovery_code": 123456789012}) }, 400, "bad_request"},
		{"duration is a quoted number", func() body {
			return m.recoverBody(m.Codes[0], body{"intermediate_session_token": m.ist(t), "session_duration_minutes": "60"})
		}, 400, "bad_request"},
		{"custom claims are an array", func() body {
			return m.recoverBody(m.Codes[0], body{"intermediate_session_token": m.ist(t), "session_custom_claims": []any{1}})
		}, 400, "bad_request"},
		{"missing code beats a bad duration", func() body {
			return m.recoverBody("", body{"intermediate_session_token": m.ist(t), "session_duration_minutes": 4})
		}, 400, "bad_request"},
		{"bad duration beats a missing session argument", func() body { return m.recoverBody(m.Codes[0], body{"session_duration_minutes": 4}) }, 400, "invalid_session_duration_minutes"},
		{"reserved claim beats a missing session argument", func() body {
			return m.recoverBody(m.Codes[0], body{"session_custom_claims": body{"sub": "someone-else"}})
		}, 400, "reserved_claims_in_custom_claims"},
		{"stytch claim beats a missing session argument", func() body {
			return m.recoverBody(m.Codes[0], body{"session_custom_claims": body{"https://stytch.com/session": body{}}})
		}, 400, "stytch_claims_in_custom_claims"},
		{"no session argument", func() body { return m.recoverBody(m.Codes[0], nil) }, 400, "invalid_session_missing_primary_factor"},
		{"empty session arguments are absent", func() body {
			return m.recoverBody(m.Codes[0], body{"intermediate_session_token": "", "session_token": "", "session_jwt": ""})
		}, 400, "invalid_session_missing_primary_factor"},
		{"no session argument beats an unknown organization", func() body { return m.recoverBody(m.Codes[0], body{"organization_id": "nope"}) }, 400, "invalid_session_missing_primary_factor"},
		{"IST and session token", func() body {
			return m.recoverBody(m.Codes[0], body{"intermediate_session_token": m.ist(t), "session_token": otherSession.Token})
		}, 400, "too_many_session_arguments"},
		{"session token and JWT", func() body {
			return m.recoverBody(m.Codes[0], body{"session_token": otherSession.Token, "session_jwt": otherSession.JWT})
		}, 400, "too_many_session_arguments"},
		{"too many arguments beats an unknown organization", func() body {
			return m.recoverBody(m.Codes[0], body{"organization_id": "nope", "intermediate_session_token": wellFormedToken, "session_token": wellFormedToken})
		}, 400, "too_many_session_arguments"},
		{"unknown organization", func() body {
			return m.recoverBody(m.Codes[0], body{"organization_id": "organization-test-00000000-0000-4000-8000-000000000000", "intermediate_session_token": m.ist(t)})
		}, 404, "organization_not_found"},
		{"unknown organization beats an unknown member", func() body {
			return m.recoverBody(m.Codes[0], body{"organization_id": "nope", "member_id": "nope", "intermediate_session_token": m.ist(t)})
		}, 404, "organization_not_found"},
		{"unknown member", func() body {
			return m.recoverBody(m.Codes[0], body{"member_id": "member-test-00000000-0000-4000-8000-000000000000", "intermediate_session_token": m.ist(t)})
		}, 404, "member_not_found"},
		{"member of another organization", func() body {
			return m.recoverBody(m.Codes[0], body{"member_id": m2.ID, "intermediate_session_token": m.ist(t)})
		}, 404, "member_not_found"},
		{"unknown member beats an unknown IST", func() body {
			return m.recoverBody(m.Codes[0], body{"member_id": "nope", "intermediate_session_token": wellFormedToken})
		}, 404, "member_not_found"},
		{"organization restricts MFA to SMS", func() body {
			return rm.recoverBody(rm.Codes[0], body{"intermediate_session_token": rm.ist(t)})
		}, 403, "operation_restricted_by_organization_mfa_methods"},
		{"restriction beats a missing TOTP registration", func() body {
			return rmNoTOTP.recoverBody("abcd-efgh-jkmn", body{"intermediate_session_token": rmNoTOTP.ist(t)})
		}, 403, "operation_restricted_by_organization_mfa_methods"},
		{"no TOTP registration", func() body {
			return noTOTP.recoverBody("abcd-efgh-jkmn", body{"intermediate_session_token": noTOTP.ist(t)})
		}, 400, "no_active_recovery_code_backed_factor"},
		{"no TOTP registration beats an unknown IST", func() body {
			return noTOTP.recoverBody("abcd-efgh-jkmn", body{"intermediate_session_token": wellFormedToken})
		}, 400, "no_active_recovery_code_backed_factor"},
		{"unknown IST", func() body { return m.recoverBody(m.Codes[0], body{"intermediate_session_token": wellFormedToken}) }, 404, "intermediate_session_not_found"},
		{"IST of another shape", func() body { return m.recoverBody(m.Codes[0], body{"intermediate_session_token": "not-a-token"}) }, 404, "intermediate_session_not_found"},
		{"IST of another organization", func() body {
			return m.recoverBody(m.Codes[0], body{"intermediate_session_token": m2.ist(t)})
		}, 400, "invalid_intermediate_session_token_for_organization"},
		{"IST of another member", func() body {
			return m.recoverBody(m.Codes[0], body{"intermediate_session_token": other.ist(t)})
		}, 400, "member_session_member_id_mismatch"},
		{"session token of another member", func() body {
			return m.recoverBody(m.Codes[0], body{"session_token": otherSession.Token})
		}, 400, "member_session_member_id_mismatch"},
		{"session JWT of another member", func() body {
			return m.recoverBody(m.Codes[0], body{"session_jwt": otherSession.JWT})
		}, 400, "member_session_member_id_mismatch"},
		{"session of another organization", func() body {
			return m.recoverBody(m.Codes[0], body{"session_token": m2Session.Token})
		}, 400, "member_session_member_id_mismatch"},
		{"unknown session token", func() body { return m.recoverBody(m.Codes[0], body{"session_token": wellFormedToken}) }, 404, "session_not_found"},
		{"session JWT that is not a JWT", func() body { return m.recoverBody(m.Codes[0], body{"session_jwt": "not.a.jwt"}) }, 400, "unable_to_parse_session_jwt"},
		{"IST error beats oversized claims", func() body {
			return m.recoverBody(m.Codes[0], body{"intermediate_session_token": wellFormedToken, "session_custom_claims": big})
		}, 404, "intermediate_session_not_found"},
		{"oversized claims", func() body {
			return m.recoverBody(m.Codes[0], body{"intermediate_session_token": m.ist(t), "session_custom_claims": big})
		}, 400, "custom_claims_too_large"},
		{"oversized claims beat the lock", func() body {
			return locked.recoverBody(locked.Codes[0], body{"intermediate_session_token": locked.ist(t), "session_custom_claims": big})
		}, 400, "custom_claims_too_large"},
		{"IST error beats the lock", func() body {
			return locked.recoverBody(locked.Codes[0], body{"intermediate_session_token": wellFormedToken})
		}, 404, "intermediate_session_not_found"},
		{"locked member, valid code", func() body {
			return locked.recoverBody(locked.Codes[0], body{"intermediate_session_token": locked.ist(t)})
		}, 429, "user_lock_limit_reached"},
		{"the lock beats a malformed code", func() body {
			return locked.recoverBody("x", body{"intermediate_session_token": locked.ist(t)})
		}, 429, "user_lock_limit_reached"},
		{"six digits", func() body { return m.recoverBody("123456", body{"intermediate_session_token": m.ist(t)}) }, 400, "totp_code_used_as_recovery_code"},
		{"six digits with separators", func() body { return m.recoverBody(" 123-456 ", body{"intermediate_session_token": m.ist(t)}) }, 400, "totp_code_used_as_recovery_code"},
		{"eleven symbols", func() body { return m.recoverBody("abcd-efgh-jkm", body{"intermediate_session_token": m.ist(t)}) }, 400, "invalid_recovery_code"},
		{"thirteen symbols", func() body { return m.recoverBody("abcd-efgh-jkmnp", body{"intermediate_session_token": m.ist(t)}) }, 400, "invalid_recovery_code"},
		{"a symbol outside 0-9a-z", func() body { return m.recoverBody("abcd-efgh-jkm_", body{"intermediate_session_token": m.ist(t)}) }, 400, "invalid_recovery_code"},
		{"a non-ASCII letter", func() body { return m.recoverBody("abcd-efgh-jkmä", body{"intermediate_session_token": m.ist(t)}) }, 400, "invalid_recovery_code"},
		{"seven digits", func() body { return m.recoverBody("1234567", body{"intermediate_session_token": m.ist(t)}) }, 400, "invalid_recovery_code"},
		{"wrong code", func() body { return m.recoverBody("zzzz-zzzz-zzzz", body{"intermediate_session_token": m.ist(t)}) }, 401, "unable_to_authenticate_recovery_code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.post(t, recoverPath, tc.body()).fails(t, tc.wantStatus, tc.wantType)
		})
	}
	// None of the failures above spent a code.
	if got := m.unusedCodes(t); len(got) != 10 {
		t.Errorf("after the failures GET lists %d codes, want 10", len(got))
	}
}

// TestRecoverWithIST is the happy path of §6.1 and §6.0.1 for an intermediate session.
func TestRecoverWithIST(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	now := s.Clock.Now()
	pw := m.passwordAuth(t, nil).ok(t)
	ist := pw.str(t, "intermediate_session_token")
	if m.state(t).at("member.mfa_enrolled") != false {
		t.Fatal("member enrolled before any MFA")
	}
	code := m.Codes[3]

	r := s.post(t, recoverPath, m.recoverBody(code, map[string]any{"intermediate_session_token": ist})).ok(t)
	r.want(t, "member_id", m.ID).
		want(t, "recovery_codes_remaining", 9).
		want(t, "member.member_id", m.ID).
		want(t, "member.mfa_enrolled", true). // REQUIRED_FOR_ALL
		want(t, "member.is_locked", false).
		want(t, "member.lock_created_at", nil).
		want(t, "organization.organization_id", o.ID).
		want(t, "member_session.member_id", m.ID).
		want(t, "member_session.organization_id", o.ID).
		want(t, "member_session.organization_slug", o.Slug).
		want(t, "member_session.started_at", ts(now)).
		want(t, "member_session.expires_at", ts(now.Add(60*time.Minute))).
		want(t, "member_session.custom_claims", map[string]any{}).
		want(t, "member_session.roles", []string{"stytch_member"})
	if _, has := r.Body["member_device"]; has {
		t.Error("member_device sent without a device lookup")
	}
	if !tokenRe.MatchString(r.str(t, "session_token")) {
		t.Errorf("session_token %q", r.str(t, "session_token"))
	}
	if !idPattern("member-session").MatchString(r.str(t, "member_session.member_session_id")) {
		t.Errorf("member_session_id %q", r.str(t, "member_session.member_session_id"))
	}
	// The IST's password factor, then the new one.
	factors := r.list(t, "member_session.authentication_factors")
	if len(factors) != 2 {
		t.Fatalf("factors %v", factors)
	}
	r.want(t, "member_session.authentication_factors.0.type", "password").
		want(t, "member_session.authentication_factors.0.delivery_method", "knowledge").
		want(t, "member_session.authentication_factors.1.type", "recovery_codes").
		want(t, "member_session.authentication_factors.1.delivery_method", "recovery_code").
		want(t, "member_session.authentication_factors.1.last_authenticated_at", ts(now))
	if id := r.str(t, "member_session.authentication_factors.1.recovery_code_factor.totp_recovery_code_id"); !idPattern("member-totp-recovery-code").MatchString(id) {
		t.Errorf("totp_recovery_code_id %q", id)
	}
	claims := verifyJWT(t, s, r.str(t, "session_jwt"))
	if claims["sub"] != m.ID || sessionClaim(claims, "id") != r.str(t, "member_session.member_session_id") {
		t.Errorf("JWT names another session: %v", claims)
	}

	t.Run("the code is spent", func(t *testing.T) {
		left := m.unusedCodes(t)
		if len(left) != 9 || slices.Contains(left, code) {
			t.Errorf("GET lists %v after spending %s", left, code)
		}
		s.post(t, recoverPath, m.recoverBody(code, map[string]any{"intermediate_session_token": m.ist(t)})).fails(t, 401, "unable_to_authenticate_recovery_code")
	})
	t.Run("the IST is single use", func(t *testing.T) {
		s.post(t, recoverPath, m.recoverBody(m.Codes[4], map[string]any{"intermediate_session_token": ist})).fails(t, 404, "intermediate_session_not_found")
	})
	t.Run("a failed call leaves the IST usable", func(t *testing.T) {
		ist := m.ist(t)
		s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_recovery_code")
		s.post(t, recoverPath, m.recoverBody(m.Codes[5], map[string]any{"intermediate_session_token": ist, "session_duration_minutes": 30})).ok(t).
			want(t, "recovery_codes_remaining", 8).
			want(t, "member_session.expires_at", ts(s.Clock.Now().Add(30*time.Minute)))
	})
	t.Run("by slug and external id, answered with canonical ids", func(t *testing.T) {
		ext := fmt.Sprintf("rec-alias-%d", s.next())
		s.put(t, m.path(), map[string]any{"external_id": ext}).ok(t)
		s.post(t, recoverPath, map[string]any{"organization_id": o.Slug, "member_id": ext, "recovery_code": m.Codes[6], "intermediate_session_token": m.ist(t)}).ok(t).
			want(t, "member_id", m.ID).
			want(t, "member.member_id", m.ID).
			want(t, "organization.organization_id", o.ID).
			want(t, "member_session.member_id", m.ID).
			want(t, "member_session.organization_id", o.ID)
	})
	t.Run("codes remaining counts down to zero", func(t *testing.T) {
		var last *response
		for _, c := range m.unusedCodes(t) {
			last = s.post(t, recoverPath, m.recoverBody(c, map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
		}
		last.want(t, "recovery_codes_remaining", 0)
		s.get(t, m.codesPath()).ok(t).want(t, "recovery_codes", []string{})
	})
}

// TestRecoverISTExpiry: an intermediate session lasts 10 minutes (§6.0.1).
func TestRecoverISTExpiry(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	pw := m.passwordAuth(t, nil).ok(t)
	pw.want(t, "intermediate_session_token_expires_at", ts(s.Clock.Now().Add(10*time.Minute)))
	early, late := pw.str(t, "intermediate_session_token"), m.ist(t)

	s.Clock.Advance(10*time.Minute - time.Second)
	s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": early})).ok(t)
	s.Clock.Advance(2 * time.Second)
	s.post(t, recoverPath, m.recoverBody(m.Codes[1], map[string]any{"intermediate_session_token": late})).fails(t, 404, "intermediate_session_not_found")
	if n := len(m.unusedCodes(t)); n != 9 {
		t.Errorf("the refused call spent a code: %d left", n)
	}
}

// TestRecoverOnSession: a recovery code sent with a session adds its factor to that session (§6.0.1).
func TestRecoverOnSession(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil) // OPTIONAL: a password login gives a session straight away
	m := s.enrolledMember(t, o, nil)
	login := m.passwordAuth(t, nil).ok(t)
	token, jwt := login.str(t, "session_token"), login.str(t, "session_jwt")
	id := login.str(t, "member_session.member_session_id")
	expires := login.str(t, "member_session.expires_at")

	s.Clock.Advance(time.Minute)
	r := s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"session_token": token})).ok(t)
	r.want(t, "session_token", token).
		want(t, "member_session.member_session_id", id).
		want(t, "member_session.expires_at", expires). // no duration sent: unchanged
		want(t, "member_session.last_accessed_at", ts(s.Clock.Now())).
		want(t, "member.mfa_enrolled", false) // OPTIONAL organization
	firstFactor := r.at("member_session.authentication_factors.1").(map[string]any)
	if len(r.list(t, "member_session.authentication_factors")) != 2 || firstFactor["type"] != "recovery_codes" {
		t.Fatalf("factors %v", r.at("member_session.authentication_factors"))
	}

	t.Run("by JWT: the token is not echoed, the factor is renewed in place", func(t *testing.T) {
		s.Clock.Advance(time.Minute)
		r := s.post(t, recoverPath, m.recoverBody(m.Codes[1], map[string]any{"session_jwt": jwt, "session_duration_minutes": 120})).ok(t)
		r.want(t, "session_token", "").
			want(t, "member_session.member_session_id", id).
			want(t, "member_session.expires_at", ts(s.Clock.Now().Add(120*time.Minute)))
		factors := r.list(t, "member_session.authentication_factors")
		if len(factors) != 2 {
			t.Fatalf("factor not renewed in place: %v", factors)
		}
		f := factors[1].(map[string]any)
		if f["type"] != "recovery_codes" || f["created_at"] != firstFactor["created_at"] || f["last_authenticated_at"] != ts(s.Clock.Now()) {
			t.Errorf("renewed factor %v, first %v", f, firstFactor)
		}
		if lookup(f, "recovery_code_factor.totp_recovery_code_id") == lookup(firstFactor, "recovery_code_factor.totp_recovery_code_id") {
			t.Error("the renewed factor still names the first code")
		}
		if verifyJWT(t, s, r.str(t, "session_jwt"))["sub"] != m.ID {
			t.Error("fresh JWT names another member")
		}
	})
	t.Run("a revoked session is not found", func(t *testing.T) {
		s.post(t, "/v1/b2b/sessions/revoke", map[string]any{"member_session_id": id}).ok(t)
		s.post(t, recoverPath, m.recoverBody(m.Codes[2], map[string]any{"session_token": token})).fails(t, 404, "session_not_found")
		s.post(t, recoverPath, m.recoverBody(m.Codes[2], map[string]any{"session_jwt": jwt})).fails(t, 404, "session_not_found")
	})
	t.Run("an expired session is not found", func(t *testing.T) {
		sess := m.passwordAuth(t, map[string]any{"session_duration_minutes": 5}).ok(t).str(t, "session_token")
		s.Clock.Advance(5*time.Minute + time.Second)
		s.post(t, recoverPath, m.recoverBody(m.Codes[2], map[string]any{"session_token": sess})).fails(t, 404, "session_not_found")
	})
	if n := len(m.unusedCodes(t)); n != 8 {
		t.Errorf("%d codes left, want 8", n)
	}
}

// TestRecoverForgivingInput: §6.1 normalisation, on codes imported so their symbols are known.
func TestRecoverForgivingInput(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.newMember(t, o, nil)
	imported := []string{
		"0123-4567-89ab", "01ab-cdef-ghjk", "1010-1010-1010", "abcd-efgh-jkmn", "pqrs-tvwx-yz01",
		"0000-1111-2222", "3333-4444-5555", "6666-7777-8888", "9999-aaaa-bbbb", "cccc-dddd-eeee",
		"ffff-gggg-hhhh", "jjjj-kkkk-mmmm", "nnnn-pppp-qqqq", "rrrr-ssss-tttt", "vvvv-wwww-xxxx",
		"zzzz-yyyy-0011",
	}
	m.enroll(t, imported)
	for _, tc := range []struct{ name, typed, code string }{
		{"uppercase", "0123-4567-89AB", "0123-4567-89ab"},
		{"no hyphens", "01abcdefghjk", "01ab-cdef-ghjk"},
		{"spaces and tabs", " 1010 1010\t1010 ", "1010-1010-1010"},
		{"U+2010 hyphen", "abcd\u2010efgh\u2010jkmn", "abcd-efgh-jkmn"},
		{"U+2011 and U+2012", "pqrs\u2011tvwx\u2012yz01", "pqrs-tvwx-yz01"},
		{"U+2013 en dash and U+2014 em dash", "0000\u20131111\u20142222", "0000-1111-2222"},
		{"U+2015 horizontal bar", "3333\u20154444\u20155555", "3333-4444-5555"},
		{"trailing punctuation", "6666-7777-8888.", "6666-7777-8888"},
		{"all trailing punctuation", "9999-aaaa-bbbb.,;:!?", "9999-aaaa-bbbb"},
		{"letter O for zero", "zzzz-yyyy-OO11", "zzzz-yyyy-0011"},
		{"separators anywhere", "c-c-c-c d d d d-e e-e-e", "cccc-dddd-eeee"},
		{"non-breaking and ideographic spaces", "ffff\u00a0gggg\u3000hhhh", "ffff-gggg-hhhh"},
		{"newline", "jjjj-kkkk-\nmmmm\n", "jjjj-kkkk-mmmm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.post(t, recoverPath, m.recoverBody(tc.typed, map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
			if slices.Contains(m.unusedCodes(t), tc.code) {
				t.Errorf("%q did not spend %s", tc.typed, tc.code)
			}
		})
	}
	t.Run("look-alikes o, i, l", func(t *testing.T) {
		m := s.newMember(t, o, nil)
		m.enroll(t, []string{"1010-0101-1100", "0110-1001-0011"})
		s.post(t, recoverPath, m.recoverBody("lOlO-oIoI-iLoo", map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
		s.post(t, recoverPath, m.recoverBody("OIIO IOOI OOIL!", map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
		s.get(t, m.codesPath()).ok(t).want(t, "recovery_codes", []string{})
	})
	t.Run("u passes the syntax check", func(t *testing.T) {
		m := s.newMember(t, o, nil)
		m.enroll(t, []string{"uuuu-uuuu-uuuu"})
		s.post(t, recoverPath, m.recoverBody("UUUU UUUU UUUU", map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
	})
	t.Run("16-symbol codes", func(t *testing.T) {
		m := s.newMember(t, o, nil)
		m.enroll(t, []string{"abcd-efgh-jkmn-pqrs"})
		s.post(t, recoverPath, m.recoverBody("ABCDEFGHJKMNPQRS", map[string]any{"intermediate_session_token": m.ist(t)})).ok(t)
	})
}

// TestRecoverUncountedFailures: only wrong codes count toward the lock (§6.0.3).
func TestRecoverUncountedFailures(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	ist := m.ist(t)
	with := map[string]any{"intermediate_session_token": ist}
	for i := 0; i < 12; i++ {
		s.post(t, recoverPath, m.recoverBody("123456", with)).fails(t, 400, "totp_code_used_as_recovery_code")
		s.post(t, recoverPath, m.recoverBody("not-a-code", with)).fails(t, 400, "invalid_recovery_code")
		s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": wellFormedToken})).fails(t, 404, "intermediate_session_not_found")
		s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": ist, "member_id": "nope"})).fails(t, 404, "member_not_found")
		m.s.post(t, "/v1/b2b/passwords/authenticate", map[string]any{"organization_id": o.ID, "email_address": m.Email, "password": "wrong"}).fails(t, 401, "unauthorized_credentials")
	}
	m.state(t).want(t, "member.is_locked", false)
	for i := 1; i < 10; i++ {
		s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", with)).fails(t, 401, "unable_to_authenticate_recovery_code")
	}
	s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", with)).fails(t, 429, "user_lock_limit_reached")
}

// TestMemberLock: ten counted failures lock the member for an hour (§6.0.3).
func TestMemberLock(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	ist := m.ist(t)
	for i := 1; i <= 9; i++ {
		// TOTP failures count toward the same limit.
		if i%2 == 0 {
			s.post(t, totpAuthPath, m.totpBody(wrongTOTP(m.totpCode(t, 0), m.totpCode(t, -1), m.totpCode(t, 1)), map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_totp")
		} else {
			s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_recovery_code")
		}
		s.Clock.Advance(time.Second)
	}
	m.state(t).want(t, "member.is_locked", false)
	lockedAt := s.Clock.Now()
	r := s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 429, "user_lock_limit_reached")
	if got := r.Header.Get("Retry-After"); got != "3600" {
		t.Errorf("Retry-After %q on the locking failure, want 3600", got)
	}
	m.state(t).want(t, "member.is_locked", true).
		want(t, "member.lock_created_at", ts(lockedAt)).
		want(t, "member.lock_expires_at", ts(lockedAt.Add(time.Hour)))

	t.Run("while locked", func(t *testing.T) {
		s.Clock.Advance(90 * time.Second)
		r := s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": ist})).fails(t, 429, "user_lock_limit_reached")
		if got := r.Header.Get("Retry-After"); got != "3510" {
			t.Errorf("Retry-After %q, want 3510", got)
		}
		if !slices.Contains(m.unusedCodes(t), m.Codes[0]) {
			t.Error("a locked recover spent the code")
		}
		s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"intermediate_session_token": ist})).fails(t, 429, "user_lock_limit_reached")
		s.post(t, totpAuthPath, m.totpBody("000000", map[string]any{"intermediate_session_token": ist})).fails(t, 429, "user_lock_limit_reached")
		// Not blocked: password login, GET, rotate.
		if m.passwordAuth(t, nil).ok(t).str(t, "intermediate_session_token") == "" {
			t.Error("password login refused an IST while locked")
		}
		s.get(t, m.codesPath()).ok(t).want(t, "member.is_locked", true)
		rot := s.post(t, rotatePath, map[string]any{"organization_id": o.ID, "member_id": m.ID}).ok(t)
		rot.want(t, "member.is_locked", true) // rotate leaves the lock alone
		m.Codes = rot.strings(t, "recovery_codes")
		m.state(t).want(t, "member.lock_expires_at", ts(lockedAt.Add(time.Hour)))
	})
	t.Run("the lock lapses at lock_expires_at", func(t *testing.T) {
		s.Clock.Set(lockedAt.Add(time.Hour - time.Second))
		r := s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": m.ist(t)})).fails(t, 429, "user_lock_limit_reached")
		if got := r.Header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After %q a second before the end, want 1", got)
		}
		s.Clock.Set(lockedAt.Add(time.Hour))
		m.state(t).want(t, "member.is_locked", false).
			want(t, "member.lock_created_at", nil).
			want(t, "member.lock_expires_at", nil)
		// The counter is back at 0 (and calls refused while locked were not counted):
		// nine failures are answered 401, the tenth locks again.
		ist := m.ist(t)
		for i := 1; i < 10; i++ {
			s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_recovery_code")
		}
		s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 429, "user_lock_limit_reached")
	})
	t.Run("success resets the counter", func(t *testing.T) {
		m := s.enrolledMember(t, o, nil)
		ist := m.ist(t)
		for i := 0; i < 9; i++ {
			s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_recovery_code")
		}
		s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": ist})).ok(t)
		ist = m.ist(t)
		for i := 0; i < 9; i++ {
			s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_recovery_code")
		}
		s.Clock.Advance(30 * time.Second)
		s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"intermediate_session_token": ist})).ok(t) // resets too
		ist = m.ist(t)
		for i := 0; i < 9; i++ {
			s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_recovery_code")
		}
		s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 429, "user_lock_limit_reached")
	})
	t.Run("rotate keeps the counter", func(t *testing.T) {
		m := s.enrolledMember(t, o, nil)
		ist := m.ist(t)
		for i := 0; i < 9; i++ {
			s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_recovery_code")
		}
		s.post(t, rotatePath, map[string]any{"organization_id": o.ID, "member_id": m.ID}).ok(t)
		s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 429, "user_lock_limit_reached")
	})
}

// wrongTOTP is a six-digit code that is none of the accepted ones.
func wrongTOTP(accepted ...string) string {
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", 100000+i*7919)
		if !slices.Contains(accepted, c) {
			return c
		}
	}
}

// TestRecoverOneCodeOnce: parallel recovers of one code end in exactly one success (DESIGN §2).
func TestRecoverOneCodeOnce(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	const n = 8
	ists := make([]string, n)
	for i := range ists {
		ists[i] = m.ist(t)
	}
	var wg sync.WaitGroup
	results := make([]*response, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.post(t, recoverPath, m.recoverBody(m.Codes[0], map[string]any{"intermediate_session_token": ists[i]}))
		}()
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		switch r.Status {
		case http.StatusOK:
			wins++
		case http.StatusUnauthorized:
			r.fails(t, 401, "unable_to_authenticate_recovery_code")
		default:
			t.Errorf("unexpected answer %s", r)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d parallel recovers of one code succeeded, want exactly 1", wins, n)
	}
	// Each lost race counted as a failed attempt (§6.0.3): n-1 so far, the lock is 10-(n-1) away.
	ist := m.ist(t)
	for i := n - 1; i < 9; i++ {
		s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_recovery_code")
	}
	s.post(t, recoverPath, m.recoverBody("zzzz-zzzz-zzzz", map[string]any{"intermediate_session_token": ist})).fails(t, 429, "user_lock_limit_reached")
}

// TestTOTPOneStepOnce: parallel TOTP logins with one code end in exactly one success; the others
// see the step as used.
func TestTOTPOneStepOnce(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	const n = 6
	ists := make([]string, n)
	for i := range ists {
		ists[i] = m.ist(t)
	}
	code := m.totpCode(t, 0)
	var wg sync.WaitGroup
	results := make([]*response, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.post(t, totpAuthPath, m.totpBody(code, map[string]any{"intermediate_session_token": ists[i]}))
		}()
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		if r.Status == http.StatusOK {
			wins++
			continue
		}
		r.fails(t, 400, "totp_code_already_authenticated")
	}
	if wins != 1 {
		t.Errorf("%d of %d parallel TOTP logins with one code succeeded, want exactly 1", wins, n)
	}
}

// TestGetRecoveryCodes: GET /v1/b2b/recovery_codes/{organization_id}/{member_id} (§6.1).
func TestGetRecoveryCodes(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, map[string]any{"organization_external_id": fmt.Sprintf("ext|%d", s.next())})
	ext := s.get(t, "/v1/b2b/organizations/"+o.ID).ok(t).str(t, "organization.organization_external_id")
	m := s.enrolledMember(t, o, map[string]any{"external_id": fmt.Sprintf("member.ext_%d", s.next())})
	memberExt := m.state(t).str(t, "member.external_id")
	noTOTP := s.newMember(t, o, nil)
	p2 := s.secondProject(t)
	foreignOrg := p2.createOrg(t, nil)
	foreign := p2.enrolledMember(t, foreignOrg, nil)

	r := s.get(t, m.codesPath()).ok(t)
	r.want(t, "member_id", m.ID).
		want(t, "member.member_id", m.ID).
		want(t, "organization.organization_id", o.ID).
		want(t, "recovery_codes", m.Codes) // issue order
	for _, c := range m.Codes {
		if !codeRe.MatchString(c) {
			t.Errorf("code %q is not xxxx-xxxx-xxxx in Crockford base32", c)
		}
	}

	for _, tc := range []struct {
		name, org, member string
		wantStatus        int
		wantType          string
	}{
		{"by slug and external id", o.Slug, memberExt, 200, ""},
		{"by organization external id, escaped", url.PathEscape(ext), m.ID, 200, ""},
		{"unknown organization", "organization-test-00000000-0000-4000-8000-000000000000", m.ID, 404, "organization_not_found"},
		{"unknown organization beats unknown member", "nope", "nope", 404, "organization_not_found"},
		{"unknown member", o.ID, "member-test-00000000-0000-4000-8000-000000000000", 404, "member_not_found"},
		{"member email is not an alias", o.ID, url.PathEscape(m.Email), 404, "member_not_found"},
		{"no TOTP registration", o.ID, noTOTP.ID, 400, "no_active_recovery_code_backed_factor"},
		{"organization of another project", foreignOrg.ID, foreign.ID, 404, "organization_not_found"},
		{"member of another project", o.ID, foreign.ID, 404, "member_not_found"},
		{"percent-decoded once only", url.PathEscape(url.PathEscape(ext)), m.ID, 404, "organization_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.get(t, "/v1/b2b/recovery_codes/"+tc.org+"/"+tc.member)
			if tc.wantStatus != 200 {
				r.fails(t, tc.wantStatus, tc.wantType)
				return
			}
			r.ok(t).want(t, "member_id", m.ID).want(t, "organization.organization_id", o.ID).want(t, "recovery_codes", m.Codes)
		})
	}
	t.Run("by organization external id, unescaped as Ruby sends it", func(t *testing.T) {
		s.serve(t, "GET", "/v1/b2b/recovery_codes/"+ext+"/"+m.ID, nil).ok(t).want(t, "member_id", m.ID)
	})
	t.Run("unknown credentials", func(t *testing.T) {
		s.get(t, m.codesPath(), basicAuth(p2.ProjectID, s.Secret)).fails(t, 401, "unauthorized_credentials")
	})
}

// TestRotateRecoveryCodes: POST /v1/b2b/recovery_codes/rotate (§6.1).
func TestRotateRecoveryCodes(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, map[string]any{"external_id": fmt.Sprintf("rot-%d", s.next())})
	noTOTP := s.newMember(t, o, nil)
	spent := m.Codes[len(m.Codes)-1]
	sess := m.session(t, nil) // spends that code: the set has used and unused codes
	old := append([]string{spent}, m.Codes...)

	for _, tc := range []struct {
		name       string
		body       map[string]any
		wantStatus int
		wantType   string
	}{
		{"missing organization_id", map[string]any{"member_id": m.ID}, 400, "bad_request"},
		{"missing member_id", map[string]any{"organization_id": o.ID}, 400, "bad_request"},
		{"empty member_id", map[string]any{"organization_id": o.ID, "member_id": ""}, 400, "bad_request"},
		{"member_id a number", map[string]any{"organization_id": o.ID, "member_id": 7}, 400, "bad_request"},
		{"unknown organization", map[string]any{"organization_id": "nope", "member_id": "nope"}, 404, "organization_not_found"},
		{"unknown member", map[string]any{"organization_id": o.ID, "member_id": "nope"}, 404, "member_not_found"},
		{"no TOTP registration", map[string]any{"organization_id": o.ID, "member_id": noTOTP.ID}, 400, "no_active_recovery_code_backed_factor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.post(t, rotatePath, tc.body).fails(t, tc.wantStatus, tc.wantType)
		})
	}
	if got := m.unusedCodes(t); !slices.Equal(got, old[1:]) {
		t.Fatalf("a refused rotate changed the set: %v", got)
	}

	r := s.post(t, rotatePath, map[string]any{"organization_id": o.Slug, "member_id": m.state(t).str(t, "member.external_id")}).ok(t)
	r.want(t, "member_id", m.ID).want(t, "organization.organization_id", o.ID)
	fresh := r.strings(t, "recovery_codes")
	if len(fresh) != 10 {
		t.Fatalf("rotate issued %d codes", len(fresh))
	}
	for _, c := range fresh {
		if !codeRe.MatchString(c) || slices.Contains(old, c) {
			t.Errorf("new code %q", c)
		}
	}
	if got := m.unusedCodes(t); !slices.Equal(got, fresh) {
		t.Errorf("GET after rotate lists %v, want %v", got, fresh)
	}
	// Used and unused old codes are gone alike.
	ist := m.ist(t)
	for _, c := range old[:2] {
		s.post(t, recoverPath, m.recoverBody(c, map[string]any{"intermediate_session_token": ist})).fails(t, 401, "unable_to_authenticate_recovery_code")
	}
	s.post(t, recoverPath, m.recoverBody(fresh[9], map[string]any{"intermediate_session_token": ist})).ok(t).want(t, "recovery_codes_remaining", 9)
	// Sessions are untouched.
	s.post(t, "/v1/b2b/sessions/authenticate", map[string]any{"session_token": sess.Token}).ok(t)
}
