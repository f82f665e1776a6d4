package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// badCase is one request body and the refusal it must get.
type badCase struct {
	name     string
	body     raw
	status   int
	wantType string
}

// field is one JSON member, for bodies built field by field.
type field struct {
	name  string
	value any
}

// badTarget is a write endpoint with a body it would act on, and ways to spoil that body.
type badTarget struct {
	name, method, path string
	base               map[string]any // nil: the endpoint takes only {} or nothing
	wrongTypes         []field        // each replaces one member of base with a value of the wrong JSON type
	required           []string       // each is removed from base in turn
	extra              []badCase      // endpoint-specific refusals
}

// genericBadBodies are bodies no endpoint may accept (§2 "Request body").
func genericBadBodies() []badCase {
	const bad = "bad_request"
	return []badCase{
		{"malformed JSON", raw(`{"organization_id":`), 400, bad},
		{"unterminated string", raw(`{"a":"`), 400, bad},
		{"single quotes", raw(`{'a':1}`), 400, bad},
		{"trailing comma", raw(`{"a":1,}`), 400, bad},
		{"bare word", raw(`{a:1}`), 400, bad},
		{"trailing garbage", raw(`{} x`), 400, bad},
		{"two objects", raw(`{}{}`), 400, bad},
		{"NUL after the object", raw("{}\x00"), 400, bad},
		{"array", raw(`[]`), 400, bad},
		{"array of an object", raw(`[{}]`), 400, bad},
		{"string", raw(`"{}"`), 400, bad},
		{"null", raw(`null`), 400, bad},
		{"number", raw(`1`), 400, bad},
		{"boolean", raw(`true`), 400, bad},
		{"invalid UTF-8 in a value", raw("{\"unknown\":\"\xff\"}"), 400, bad},
		{"invalid UTF-8 in a key", raw("{\"\xc3\x28\":1}"), 400, bad},
		{"UTF-16", raw("\xff\xfe{\x00}\x00"), 400, bad},
		{"byte order mark", raw("\xef\xbb\xbf{}"), 400, bad},
		{"nested too deep", raw(`{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`), 400, bad},
		{"over 1 MiB", raw(`{"pad":"` + strings.Repeat("x", 1<<20) + `"}`), 400, bad},
	}
}

// TestBadInput: malformed, mistyped, incomplete and out-of-range requests to every write endpoint
// get a 4xx envelope and change nothing (DESIGN §2 "Bad input").
func TestBadInput(t *testing.T) {
	s := sharedServer(t).secondProject(t) // a project of its own: the snapshot lists all of it
	p2 := s.secondProject(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	bare := s.newMember(t, o, nil)
	sess := m.session(t, nil)
	ist := m.ist(t)
	fo := p2.mfaOrg(t)
	fm := p2.enrolledMember(t, fo, nil)
	foreignSess := fm.session(t, nil)
	big := map[string]any{"k": strings.Repeat("x", 4096)}

	snapshot := func(t *testing.T) string {
		t.Helper()
		var parts []any
		for _, r := range []*response{
			s.post(t, orgsPath+"/search", map[string]any{"limit": 1000}).ok(t),
			m.state(t), bare.state(t),
			s.get(t, m.codesPath()).ok(t),
			s.get(t, "/v1/b2b/sessions?organization_id="+o.ID+"&member_id="+m.ID).ok(t),
			s.get(t, orgsPath+"/"+o.ID+"/member?email_address=bad@example.com"),
		} {
			delete(r.Body, "request_id")
			parts = append(parts, r.Status, r.Body)
		}
		return canon(parts)
	}
	js := func(v any) raw {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	with := func(base map[string]any, k string, v any) raw {
		b := map[string]any{}
		for kk, vv := range base {
			b[kk] = vv
		}
		b[k] = v
		return js(b)
	}
	refs := map[string]any{"organization_id": o.ID, "member_id": m.ID}
	recoverBase := map[string]any{"organization_id": o.ID, "member_id": m.ID, "recovery_code": m.Codes[0], "intermediate_session_token": ist}
	totpBase := map[string]any{"organization_id": o.ID, "member_id": m.ID, "code": m.totpCode(t, 0), "intermediate_session_token": ist}
	pwBase := map[string]any{"organization_id": o.ID, "email_address": m.Email, "password": m.Password}
	sessBase := map[string]any{"session_token": sess.Token, "session_custom_claims": map[string]any{"written": true}}
	sessionRefusals := func(base map[string]any) []badCase {
		return []badCase{
			{"duration 4", with(base, "session_duration_minutes", 4), 400, "invalid_session_duration_minutes"},
			{"duration 527041", with(base, "session_duration_minutes", 527041), 400, "invalid_session_duration_minutes"},
			{"duration 30.5", with(base, "session_duration_minutes", 30.5), 400, "invalid_session_duration_minutes"},
			{"reserved claim", with(base, "session_custom_claims", map[string]any{"jti": "x"}), 400, "reserved_claims_in_custom_claims"},
			{"stytch claim", with(base, "session_custom_claims", map[string]any{"https://stytch.com/session": nil}), 400, "stytch_claims_in_custom_claims"},
			{"oversized claims", with(base, "session_custom_claims", big), 400, "custom_claims_too_large"},
		}
	}

	targets := []badTarget{
		{name: "create organization", method: "POST", path: orgsPath,
			base: map[string]any{"organization_name": "Bad Input", "organization_slug": "bad-input"},
			wrongTypes: []field{{"organization_name", 1}, {"organization_slug", true}, {"organization_logo_url", []any{}}, {"organization_external_id", map[string]any{}},
				{"trusted_metadata", "{}"}, {"mfa_policy", 1}, {"allowed_mfa_methods", "totp"}, {"allowed_mfa_methods", []any{1}}, {"allowed_auth_methods", map[string]any{}},
				{"email_allowed_domains", "a.com"}, {"rbac_email_implicit_role_assignments", []any{map[string]any{"domain": 1}}}, {"allowed_oauth_tenants", []any{}},
				{"sso_default_connection_id", 0}},
			extra: []badCase{
				{"name of 129 characters", js(map[string]any{"organization_name": strings.Repeat("x", 129)}), 400, "invalid_organization_name"},
				{"no name", js(map[string]any{"organization_slug": fo.Slug}), 400, "organization_name_missing"},
			}},
		{name: "update organization", method: "PUT", path: orgsPath + "/" + o.ID,
			base:       map[string]any{"organization_name": "Changed"},
			wrongTypes: []field{{"organization_name", []any{"x"}}, {"mfa_policy", false}, {"trusted_metadata", []any{}}, {"claimed_email_domains", map[string]any{}}},
			extra: []badCase{
				{"valid change plus a wrong type", js(map[string]any{"organization_name": "Changed", "mfa_policy": 5}), 400, "bad_request"},
				{"valid change plus an invalid value", js(map[string]any{"organization_name": "Changed", "mfa_policy": "NEVER"}), 400, "invalid_organization_mfa_policy"},
			}},
		{name: "update organization of another project", method: "PUT", path: orgsPath + "/" + fo.ID,
			extra: []badCase{{"not found", js(map[string]any{"organization_name": "Changed"}), 404, "organization_not_found"}}},
		{name: "search organizations", method: "POST", path: orgsPath + "/search",
			base:       map[string]any{},
			wrongTypes: []field{{"cursor", 1}, {"limit", "10"}, {"query", "x"}, {"query", []any{}}, {"query", map[string]any{"operands": "x"}}, {"query", map[string]any{"operands": []any{"x"}}}}},
		{name: "create member", method: "POST", path: membersPath(o.ID),
			base: map[string]any{"email_address": "bad@example.com"},
			wrongTypes: []field{{"email_address", 1}, {"name", 1}, {"external_id", 1}, {"trusted_metadata", []any{}}, {"untrusted_metadata", "x"},
				{"create_member_as_pending", "true"}, {"is_breakglass", 1}, {"mfa_phone_number", 15551231234}, {"mfa_enrolled", "yes"},
				{"roles", "stytch_admin"}, {"roles", []any{true}}},
			required: []string{"email_address"},
			extra: []badCase{
				{"invalid email", js(map[string]any{"email_address": "bad@"}), 400, "invalid_email"},
				{"existing address", js(map[string]any{"email_address": m.Email}), 400, "duplicate_member_email"},
			}},
		{name: "create member in another project's organization", method: "POST", path: membersPath(fo.ID),
			extra: []badCase{{"not found", js(map[string]any{"email_address": "bad@example.com"}), 404, "organization_not_found"}}},
		{name: "update member", method: "PUT", path: m.path(),
			base:       map[string]any{"name": "Changed"},
			wrongTypes: []field{{"name", false}, {"email_address", []any{}}, {"default_mfa_method", 1}, {"preserve_existing_sessions", "yes"}, {"roles", map[string]any{}}},
			extra: []badCase{
				{"valid change plus an invalid default method", js(map[string]any{"name": "Changed", "default_mfa_method": "sms_otp"}), 400, "default_mfa_member_missing_factor"},
				{"valid change plus an unknown role", js(map[string]any{"name": "Changed", "roles": []string{"root"}}), 400, "invalid_rbac_role_id"},
			}},
		{name: "update member of another project", method: "PUT", path: membersPath(o.ID) + "/" + fm.ID,
			extra: []badCase{{"not found", js(map[string]any{"name": "Changed"}), 404, "member_not_found"}}},
		{name: "recover", method: "POST", path: recoverPath,
			base: recoverBase,
			wrongTypes: []field{{"organization_id", 1}, {"member_id", true}, {"recovery_code", []any{}}, {"intermediate_session_token", map[string]any{}},
				{"session_token", 1}, {"session_jwt", false}, {"session_duration_minutes", "60"}, {"session_custom_claims", "x"}, {"session_custom_claims", []any{}},
				{"telemetry_id", 1}},
			required: []string{"organization_id", "member_id", "recovery_code"},
			extra: append(sessionRefusals(recoverBase),
				badCase{"organization of another project", with(recoverBase, "organization_id", fo.ID), 404, "organization_not_found"},
				badCase{"member of another project", with(recoverBase, "member_id", fm.ID), 404, "member_not_found"},
				badCase{"code of another project's member", with(recoverBase, "recovery_code", fm.Codes[0]), 401, "unable_to_authenticate_recovery_code"},
				badCase{"session of another project", with(with(recoverBase, "intermediate_session_token", nil).json(), "session_token", foreignSess.Token), 404, "session_not_found"},
			)},
		{name: "rotate", method: "POST", path: rotatePath,
			base:       refs,
			wrongTypes: []field{{"organization_id", []any{}}, {"member_id", 1}},
			required:   []string{"organization_id", "member_id"},
			extra:      []badCase{{"member of another project", with(refs, "member_id", fm.ID), 404, "member_not_found"}}},
		{name: "create TOTP", method: "POST", path: totpCreatePath,
			base:       map[string]any{"organization_id": o.ID, "member_id": bare.ID},
			wrongTypes: []field{{"expiration_minutes", "10"}, {"intermediate_session_token", 1}, {"session_token", []any{}}, {"session_jwt", map[string]any{}}},
			required:   []string{"organization_id", "member_id"},
			extra: []badCase{
				{"expiration out of range", js(map[string]any{"organization_id": o.ID, "member_id": bare.ID, "expiration_minutes": 1}), 400, "invalid_request_value"},
				{"member of another project", js(map[string]any{"organization_id": o.ID, "member_id": fm.ID}), 404, "member_not_found"},
			}},
		{name: "authenticate TOTP", method: "POST", path: totpAuthPath,
			base:       totpBase,
			wrongTypes: []field{{"code", 123456}, {"set_mfa_enrollment", true}, {"set_default_mfa", "true"}, {"session_custom_claims", 1}, {"session_duration_minutes", "5"}},
			required:   []string{"organization_id", "member_id", "code"},
			extra: append(sessionRefusals(totpBase),
				badCase{"set_mfa_enrollment out of range", with(totpBase, "set_mfa_enrollment", "always"), 400, "invalid_request_value"},
				badCase{"member of another project", with(totpBase, "member_id", fm.ID), 404, "member_not_found"},
			)},
		{name: "migrate TOTP", method: "POST", path: totpMigratePath,
			base:       map[string]any{"organization_id": o.ID, "member_id": bare.ID, "secret": "JBSWY3DPEHPK3PXP"},
			wrongTypes: []field{{"secret", 1}, {"recovery_codes", "abcd-efgh-jkmn"}, {"recovery_codes", []any{1}}},
			required:   []string{"organization_id", "member_id", "secret"},
			extra: []badCase{
				{"secret too short", js(map[string]any{"organization_id": o.ID, "member_id": bare.ID, "secret": "JBSW"}), 400, "invalid_request_value"},
				{"bad imported code", js(map[string]any{"organization_id": o.ID, "member_id": bare.ID, "secret": "JBSWY3DPEHPK3PXP", "recovery_codes": []string{"x"}}), 400, "invalid_recovery_code"},
			}},
		{name: "migrate password", method: "POST", path: pwMigratePath,
			base: map[string]any{"organization_id": o.ID, "email_address": "bad@example.com", "hash_type": "bcrypt", "hash": bcryptHash(t, "pw")},
			wrongTypes: []field{{"hash", 1}, {"hash_type", []any{}}, {"name", 1}, {"roles", "x"}, {"trusted_metadata", []any{}}, {"set_phone_number_verified", "true"},
				{"external_id", 1}, {"md_5_config", "x"}, {"argon_2_config", map[string]any{"iteration_amount": "1"}}, {"scrypt_config", []any{}},
				{"pbkdf_2_config", map[string]any{"key_length": 1.5}}},
			required: []string{"organization_id", "email_address", "hash", "hash_type"},
			extra: []badCase{
				{"organization of another project", js(map[string]any{"organization_id": fo.ID, "email_address": "bad@example.com", "hash_type": "bcrypt", "hash": bcryptHash(t, "pw")}), 404, "organization_not_found"},
				{"unsupported hash type", js(map[string]any{"organization_id": o.ID, "email_address": "bad@example.com", "hash_type": "sha_512", "hash": "ab"}), 400, "invalid_hash_type"},
			}},
		{name: "authenticate password", method: "POST", path: pwAuthPath,
			base:       pwBase,
			wrongTypes: []field{{"password", 1}, {"email_address", 1}, {"locale", 1}, {"telemetry_id", 1}, {"session_token", 1}, {"session_duration_minutes", "5"}},
			required:   []string{"organization_id", "email_address", "password"},
			extra: append(sessionRefusals(pwBase),
				badCase{"organization of another project", with(pwBase, "organization_id", fo.ID), 404, "organization_not_found"},
				badCase{"session of another project", with(pwBase, "session_token", foreignSess.Token), 404, "session_not_found"},
			)},
		{name: "authenticate session", method: "POST", path: sessAuthPath,
			base: sessBase,
			wrongTypes: []field{{"session_token", 1}, {"session_jwt", 1}, {"authorization_check", "x"}, {"authorization_check", map[string]any{"organization_id": 1}},
				{"session_custom_claims", "x"}, {"session_duration_minutes", "5"}},
			extra: append(sessionRefusals(sessBase),
				badCase{"session of another project", with(sessBase, "session_token", foreignSess.Token), 404, "session_not_found"},
				badCase{"JWT of another project", js(map[string]any{"session_jwt": foreignSess.JWT, "session_custom_claims": map[string]any{"written": true}}), 400, "unable_to_parse_session_jwt"},
			)},
		{name: "revoke", method: "POST", path: sessRevokePath,
			base:       map[string]any{"member_session_id": sess.ID},
			wrongTypes: []field{{"member_session_id", 1}, {"session_token", []any{}}, {"session_jwt", map[string]any{}}, {"member_id", true}},
			extra: []badCase{
				{"session of another project", js(map[string]any{"member_session_id": foreignSess.ID}), 404, "session_not_found"},
				{"member of another project", js(map[string]any{"member_id": fm.ID}), 404, "member_not_found"},
			}},
		{name: "delete organization of another project", method: "DELETE", path: orgsPath + "/" + fo.ID,
			extra: []badCase{{"not found", raw(`{}`), 404, "organization_not_found"}}},
		{name: "delete member TOTP", method: "DELETE", path: m.path() + "/totp"},
		{name: "delete member", method: "DELETE", path: m.path()},
		{name: "delete organization", method: "DELETE", path: orgsPath + "/" + o.ID},
	}

	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			cases := genericBadBodies()
			for _, f := range tg.wrongTypes {
				cases = append(cases, badCase{f.name + " of the wrong type " + string(js(f.value)), with(tg.base, f.name, f.value), 400, "bad_request"})
			}
			for _, k := range tg.required {
				cases = append(cases, badCase{"without " + k, with(tg.base, k, nil).without(k), 400, "bad_request"})
				cases = append(cases, badCase{k + " empty", with(tg.base, k, ""), 400, "bad_request"})
			}
			cases = append(cases, tg.extra...)
			before := snapshot(t)
			for _, c := range cases {
				r := s.do(t, tg.method, tg.path, c.body)
				if r.Status >= 500 {
					t.Errorf("%s: %s", c.name, r)
					continue
				}
				t.Run(c.name, func(t *testing.T) { r.fails(t, c.status, c.wantType) })
			}
			if after := snapshot(t); after != before {
				t.Errorf("refused requests changed state\nbefore %s\n after %s", before, after)
			}
		})
	}
	t.Run("reads", func(t *testing.T) {
		s.get(t, "/v1/b2b/recovery_codes/"+fo.ID+"/"+fm.ID).fails(t, 404, "organization_not_found")
		s.get(t, "/v1/b2b/recovery_codes/"+o.ID+"/"+fm.ID).fails(t, 404, "member_not_found")
		s.get(t, orgsPath+"/"+fo.Slug).fails(t, 404, "organization_not_found")
		s.get(t, orgsPath+"/"+o.ID+"/member?member_id="+fm.ID).fails(t, 404, "member_not_found")
		s.get(t, orgsPath+"/"+o.ID+"/member?email_address="+fm.Email).fails(t, 404, "member_not_found")
		s.get(t, "/v1/b2b/sessions?organization_id="+fo.ID+"&member_id="+fm.ID).fails(t, 404, "organization_not_found")
		// The foreign project's own view is intact.
		p2.get(t, fm.codesPath()).ok(t).want(t, "recovery_codes", fm.Codes)
	})
}

// json re-encodes a raw body as a map, so a builder can keep editing it.
func (r raw) json() map[string]any {
	var m map[string]any
	json.Unmarshal(r, &m)
	return m
}

// without drops a member from a raw JSON object body.
func (r raw) without(k string) raw {
	m := r.json()
	delete(m, k)
	b, _ := json.Marshal(m)
	return b
}

// TestBodyNonJSONWhitespace: JSON allows only space, tab, CR and LF around a value (RFC 8259 §2).
// A body wrapped in other Unicode spaces is malformed JSON, so 400 bad_request (§2), and nothing
// may happen: here each body would otherwise spend a code or delete a registration.
func TestBodyNonJSONWhitespace(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	for _, sp := range []struct{ name, text string }{
		{"leading U+00A0", "\u00a0"}, {"trailing U+00A0", ""}, {"leading U+2028", "\u2028"}, {"leading U+3000", "\u3000"}, {"leading U+0085", "\u0085"},
	} {
		t.Run(sp.name, func(t *testing.T) {
			m := s.enrolledMember(t, o, nil)
			wrap := func(body string) raw {
				if sp.text == "" {
					return raw(body + "\u00a0")
				}
				return raw(sp.text + body)
			}
			recoverBody := fmt.Sprintf(`{"organization_id":%q,"member_id":%q,"recovery_code":%q,"intermediate_session_token":%q}`, o.ID, m.ID, m.Codes[0], m.ist(t))
			s.post(t, recoverPath, wrap(recoverBody)).fails(t, 400, "bad_request")
			s.do(t, "DELETE", m.path()+"/totp", wrap(`{}`)).fails(t, 400, "bad_request")
			s.do(t, "DELETE", m.path(), wrap(`{}`)).fails(t, 400, "bad_request")
			s.get(t, m.codesPath()).ok(t).want(t, "recovery_codes", m.Codes)
		})
	}
}
