package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// checkEnvelope is what every answer to any input must satisfy: not a 5xx, a JSON object, and
// on anything but 200 the §8 envelope.
func checkEnvelope(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s → %d %s", what, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s → Content-Type %q", what, ct)
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil || body == nil {
		t.Fatalf("%s → not a JSON object: %q", what, rec.Body)
	}
	if sc, _ := body["status_code"].(json.Number); sc.String() != strconv.Itoa(rec.Code) {
		t.Fatalf("%s → status_code %v on HTTP %d", what, body["status_code"], rec.Code)
	}
	if _, has := body["error"]; has {
		t.Fatalf("%s → body has an \"error\" key", what)
	}
	if rec.Code == http.StatusOK {
		return
	}
	typ, _ := body["error_type"].(string)
	msg, _ := body["error_message"].(string)
	if typ == "" || msg == "" || body["error_url"] != "https://stytch.com/docs/api-reference/b2b/api/errors/"+strconv.Itoa(rec.Code)+"#"+typ {
		t.Fatalf("%s → bad envelope %s", what, rec.Body)
	}
}

// fuzzServer is a project of its own on the shared server, with one member to aim at.
func fuzzServer(f *testing.F) (*testServer, *member) {
	s := sharedServer(f).secondProject(f)
	o := s.mfaOrg(f)
	m := s.enrolledMember(f, o, nil)
	return s, m
}

func (s *testServer) serveRaw(method, target string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.SetBasicAuth(s.ProjectID, s.Secret)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.Handler.ServeHTTP(rec, req)
	return rec
}

// FuzzRequestBodies posts arbitrary bytes to every endpoint that reads a body.
func FuzzRequestBodies(f *testing.F) {
	s, m := fuzzServer(f)
	routes := []struct{ method, path string }{
		{"POST", recoverPath}, {"POST", rotatePath}, {"POST", orgsPath}, {"PUT", orgsPath + "/" + m.Org.ID},
		{"POST", orgsPath + "/search"}, {"POST", membersPath(m.Org.ID)}, {"PUT", m.path()},
		{"POST", totpCreatePath}, {"POST", totpAuthPath}, {"POST", totpMigratePath},
		{"POST", pwMigratePath}, {"POST", pwAuthPath}, {"POST", sessAuthPath}, {"POST", sessRevokePath},
		{"DELETE", membersPath(m.Org.ID) + "/member-test-00000000-0000-4000-8000-000000000000"},
	}
	for i := range routes {
		for _, c := range genericBadBodies() {
			if len(c.body) < 4096 {
				f.Add(uint8(i), []byte(c.body))
			}
		}
	}
	ref := `"organization_id":"` + m.Org.ID + `","member_id":"` + m.ID + `"`
	for _, seed := range []struct {
		route int
		body  string
	}{
		{0, `{` + ref + `,"recovery_code":"zzzz-zzzz-zzzz","session_token":"` + wellFormedToken + `","session_duration_minutes":60.5}`},
		{0, `{` + ref + `,"recovery_code":"` + m.Codes[0] + `","session_custom_claims":{"a":{"b":null}}}`},
		{1, `{` + ref + `}`},
		{2, `{"organization_name":"Fuzz","organization_slug":"fuzz","rbac_email_implicit_role_assignments":[{"domain":"a","role_id":"x"}]}`},
		{4, `{"limit":1e3,"cursor":"MTpvcmdhbml6YXRpb24tdGVzdC14","query":{"operator":"OR","operands":[{"filter_name":"member_emails","filter_value":["a"]}]}}`},
		{5, `{"email_address":"Fuzz@Example.com","roles":["stytch_admin"],"mfa_phone_number":"+1555"}`},
		{8, `{` + ref + `,"code":"１２３４５６","intermediate_session_token":"` + wellFormedToken + `"}`},
		{9, `{` + ref + `,"secret":"jbsw y3dp ehpk 3pxp====","recovery_codes":["ABCD EFGH JKMN"]}`},
		{10, `{"organization_id":"` + m.Org.ID + `","email_address":"x@y.z","hash_type":"scrypt","hash":"$scrypt$ln=1,r=1,p=1$c2FsdA$aGFzaA","scrypt_config":{"n_parameter":3}}`},
		{12, `{"session_jwt":"eyJhbGciOiJub25lIn0.e30.","authorization_check":{"organization_id":"x","resource_id":"y","action":"z"}}`},
		{13, `{"member_id":"` + m.ID + `","member_session_id":""}`},
	} {
		f.Add(uint8(seed.route), []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		checkEnvelope(t, rt.method+" "+rt.path, s.serveRaw(rt.method, rt.path, body))
	})
}

// FuzzDecodeRecover aims arbitrary bodies at recover, the endpoint that spends codes.
func FuzzDecodeRecover(f *testing.F) {
	s, m := fuzzServer(f)
	for _, c := range genericBadBodies() {
		if len(c.body) < 4096 {
			f.Add([]byte(c.body))
		}
	}
	ref := `"organization_id":"` + m.Org.ID + `","member_id":"` + m.ID + `"`
	for _, b := range []string{
		`{` + ref + `,"recovery_code":"` + strings.ToUpper(m.Codes[1]) + `","intermediate_session_token":"` + wellFormedToken + `"}`,
		`{` + ref + `,"recovery_code":"123456","session_jwt":"a.b.c"}`,
		`{` + ref + `,"recovery_code":"ＡＢＣＤ—ｅｆｇｈ","session_token":"x","session_custom_claims":{"iss":null}}`,
		`{` + ref + `,"recovery_code":null,"session_duration_minutes":-0}`,
		`{"organization_id":"` + m.Org.Slug + `","member_id":"` + m.ID + `","recovery_code":"` + m.Codes[2] + `","session_duration_minutes":1e400}`,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkEnvelope(t, "POST "+recoverPath, s.serveRaw("POST", recoverPath, body))
	})
}

// FuzzSessionJWT sends arbitrary strings as session_jwt: every one is refused with a 4xx.
func FuzzSessionJWT(f *testing.F) {
	s, m := fuzzServer(f)
	sess := m.session(f, nil)
	parts := strings.Split(sess.JWT, ".")
	for _, seed := range []string{
		"", "a", "a.b", "a.b.c", "..", parts[0] + "." + parts[1] + ".", parts[0] + ".." + parts[2],
		parts[0] + "." + parts[1] + "." + parts[2] + "x", "eyJhbGciOiJSUzI1NiJ9." + parts[1] + "." + parts[2],
		strings.Repeat("eyJ", 1000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if token == sess.JWT {
			return
		}
		body, _ := json.Marshal(map[string]any{"session_jwt": token})
		rec := s.serveRaw("POST", sessAuthPath, body)
		checkEnvelope(t, "sessions/authenticate", rec)
		if rec.Code == http.StatusOK && !sameJWT(token, sess.JWT) {
			t.Fatalf("a forged JWT %q was accepted", token)
		}
	})
}

// sameJWT reports whether two compact JWTs carry the same bytes (base64url allows a few spellings
// of one byte string, which is not a forgery).
func sameJWT(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	if len(pa) != 3 || len(pb) != 3 {
		return false
	}
	for i := range pa {
		da, errA := base64.RawURLEncoding.DecodeString(pa[i])
		db, errB := base64.RawURLEncoding.DecodeString(pb[i])
		if errA != nil || errB != nil || !bytes.Equal(da, db) {
			return false
		}
	}
	return true
}
