package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite internal/api/testdata/golden from the server's answers")

// placeholders for values that differ per run, by the §4 format they must have.
var (
	idKinds = []struct{ kind, placeholder string }{
		{"member-totp-recovery-code", "<totp_recovery_code_id>"},
		{"member-session", "<member_session_id>"},
		{"member-password", "<member_password_id>"},
		{"member-totp", "<totp_registration_id>"},
		{"member", "<member_id>"},
		{"organization", "<organization_id>"},
		{"email", "<email_id>"},
		{"jwk", "<kid>"},
		{"project", "<project_id>"},
		{"request-id", "<request_id>"},
	}
	timestampRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$`)
	jwtRe       = regexp.MustCompile(`^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
)

// normalise replaces volatile values with placeholders. A value that should be volatile but has
// the wrong shape is left as is, so the golden diff shows it.
func normalise(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, vv := range x {
			out[k] = normalise(vv, k)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, vv := range x {
			out[i] = normalise(vv, key)
		}
		return out
	case string:
		switch {
		case x == "":
			return x
		case (key == "session_token" || key == "intermediate_session_token") && tokenRe.MatchString(x):
			return "<token>"
		case key == "session_jwt" && jwtRe.MatchString(x):
			return "<jwt>"
		case key == "secret" && totpSecretRe.MatchString(x):
			return "<totp_secret>"
		case key == "qr_code" && len(x) > 100 && x[:22] == "data:image/png;base64,":
			return "data:image/png;base64,<png>"
		case key == "recovery_codes" && codeRe.MatchString(x):
			return "<code>"
		case key == "n" && len(x) == 342:
			return "<modulus>"
		case key == "x5c":
			return "<certificate>"
		case key == "x5tS256" && len(x) == 43:
			return "<thumbprint>"
		case key == "next_cursor":
			return "<cursor>"
		case timestampRe.MatchString(x):
			return "<timestamp>"
		}
		for _, k := range idKinds {
			if idPattern(k.kind).MatchString(x) {
				return k.placeholder
			}
		}
	}
	return v
}

// golden compares a response, normalised, with testdata/golden/<name>.json.
func golden(t *testing.T, name string, r *response) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <placeholders> readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(normalise(r.Body, "")); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/api -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n got %s\nwant %s", r.what, path, got, want)
	}
}

// TestGolden fixes the shape of one successful answer of every endpoint, and of the error
// envelope. It runs in a project of its own with fixed names, so slugs and addresses are stable.
func TestGolden(t *testing.T) {
	s := sharedServer(t).secondProject(t)
	type body = map[string]any
	const acme = "/v1/b2b/organizations/acme"

	r := s.post(t, orgsPath, body{"organization_name": "Acme Corp", "organization_slug": "acme", "organization_external_id": "acme-ext",
		"mfa_policy": "REQUIRED_FOR_ALL", "trusted_metadata": body{"plan": "pro"}, "email_allowed_domains": []string{"acme.example"}}).ok(t)
	golden(t, "organizations_create", r)
	acmeID := r.str(t, "organization.organization_id")
	golden(t, "organizations_get", s.get(t, acme).ok(t))
	golden(t, "organizations_update", s.put(t, acme, body{"organization_logo_url": "https://acme.example/logo.png"}).ok(t))
	s.Clock.Advance(time.Second) // search orders by created_at: Acme first
	beta := s.post(t, orgsPath, body{"organization_name": "Beta"}).ok(t).str(t, "organization.organization_id")
	golden(t, "organizations_search", s.post(t, orgsPath+"/search", body{"limit": 1}).ok(t))

	r = s.post(t, acme+"/members", body{"email_address": "ann@acme.example", "name": "Ann", "external_id": "ann-1",
		"roles": []string{"stytch_admin"}, "mfa_phone_number": "+15551231234"}).ok(t)
	golden(t, "members_create", r)
	ann := r.str(t, "member_id")
	golden(t, "members_get", s.get(t, acme+"/member?member_id=ann-1").ok(t))
	golden(t, "members_update", s.put(t, acme+"/members/ann-1", body{"email_address": "ann.new@acme.example"}).ok(t))
	golden(t, "totp_migrate", s.post(t, totpMigratePath, body{"organization_id": "acme", "member_id": "ann-1", "secret": "JBSWY3DPEHPK3PXP",
		"recovery_codes": []string{"abcd-efgh-jkmn", "pqrs-tvwx-yz01"}}).ok(t))

	r = s.post(t, pwMigratePath, body{"organization_id": "acme", "email_address": "bob@acme.example", "hash_type": "bcrypt",
		"hash": bcryptHash(t, "bob's password"), "name": "Bob"}).ok(t)
	golden(t, "passwords_migrate", r)
	bob := &member{s: s, Org: org{ID: acmeID, Slug: "acme"}, ID: r.str(t, "member_id"), Email: "bob@acme.example", Password: "bob's password"}
	r = s.post(t, totpCreatePath, body{"organization_id": acmeID, "member_id": bob.ID}).ok(t)
	golden(t, "totp_create", r)
	bob.TOTPSecret, bob.TOTPID, bob.Codes = r.str(t, "secret"), r.str(t, "totp_registration_id"), r.strings(t, "recovery_codes")

	r = bob.passwordAuth(t, nil).ok(t)
	golden(t, "passwords_authenticate_mfa_required", r)
	r = s.post(t, totpAuthPath, bob.totpBody(bob.totpCode(t, 0), body{"intermediate_session_token": r.str(t, "intermediate_session_token")})).ok(t)
	golden(t, "totp_authenticate", r)
	token := r.str(t, "session_token")
	s.Clock.Advance(time.Second) // sessions list orders by started_at: the TOTP session first
	r = s.post(t, recoverPath, bob.recoverBody(bob.Codes[0], body{"intermediate_session_token": bob.ist(t), "session_custom_claims": body{"team": "blue"}})).ok(t)
	golden(t, "recovery_codes_recover", r)
	golden(t, "recovery_codes_get", s.get(t, bob.codesPath()).ok(t))
	golden(t, "recovery_codes_rotate", s.post(t, rotatePath, body{"organization_id": "acme", "member_id": bob.ID}).ok(t))
	golden(t, "error_session_authorization", s.post(t, sessAuthPath, body{"session_token": token, "session_custom_claims": body{"team": "red"},
		"authorization_check": body{"organization_id": "acme", "resource_id": "stytch.member", "action": "get"}}).fails(t, 403, "session_authorization_error"))
	golden(t, "sessions_authenticate", s.post(t, sessAuthPath, body{"session_token": token, "session_custom_claims": body{"team": "red"}}).ok(t))
	golden(t, "sessions_list", s.get(t, "/v1/b2b/sessions?organization_id=acme&member_id="+bob.ID).ok(t))
	golden(t, "sessions_revoke", s.post(t, sessRevokePath, body{"session_token": token}).ok(t))
	golden(t, "sessions_jwks", s.get(t, "/v1/b2b/sessions/jwks/"+s.ProjectID, withoutAuth()).ok(t))

	s.post(t, pwMigratePath, body{"organization_id": beta, "email_address": "carol@beta.example", "hash_type": "bcrypt", "hash": bcryptHash(t, "carol")}).ok(t)
	golden(t, "passwords_authenticate_session", s.post(t, pwAuthPath, body{"organization_id": beta, "email_address": "carol@beta.example", "password": "carol"}).ok(t))

	golden(t, "members_delete_totp", s.delete(t, acme+"/members/"+ann+"/totp").ok(t))
	golden(t, "members_delete", s.delete(t, acme+"/members/ann-1").ok(t))
	golden(t, "organizations_delete", s.delete(t, orgsPath+"/"+beta).ok(t))

	golden(t, "error_organization_not_found", s.get(t, orgsPath+"/nope").fails(t, 404, "organization_not_found"))
	golden(t, "error_method_not_allowed", s.do(t, "PATCH", acme, nil).fails(t, 405, "method_not_allowed"))
	golden(t, "error_route_not_found", s.get(t, "/v1/b2b/magic_links").fails(t, 404, "route_not_found"))
}
