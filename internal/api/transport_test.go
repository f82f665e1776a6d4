package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestProjectAuth: HTTP Basic on every route but JWKS (§2).
func TestProjectAuth(t *testing.T) {
	s := sharedServer(t)
	p2 := s.secondProject(t)
	o := s.createOrg(t, nil)
	path := orgsPath + "/" + o.ID
	b64 := func(v string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(v)) }

	for _, tc := range []struct {
		name string
		opt  option
	}{
		{"no Authorization", withoutAuth()},
		{"Bearer", header("Authorization", "Bearer "+s.Secret)},
		{"not base64", header("Authorization", "Basic !!!")},
		{"no colon", header("Authorization", b64(s.ProjectID+s.Secret))},
		{"empty project id", basicAuth("", s.Secret)},
		{"unknown project", basicAuth("project-test-00000000-0000-4000-8000-000000000000", s.Secret)},
		{"wrong secret", basicAuth(s.ProjectID, s.Secret+"x")},
		{"empty secret", basicAuth(s.ProjectID, "")},
		{"another project's secret", basicAuth(s.ProjectID, p2.Secret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.get(t, path, tc.opt).fails(t, 401, "unauthorized_credentials")
			if r.Body["error_message"] != "Project credentials are missing or invalid." {
				t.Errorf("error_message %q", r.Body["error_message"])
			}
		})
	}
	t.Run("another project's credentials find nothing", func(t *testing.T) {
		s.get(t, path, basicAuth(p2.ProjectID, p2.Secret)).fails(t, 404, "organization_not_found")
	})
	t.Run("every authenticated route", func(t *testing.T) {
		for _, ep := range endpoints(o.ID, "member-test-x") {
			if ep.public {
				continue
			}
			s.do(t, ep.method, ep.path, raw(`{`), withoutAuth()).fails(t, 401, "unauthorized_credentials") // before body syntax
		}
	})
	t.Run("routing comes first", func(t *testing.T) {
		s.post(t, "/v1/b2b/nothing", nil, withoutAuth()).fails(t, 404, "route_not_found")
		s.get(t, recoverPath, withoutAuth()).fails(t, 405, "method_not_allowed")
	})
}

// endpoint is one route of §1 with a path usable as is.
type endpoint struct {
	method, path string
	public       bool
}

func endpoints(orgID, memberID string) []endpoint {
	return []endpoint{
		{"GET", "/v1/b2b/recovery_codes/" + orgID + "/" + memberID, false},
		{"POST", recoverPath, false},
		{"POST", rotatePath, false},
		{"POST", orgsPath, false},
		{"GET", orgsPath + "/" + orgID, false},
		{"PUT", orgsPath + "/" + orgID, false},
		{"DELETE", orgsPath + "/" + orgID, false},
		{"POST", orgsPath + "/search", false},
		{"POST", membersPath(orgID), false},
		{"GET", orgsPath + "/" + orgID + "/member?member_id=" + memberID, false},
		{"PUT", membersPath(orgID) + "/" + memberID, false},
		{"DELETE", membersPath(orgID) + "/" + memberID, false},
		{"DELETE", membersPath(orgID) + "/" + memberID + "/totp", false},
		{"POST", totpCreatePath, false},
		{"POST", totpAuthPath, false},
		{"POST", totpMigratePath, false},
		{"POST", pwMigratePath, false},
		{"POST", pwAuthPath, false},
		{"POST", sessAuthPath, false},
		{"GET", "/v1/b2b/sessions?organization_id=" + orgID + "&member_id=" + memberID, false},
		{"POST", sessRevokePath, false},
		{"GET", "/v1/b2b/sessions/jwks/project-test-x", true},
	}
}

// TestRoutes: unknown paths are 404 route_not_found, known paths with other methods 405 (§1, §2).
func TestRoutes(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	m := s.newMember(t, o, nil)

	t.Run("not served", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"POST", "/v1/b2b/sessions/exchange"},
			{"POST", "/v1/b2b/sessions/exchange_access_token"},
			{"POST", "/v1/b2b/discovery/organizations"},
			{"POST", "/v1/b2b/magic_links/email/login_or_signup"},
			{"POST", "/v1/b2b/otps/email/login_or_signup"},
			{"POST", "/v1/b2b/otps/sms/send"},
			{"GET", "/v1/b2b/sso/" + o.ID},
			{"POST", "/v1/b2b/scim/" + o.ID + "/connection"},
			{"POST", "/v1/b2b/oauth/authenticate"},
			{"GET", "/v1/b2b/rbac/policy"},
			{"POST", "/v1/b2b/organizations/members/search"},
			{"PUT", membersPath(o.ID) + "/" + m.ID + "/reactivate"},
			{"GET", "/v1/b2b/organizations/members/dangerously_get/" + m.ID},
			{"DELETE", membersPath(o.ID) + "/" + m.ID + "/mfa_phone_numbers"},
			{"POST", "/v1/b2b/passwords/strength_check"},
			{"POST", "/v1/users"},
			{"POST", "/v1/sessions/authenticate"},
			{"GET", "/v1/sessions/jwks/" + s.ProjectID},
			{"GET", "/v1"},
			{"GET", "/v1/b2b/recovery_codes/" + o.ID},
			{"GET", "/v1/b2b/recovery_codes/" + o.ID + "/" + m.ID + "/extra"},
			{"GET", orgsPath + "/"},
			{"POST", "/V1/B2B/TOTP"},
			{"GET", "/v1/b2b/organizations/" + o.ID + "/members/" + m.ID + "/totp/x"},
		} {
			s.do(t, c.method, c.path, map[string]any{}).fails(t, 404, "route_not_found")
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		for _, c := range []struct{ method, path, allow string }{
			{"GET", recoverPath, "POST"},
			{"PUT", rotatePath, "POST"},
			{"PUT", orgsPath, "POST"},
			{"PATCH", orgsPath + "/" + o.ID, "GET, PUT, DELETE"},
			{"POST", orgsPath + "/" + o.ID, "GET, PUT, DELETE"},
			{"GET", membersPath(o.ID), "POST"},
			{"POST", orgsPath + "/" + o.ID + "/member", "GET"},
			{"GET", membersPath(o.ID) + "/" + m.ID, "PUT, DELETE"},
			{"POST", membersPath(o.ID) + "/" + m.ID + "/totp", "DELETE"},
			{"DELETE", totpCreatePath, "POST"},
			{"GET", totpAuthPath, "POST"},
			{"OPTIONS", totpMigratePath, "POST"},
			{"GET", pwMigratePath, "POST"},
			{"DELETE", pwAuthPath, "POST"},
			{"GET", sessAuthPath, "POST"},
			{"POST", "/v1/b2b/sessions", "GET"},
			{"GET", sessRevokePath, "POST"},
			{"POST", "/v1/b2b/sessions/jwks/" + s.ProjectID, "GET"},
		} {
			r := s.do(t, c.method, c.path, map[string]any{}).fails(t, 405, "method_not_allowed")
			if got, want := allowSet(r.Header.Get("Allow")), allowSet(c.allow); !slices.Equal(got, want) {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, r.Header.Get("Allow"), c.allow)
			}
		}
	})
	t.Run("unclean paths are not redirected", func(t *testing.T) {
		for _, c := range []struct{ method, target string }{
			{"GET", "//v1/b2b/organizations/" + o.ID},
			{"GET", "/v1//b2b/organizations/" + o.ID},
			{"GET", "/v1/b2b/./organizations/" + o.ID},
			{"GET", "/v1/b2b/organizations/../organizations/" + o.ID},
			{"POST", "/v1/b2b/totp/../recovery_codes/rotate"},
			{"POST", "/v1/b2b/recovery_codes/recover/"},
			{"GET", "/v1/b2b/sessions/jwks/" + s.ProjectID + "/"},
		} {
			t.Run(c.method+" "+c.target, func(t *testing.T) {
				s.serve(t, c.method, c.target, []byte(`{}`)).fails(t, 404, "route_not_found")
			})
		}
	})
	t.Run("an encoded slash stays inside its segment", func(t *testing.T) {
		s.get(t, orgsPath+"/"+o.ID+"%2Fx").fails(t, 404, "organization_not_found")
		s.get(t, "/v1/b2b/recovery_codes/"+o.ID+"%2F"+m.ID).fails(t, 404, "route_not_found")
	})
}

func allowSet(h string) []string {
	var out []string
	for _, m := range strings.Split(h, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// TestTransportRules: §2's body, header and query rules on successful calls.
func TestTransportRules(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	m := s.enrolledMember(t, o, nil)
	rotate := fmt.Sprintf(`{"organization_id":%q,"member_id":%q}`, o.ID, m.ID)

	t.Run("Content-Type", func(t *testing.T) {
		for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8", ""} {
			s.post(t, rotatePath, raw(rotate), header("Content-Type", ct)).ok(t)
			s.get(t, m.codesPath(), header("Content-Type", ct)).ok(t)
			s.do(t, "DELETE", m.path()+"/totp", nil, header("Content-Type", ct)).ok(t)
			m.enroll(t, nil)
		}
	})
	t.Run("an empty body is {}", func(t *testing.T) {
		s.post(t, orgsPath+"/search", raw("")).ok(t)
		s.post(t, orgsPath+"/search", raw(" \n\t ")).ok(t)
		s.post(t, rotatePath, raw("")).fails(t, 400, "bad_request") // {} lacks the required fields
		s.post(t, sessAuthPath, nil).fails(t, 400, "no_session_arguments")
	})
	t.Run("DELETE takes {} or nothing", func(t *testing.T) {
		x := s.newMember(t, o, nil)
		y := s.newMember(t, o, nil)
		s.do(t, "DELETE", x.path(), raw("{}")).ok(t)
		s.do(t, "DELETE", y.path(), nil).ok(t)
	})
	t.Run("unknown fields and parameters are ignored", func(t *testing.T) {
		s.post(t, rotatePath, map[string]any{"organization_id": o.ID, "member_id": m.ID, "extra": map[string]any{"deep": []any{1, nil}}, "member": 5}).ok(t)
		s.get(t, m.codesPath()+"?organization_id=other&member_id=other&x=1").ok(t).want(t, "member_id", m.ID)
	})
	t.Run("JSON keys are case-sensitive: other spellings are unknown fields", func(t *testing.T) {
		t.Run("an unknown spelling of the wrong type is ignored", func(t *testing.T) {
			s.post(t, rotatePath, map[string]any{"organization_id": o.ID, "member_id": m.ID, "MEMBER_ID": 5}).ok(t)
		})
		t.Run("an unknown spelling does not override the field", func(t *testing.T) {
			s.post(t, rotatePath, raw(fmt.Sprintf(`{"organization_id":%q,"member_id":%q,"Member_Id":"nope"}`, o.ID, m.ID))).ok(t).want(t, "member_id", m.ID)
		})
		t.Run("other spellings alone leave the required fields missing", func(t *testing.T) {
			s.post(t, rotatePath, map[string]any{"Organization_ID": o.ID, "Member_ID": m.ID}).fails(t, 400, "bad_request")
		})
	})
	t.Run("null and empty optional fields are absent", func(t *testing.T) {
		sess := m.session(t, nil)
		s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token, "session_jwt": "", "session_duration_minutes": nil, "session_custom_claims": nil, "authorization_check": nil}).ok(t)
		s.post(t, orgsPath+"/search", map[string]any{"cursor": "", "limit": nil, "query": nil}).ok(t)
	})
	t.Run("each response has its own request_id", func(t *testing.T) {
		a := s.get(t, m.codesPath()).ok(t).str(t, "request_id")
		b := s.get(t, m.codesPath()).ok(t).str(t, "request_id")
		c := s.get(t, "/nope").fails(t, 404, "route_not_found").Body["request_id"]
		if a == b || a == c {
			t.Errorf("request ids repeat: %s %s %s", a, b, c)
		}
	})
	t.Run("success is 200, never 201 or 204", func(t *testing.T) {
		s.post(t, orgsPath, map[string]any{"organization_name": fmt.Sprintf("Status %d", s.next())}).ok(t)
		s.post(t, membersPath(o.ID), map[string]any{"email_address": fmt.Sprintf("status%d@example.com", s.next())}).ok(t)
		s.do(t, "DELETE", s.newMember(t, o, nil).path(), nil).ok(t)
	})
	t.Run("a 1 MiB body is accepted", func(t *testing.T) {
		prefix := fmt.Sprintf(`{"organization_id":%q,"member_id":%q,"pad":"`, o.ID, m.ID)
		body := prefix + strings.Repeat("x", 1<<20-len(prefix)-2) + `"}`
		if len(body) != 1<<20 {
			t.Fatalf("body is %d bytes", len(body))
		}
		r := s.post(t, rotatePath, raw(body)).ok(t)
		m.Codes = r.strings(t, "recovery_codes")
	})
}

// TestLogs: one line per request with its request id and status, and never a code, password,
// token or secret (DESIGN §2).
func TestLogs(t *testing.T) {
	s := sharedServer(t)
	o := s.mfaOrg(t)
	m := s.enrolledMember(t, o, nil)
	ist := m.ist(t)
	code := m.Codes[0]
	r := s.post(t, recoverPath, m.recoverBody(code, map[string]any{"intermediate_session_token": ist})).ok(t)
	s.post(t, recoverPath, m.recoverBody(m.Codes[1], map[string]any{"session_token": r.str(t, "session_token")})).ok(t)
	s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"session_jwt": r.str(t, "session_jwt")})).ok(t)
	s.post(t, pwAuthPath, map[string]any{"organization_id": o.ID, "email_address": m.Email, "password": "wrong " + m.Password}).fails(t, 401, "unauthorized_credentials")
	f := s.get(t, "/v1/b2b/recovery_codes/"+o.ID+"/"+m.ID+"?code="+m.Codes[2]).ok(t)

	logs := s.Logs.String()
	for _, x := range []string{code, m.Codes[1], m.Codes[2], strings.ReplaceAll(code, "-", ""), m.Password, ist, r.str(t, "session_token"), r.str(t, "session_jwt"), m.TOTPSecret, s.Secret} {
		if strings.Contains(logs, x) {
			t.Errorf("the log holds a secret value %.12q…", x)
		}
	}
	if id := f.str(t, "request_id"); !strings.Contains(logs, id) {
		t.Errorf("no log line for request %s", id)
	}
	if !strings.Contains(logs, "status=401") {
		t.Errorf("log lines do not carry the status:\n%s", logs)
	}
}

// TestStatusCodeMatchesHTTP spot-checks that status_code is the HTTP status on each error class.
func TestStatusCodeMatchesHTTP(t *testing.T) {
	s := sharedServer(t)
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", "/nope", nil, http.StatusNotFound},
		{"GET", recoverPath, nil, http.StatusMethodNotAllowed},
		{"POST", recoverPath, raw("["), http.StatusBadRequest},
		{"GET", orgsPath + "/nope", nil, http.StatusNotFound},
	} {
		r := s.do(t, c.method, c.path, c.body)
		if r.Status != c.status {
			t.Errorf("%s", r)
		}
		r.envelope(t, c.status)
	}
}
