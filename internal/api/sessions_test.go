package api_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/secret"
)

const (
	sessAuthPath   = "/v1/b2b/sessions/authenticate"
	sessRevokePath = "/v1/b2b/sessions/revoke"
)

var tokenRe = regexp.MustCompile(`^[A-Za-z0-9_-]{44}$`)

// jwks fetches the project's JWKS the way Node, Python and Go do: without credentials.
func (s *testServer) jwks(t testing.TB) map[string]*rsa.PublicKey {
	t.Helper()
	r := s.get(t, "/v1/b2b/sessions/jwks/"+s.ProjectID, withoutAuth()).ok(t)
	keys := map[string]*rsa.PublicKey{}
	for i := range r.list(t, "keys") {
		k := r.at("keys." + itoa(i)).(map[string]any)
		n, _ := base64.RawURLEncoding.DecodeString(k["n"].(string))
		e, _ := base64.RawURLEncoding.DecodeString(k["e"].(string))
		keys[k["kid"].(string)] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return keys
}

// sessionClaim reads a member of the https://stytch.com/session claim (lookup would split the
// claim name at its dots).
func sessionClaim(claims map[string]any, key string) any {
	sc, _ := claims["https://stytch.com/session"].(map[string]any)
	return sc[key]
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

// verifyJWT checks a session JWT as the strictest SDK (Python) would at the server's clock and
// returns its claims, numbers as json.Number.
func verifyJWT(t testing.TB, s *testServer, token string) map[string]any {
	t.Helper()
	keys := s.jwks(t)
	p := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithJSONNumber(), jwt.WithTimeFunc(s.Clock.Now),
		jwt.WithIssuer("stytch.com/"+s.ProjectID), jwt.WithAudience(s.ProjectID), jwt.WithIssuedAt(), jwt.WithExpirationRequired())
	claims := jwt.MapClaims{}
	tok, err := p.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, jwt.ErrTokenUnverifiable
	})
	if err != nil {
		t.Fatalf("session JWT does not verify: %v", err)
	}
	if tok.Header["typ"] != "JWT" || !idPattern("jwk").MatchString(tok.Header["kid"].(string)) {
		t.Errorf("JWT header %v", tok.Header)
	}
	return claims
}

// stranger is an RSA key the server never saw.
var stranger = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func validClaims(s *testServer, sub, sessionID string) jwt.MapClaims {
	now := s.Clock.Now()
	return jwt.MapClaims{
		"sub": sub, "iss": "stytch.com/" + s.ProjectID, "aud": []string{s.ProjectID},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"https://stytch.com/session":      map[string]any{"id": sessionID},
		"https://stytch.com/organization": map[string]any{"organization_id": "x", "slug": "x"},
	}
}

func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	out, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// strangerJWT is a well-formed session JWT signed by a key the project does not list.
func strangerJWT(t testing.TB, s *testServer, sub string) string {
	return sign(t, jwt.SigningMethodRS256, stranger(), "jwk-test-"+uuid.NewString(), validClaims(s, sub, "member-session-test-"+uuid.NewString()))
}

// serverKey opens the project's signing key. A test cannot otherwise mint a JWT that passes the
// signature check yet breaks a claim rule (iss, aud, nbf, sub): the associated data mirrors
// auth's signingKeyAD, and if that format changes Open fails loudly rather than letting a case pass.
func serverKey(t testing.TB, s *testServer) (string, *rsa.PrivateKey) {
	t.Helper()
	keys, err := s.DB.SigningKeys(context.Background(), s.ProjectID)
	if err != nil || len(keys) == 0 {
		t.Fatalf("signing keys: %v", err)
	}
	der, err := s.Keys.Open(keys[0].SealedPrivateKey, []byte("signing-key\x00"+s.ProjectID+"\x00"+keys[0].KID))
	if err != nil {
		t.Fatalf("open the project's signing key: %v", err)
	}
	priv, err := secret.ParsePrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	return keys[0].KID, priv
}

// TestJWKS: GET /v1/b2b/sessions/jwks/{project_id} (§7, §5.6).
func TestJWKS(t *testing.T) {
	s := sharedServer(t)
	r := s.get(t, "/v1/b2b/sessions/jwks/"+s.ProjectID, withoutAuth()).ok(t)
	keys := r.list(t, "keys")
	if len(keys) != 1 || len(r.Body) != 3 {
		t.Fatalf("JWKS %s", r.Raw)
	}
	k := keys[0].(map[string]any)
	if len(k) != 9 {
		t.Errorf("JWK has %d members, want the nine of §5.6: %v", len(k), k)
	}
	r.want(t, "keys.0.alg", "RS256").want(t, "keys.0.e", "AQAB").want(t, "keys.0.key_ops", []string{"verify"}).
		want(t, "keys.0.kty", "RSA").want(t, "keys.0.use", "sig")
	if !idPattern("jwk").MatchString(k["kid"].(string)) {
		t.Errorf("kid %v", k["kid"])
	}
	n, err := base64.RawURLEncoding.DecodeString(k["n"].(string))
	if err != nil || len(n) != 256 {
		t.Errorf("n is not the unpadded base64url of a 2048-bit modulus (%d bytes, %v)", len(n), err)
	}
	x5c := r.strings(t, "keys.0.x5c")
	der, err := base64.StdEncoding.DecodeString(x5c[0])
	if err != nil {
		t.Fatalf("x5c: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("x5c: %v", err)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || pub.N.Cmp(new(big.Int).SetBytes(n)) != 0 {
		t.Error("the x5c certificate holds another key")
	}
	sum := sha256.Sum256(der)
	r.want(t, "keys.0.x5tS256", base64.RawURLEncoding.EncodeToString(sum[:]))

	t.Run("Basic credentials are tolerated, even wrong ones", func(t *testing.T) {
		s.get(t, "/v1/b2b/sessions/jwks/"+s.ProjectID, basicAuth("project-test-nope", "nope")).ok(t).want(t, "keys", r.at("keys"))
		s.get(t, "/v1/b2b/sessions/jwks/"+s.ProjectID).ok(t)
	})
	t.Run("unknown project", func(t *testing.T) {
		s.get(t, "/v1/b2b/sessions/jwks/project-test-00000000-0000-4000-8000-000000000000", withoutAuth()).fails(t, 404, "project_not_found")
		s.get(t, "/v1/b2b/sessions/jwks/nope", withoutAuth()).fails(t, 404, "project_not_found")
	})
	t.Run("each project has its own key", func(t *testing.T) {
		p2 := s.secondProject(t)
		other := p2.get(t, "/v1/b2b/sessions/jwks/"+p2.ProjectID, withoutAuth()).ok(t)
		if other.at("keys.0.kid") == k["kid"] {
			t.Error("two projects share a signing key")
		}
	})
}

// TestSessionJWTClaims decodes a fresh JWT and checks §7's claims one by one.
func TestSessionJWTClaims(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	m := s.newMember(t, o, map[string]any{"roles": []string{"stytch_admin"}})
	now := s.Clock.Now()
	r := m.passwordAuth(t, map[string]any{"session_custom_claims": map[string]any{"team": "blue", "perm": map[string]any{"read": true}}}).ok(t)
	claims := verifyJWT(t, s, r.str(t, "session_jwt"))
	sess := r.at("member_session").(map[string]any)

	want := map[string]any{
		"sub": m.ID, "iss": "stytch.com/" + s.ProjectID, "aud": []string{s.ProjectID},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"https://stytch.com/session": map[string]any{
			"id": sess["member_session_id"], "started_at": ts(now), "last_accessed_at": ts(now), "expires_at": ts(now.Add(time.Hour)),
			"attributes":             map[string]any{"ip_address": "", "user_agent": ""},
			"authentication_factors": sess["authentication_factors"],
			"roles":                  []string{"stytch_member", "stytch_admin"},
		},
		"https://stytch.com/organization": map[string]any{"organization_id": o.ID, "slug": o.Slug},
		"team":                            "blue",
		"perm":                            map[string]any{"read": true},
	}
	if got, w := canon(claims), canon(want); got != w {
		t.Errorf("JWT claims\n got %s\nwant %s", got, w)
	}

	t.Run("exp is the session's end when that comes first", func(t *testing.T) {
		short := m.passwordAuth(t, map[string]any{"session_duration_minutes": 5}).ok(t)
		s.Clock.Advance(2 * time.Minute)
		r := s.post(t, sessAuthPath, map[string]any{"session_token": short.str(t, "session_token")}).ok(t)
		expires, _ := time.Parse(time.RFC3339, r.str(t, "member_session.expires_at"))
		claims := verifyJWT(t, s, r.str(t, "session_jwt"))
		if got := claims["exp"].(json.Number).String(); got != itoa(int(expires.Unix())) {
			t.Errorf("exp %s, want the session's expires_at %d", got, expires.Unix())
		}
		if got := claims["iat"].(json.Number).String(); got != itoa(int(s.Clock.Now().Unix())) {
			t.Errorf("iat %s, want now", got)
		}
	})
}

// TestSessionsAuthenticate: POST /v1/b2b/sessions/authenticate (§6.6).
func TestSessionsAuthenticate(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	o2 := s.createOrg(t, nil)
	m := s.newMember(t, o, nil)
	admin := s.newMember(t, o, map[string]any{"roles": []string{"stytch_admin"}})
	sess := m.session(t, nil)
	adminSess := admin.session(t, nil)
	revoked := m.session(t, nil)
	s.post(t, sessRevokePath, map[string]any{"session_token": revoked.Token}).ok(t)
	kid, key := serverKey(t, s)
	serverJWT := func(edit func(jwt.MapClaims)) string {
		c := validClaims(s, m.ID, sess.ID)
		edit(c)
		return sign(t, jwt.SigningMethodRS256, key, kid, c)
	}
	tampered := func() string {
		parts := strings.Split(sess.JWT, ".")
		var c map[string]any
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(b, &c)
		c["sub"] = admin.ID
		b, _ = json.Marshal(c)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}()
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)

	for _, tc := range []struct {
		name       string
		body       map[string]any
		wantStatus int
		wantType   string
	}{
		{"no session argument", map[string]any{}, 400, "no_session_arguments"},
		{"empty session arguments", map[string]any{"session_token": "", "session_jwt": ""}, 400, "no_session_arguments"},
		{"token and JWT", map[string]any{"session_token": sess.Token, "session_jwt": sess.JWT}, 400, "too_many_session_arguments"},
		{"session_token a number", map[string]any{"session_token": 1}, 400, "bad_request"},
		{"authorization_check a string", map[string]any{"session_token": sess.Token, "authorization_check": "admin"}, 400, "bad_request"},
		{"authorization_check without action", map[string]any{"session_token": sess.Token, "authorization_check": map[string]any{"organization_id": o.ID, "resource_id": "r"}}, 400, "bad_request"},
		{"bad duration beats a missing argument", map[string]any{"session_duration_minutes": 0}, 400, "invalid_session_duration_minutes"},
		{"reserved claim beats a missing argument", map[string]any{"session_custom_claims": map[string]any{"iat": 0}}, 400, "reserved_claims_in_custom_claims"},
		{"unknown token", map[string]any{"session_token": wellFormedToken}, 404, "session_not_found"},
		{"token of another shape", map[string]any{"session_token": sess.Token + "A"}, 404, "session_not_found"},
		{"revoked session by token", map[string]any{"session_token": revoked.Token}, 404, "session_not_found"},
		{"revoked session by JWT", map[string]any{"session_jwt": revoked.JWT}, 404, "session_not_found"},
		{"not a JWT", map[string]any{"session_jwt": "not-a-jwt"}, 400, "unable_to_parse_session_jwt"},
		{"three garbage segments", map[string]any{"session_jwt": "a.b.c"}, 400, "unable_to_parse_session_jwt"},
		{"alg none", map[string]any{"session_jwt": sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, validClaims(s, m.ID, sess.ID))}, 400, "unable_to_parse_session_jwt"},
		{"HS256 keyed with the public key", map[string]any{"session_jwt": sign(t, jwt.SigningMethodHS256, pub, kid, validClaims(s, m.ID, sess.ID))}, 400, "unable_to_parse_session_jwt"},
		{"RS512 by the project's key", map[string]any{"session_jwt": sign(t, jwt.SigningMethodRS512, key, kid, validClaims(s, m.ID, sess.ID))}, 400, "unable_to_parse_session_jwt"},
		{"unknown kid", map[string]any{"session_jwt": strangerJWT(t, s, m.ID)}, 400, "unable_to_parse_session_jwt"},
		{"bad signature under the project's kid", map[string]any{"session_jwt": sign(t, jwt.SigningMethodRS256, stranger(), kid, validClaims(s, m.ID, sess.ID))}, 400, "unable_to_parse_session_jwt"},
		{"payload altered after signing", map[string]any{"session_jwt": tampered}, 400, "unable_to_parse_session_jwt"},
		{"wrong iss", map[string]any{"session_jwt": serverJWT(func(c jwt.MapClaims) { c["iss"] = "stytch.com/project-test-other" })}, 400, "jwt_invalid_issuer"},
		{"no iss", map[string]any{"session_jwt": serverJWT(func(c jwt.MapClaims) { delete(c, "iss") })}, 400, "jwt_invalid_issuer"},
		{"wrong aud", map[string]any{"session_jwt": serverJWT(func(c jwt.MapClaims) { c["aud"] = []string{"project-test-other"} })}, 400, "jwt_invalid_audience"},
		{"no aud", map[string]any{"session_jwt": serverJWT(func(c jwt.MapClaims) { delete(c, "aud") })}, 400, "jwt_invalid_audience"},
		{"nbf in the future", map[string]any{"session_jwt": serverJWT(func(c jwt.MapClaims) { c["nbf"] = s.Clock.Now().Add(time.Minute).Unix() })}, 400, "jwt_invalid_claims"},
		{"no sub", map[string]any{"session_jwt": serverJWT(func(c jwt.MapClaims) { delete(c, "sub") })}, 400, "jwt_invalid_claims"},
		{"no session claim", map[string]any{"session_jwt": serverJWT(func(c jwt.MapClaims) { delete(c, "https://stytch.com/session") })}, 400, "jwt_invalid_claims"},
		{"session claim without id", map[string]any{"session_jwt": serverJWT(func(c jwt.MapClaims) { c["https://stytch.com/session"] = map[string]any{} })}, 400, "jwt_invalid_claims"},
		{"valid JWT naming an unknown session", map[string]any{"session_jwt": serverJWT(func(c jwt.MapClaims) {
			c["https://stytch.com/session"] = map[string]any{"id": "member-session-test-" + uuid.NewString()}
		})}, 404, "session_not_found"},
		{"check of another organization", map[string]any{"session_token": adminSess.Token, "authorization_check": map[string]any{"organization_id": o2.ID, "resource_id": "r", "action": "a"}}, 403, "session_authorization_tenancy_error"},
		{"check of an unknown organization", map[string]any{"session_token": adminSess.Token, "authorization_check": map[string]any{"organization_id": "nope", "resource_id": "r", "action": "a"}}, 403, "session_authorization_tenancy_error"},
		{"tenancy beats authorization", map[string]any{"session_token": sess.Token, "authorization_check": map[string]any{"organization_id": o2.Slug, "resource_id": "r", "action": "a"}}, 403, "session_authorization_tenancy_error"},
		{"member without stytch_admin", map[string]any{"session_token": sess.Token, "authorization_check": map[string]any{"organization_id": o.ID, "resource_id": "r", "action": "a"}}, 403, "session_authorization_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.post(t, sessAuthPath, tc.body).fails(t, tc.wantStatus, tc.wantType)
		})
	}

	t.Run("by token", func(t *testing.T) {
		before := s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token}).ok(t)
		s.Clock.Advance(time.Minute)
		r := s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token}).ok(t)
		r.want(t, "session_token", sess.Token).
			want(t, "member_session.member_session_id", sess.ID).
			want(t, "member_session.last_accessed_at", ts(s.Clock.Now())).
			want(t, "member_session.expires_at", before.at("member_session.expires_at")).
			want(t, "member.member_id", m.ID).
			want(t, "organization.organization_id", o.ID).
			want(t, "verdict", nil)
		if r.str(t, "session_jwt") == sess.JWT {
			t.Error("session_jwt not fresh")
		}
		verifyJWT(t, s, r.str(t, "session_jwt"))
		if len(r.Body) != 8 {
			t.Errorf("response keys %d, want §6.6's eight", len(r.Body))
		}
	})
	t.Run("by JWT, even one past its exp", func(t *testing.T) {
		s.Clock.Advance(6 * time.Minute) // sess.JWT expired a while ago; the session lives on
		r := s.post(t, sessAuthPath, map[string]any{"session_jwt": sess.JWT, "session_duration_minutes": 90}).ok(t)
		r.want(t, "session_token", "").
			want(t, "member_session.member_session_id", sess.ID).
			want(t, "member_session.expires_at", ts(s.Clock.Now().Add(90*time.Minute)))
		s.post(t, sessAuthPath, map[string]any{"session_jwt": serverJWT(func(c jwt.MapClaims) { c["aud"] = s.ProjectID })}).ok(t)
	})
	t.Run("authorization check passes for stytch_admin, by slug", func(t *testing.T) {
		s.post(t, sessAuthPath, map[string]any{"session_token": adminSess.Token, "authorization_check": map[string]any{"organization_id": o.Slug, "resource_id": "stytch.member", "action": "delete"}}).ok(t).
			want(t, "verdict", map[string]any{"authorized": true, "granting_roles": []string{"stytch_admin"}})
	})
	t.Run("roles and slug are the current ones", func(t *testing.T) {
		s.put(t, m.path(), map[string]any{"roles": []string{"stytch_admin"}}).ok(t)
		slug := "renamed-" + itoa(int(s.next()))
		s.put(t, "/v1/b2b/organizations/"+o.ID, map[string]any{"organization_slug": slug}).ok(t)
		r := s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token}).ok(t)
		r.want(t, "member_session.roles", []string{"stytch_member", "stytch_admin"}).
			want(t, "member_session.organization_slug", slug)
		claims := verifyJWT(t, s, r.str(t, "session_jwt"))
		if org, _ := claims["https://stytch.com/organization"].(map[string]any); org["slug"] != slug || canon(sessionClaim(claims, "roles")) != `["stytch_member","stytch_admin"]` {
			t.Errorf("JWT claims %v", claims)
		}
		s.put(t, m.path(), map[string]any{"roles": []string{}}).ok(t)
	})
	t.Run("an expired session is gone", func(t *testing.T) {
		short := m.session(t, map[string]any{"session_duration_minutes": 5})
		s.Clock.Advance(5*time.Minute + time.Second)
		s.post(t, sessAuthPath, map[string]any{"session_token": short.Token}).fails(t, 404, "session_not_found")
		s.post(t, sessAuthPath, map[string]any{"session_jwt": short.JWT}).fails(t, 404, "session_not_found")
	})
}

// TestSessionDuration: session_duration_minutes (§6.0.2) on a session that exists (sessions
// authenticate) and on one being created (passwords authenticate).
func TestSessionDuration(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	m := s.newMember(t, o, nil)
	sess := m.session(t, nil)
	for _, tc := range []struct {
		name     string
		value    raw
		minutes  int // 0: refused
		wantType string
	}{
		{"minimum", raw("5"), 5, ""},
		{"maximum, a leap year", raw("527040"), 527040, ""},
		{"an hour", raw("60"), 60, ""},
		{"4", raw("4"), 0, "invalid_session_duration_minutes"},
		{"527041", raw("527041"), 0, "invalid_session_duration_minutes"},
		{"zero", raw("0"), 0, "invalid_session_duration_minutes"},
		{"negative", raw("-60"), 0, "invalid_session_duration_minutes"},
		{"a fraction", raw("60.5"), 0, "invalid_session_duration_minutes"},
		{"an integer written with a fraction", raw("60.0"), 0, "invalid_session_duration_minutes"},
		{"an exponent", raw("6e1"), 0, "invalid_session_duration_minutes"},
		{"beyond int64", raw("99999999999999999999999"), 0, "invalid_session_duration_minutes"},
		{"beyond float64", raw("1e400"), 0, "invalid_session_duration_minutes"},
		{"a quoted number", raw(`"60"`), 0, "bad_request"},
		{"a boolean", raw("true"), 0, "bad_request"},
		{"an object", raw("{}"), 0, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, call := range []struct {
				path string
				body string
			}{
				{sessAuthPath, `{"session_token":"` + sess.Token + `","session_duration_minutes":` + string(tc.value) + `}`},
				{pwAuthPath, `{"organization_id":"` + o.ID + `","email_address":"` + m.Email + `","password":"` + m.Password + `","session_duration_minutes":` + string(tc.value) + `}`},
			} {
				r := s.post(t, call.path, raw(call.body))
				if tc.minutes == 0 {
					r.fails(t, 400, tc.wantType)
					continue
				}
				r.ok(t).want(t, "member_session.expires_at", ts(s.Clock.Now().Add(time.Duration(tc.minutes)*time.Minute)))
			}
		})
	}
	t.Run("null is absent", func(t *testing.T) {
		before := s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token}).ok(t).str(t, "member_session.expires_at")
		s.Clock.Advance(time.Minute)
		s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token, "session_duration_minutes": nil}).ok(t).
			want(t, "member_session.expires_at", before)
		m.passwordAuth(t, map[string]any{"session_duration_minutes": nil}).ok(t).
			want(t, "member_session.expires_at", ts(s.Clock.Now().Add(time.Hour)))
	})
}

// TestCustomClaims: session_custom_claims (§6.0.2): keys, deep merge, size.
func TestCustomClaims(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	m := s.newMember(t, o, nil)
	sess := m.session(t, nil)
	patch := func(t *testing.T, claims any) *response {
		t.Helper()
		return s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token, "session_custom_claims": claims})
	}

	t.Run("keys", func(t *testing.T) {
		for _, k := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"} {
			patch(t, map[string]any{k: "x"}).fails(t, 400, "reserved_claims_in_custom_claims")
		}
		for _, k := range []string{"https://stytch.com/session", "https://stytch.com/organization", "https://stytch.com/anything"} {
			patch(t, map[string]any{k: "x"}).fails(t, 400, "stytch_claims_in_custom_claims")
		}
		patch(t, map[string]any{"ok": 1, "https://stytch.com/x": 1}).fails(t, 400, "stytch_claims_in_custom_claims")
		patch(t, "x").fails(t, 400, "bad_request")
		patch(t, []any{}).fails(t, 400, "bad_request")
		patch(t, 1).fails(t, 400, "bad_request")
		// Only top-level keys are reserved, and only that exact prefix.
		patch(t, map[string]any{"nested": map[string]any{"sub": "x", "https://stytch.com/x": 1}, "https://stytch.com": 1, "ISS": 1, "http://stytch.com/x": 1}).ok(t)
		patch(t, map[string]any{"nested": nil, "https://stytch.com": nil, "ISS": nil, "http://stytch.com/x": nil}).ok(t).
			want(t, "member_session.custom_claims", map[string]any{})
	})
	t.Run("deep merge", func(t *testing.T) {
		for _, step := range []struct {
			name  string
			patch map[string]any
			want  map[string]any
		}{
			{"set", map[string]any{"team": "blue", "perm": map[string]any{"read": true, "scope": map[string]any{"a": 1, "b": 2}}, "list": []any{1, 2}},
				map[string]any{"team": "blue", "perm": map[string]any{"read": true, "scope": map[string]any{"a": 1, "b": 2}}, "list": []any{1, 2}}},
			{"objects merge, arrays replace", map[string]any{"perm": map[string]any{"write": false, "scope": map[string]any{"c": 3}}, "list": []any{3}},
				map[string]any{"team": "blue", "perm": map[string]any{"read": true, "write": false, "scope": map[string]any{"a": 1, "b": 2, "c": 3}}, "list": []any{3}}},
			{"null deletes at any depth", map[string]any{"team": nil, "perm": map[string]any{"scope": map[string]any{"a": nil}}},
				map[string]any{"perm": map[string]any{"read": true, "write": false, "scope": map[string]any{"b": 2, "c": 3}}, "list": []any{3}}},
			{"an emptied object stays {}", map[string]any{"perm": map[string]any{"scope": map[string]any{"b": nil, "c": nil}}},
				map[string]any{"perm": map[string]any{"read": true, "write": false, "scope": map[string]any{}}, "list": []any{3}}},
			{"a scalar replaces an object and back", map[string]any{"perm": "all", "list": map[string]any{"x": nil, "y": 1}},
				map[string]any{"perm": "all", "list": map[string]any{"y": 1}}},
			{"deleting a missing key", map[string]any{"nothing": nil, "list": map[string]any{"nothing": nil}},
				map[string]any{"perm": "all", "list": map[string]any{"y": 1}}},
			{"empty patch", map[string]any{}, map[string]any{"perm": "all", "list": map[string]any{"y": 1}}},
		} {
			t.Run(step.name, func(t *testing.T) {
				r := patch(t, step.patch).ok(t).want(t, "member_session.custom_claims", step.want)
				claims := verifyJWT(t, s, r.str(t, "session_jwt"))
				for k, v := range step.want {
					if canon(claims[k]) != canon(v) {
						t.Errorf("JWT claim %s = %s, want %s", k, canon(claims[k]), canon(v))
					}
				}
				if _, has := claims["jti"]; has {
					t.Error("JWT carries jti")
				}
			})
		}
		s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token}).ok(t).
			want(t, "member_session.custom_claims", map[string]any{"perm": "all", "list": map[string]any{"y": 1}})
	})
	t.Run("size limit on the merged claims", func(t *testing.T) {
		patch(t, map[string]any{"perm": nil, "list": nil}).ok(t).want(t, "member_session.custom_claims", map[string]any{})
		// {"k":"…"} is 8 bytes plus the value.
		patch(t, map[string]any{"k": strings.Repeat("x", 4096-8)}).ok(t)
		patch(t, map[string]any{"k": strings.Repeat("y", 4096-7)}).fails(t, 400, "custom_claims_too_large")
		patch(t, map[string]any{"k2": "a"}).fails(t, 400, "custom_claims_too_large") // the merge would exceed
		patch(t, map[string]any{"k": nil, "k2": strings.Repeat("z", 4000)}).ok(t)    // a deletion makes room
		s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token}).ok(t).
			want(t, "member_session.custom_claims", map[string]any{"k2": strings.Repeat("z", 4000)})
		// Multi-byte characters count as their UTF-8 bytes, unescaped.
		patch(t, map[string]any{"k2": nil, "k": strings.Repeat("é", (4096-8)/2)}).ok(t)
		patch(t, map[string]any{"k": strings.Repeat("<", 4096-8)}).ok(t)
	})
	t.Run("an oversized patch spends nothing", func(t *testing.T) {
		mo := s.mfaOrg(t)
		m := s.enrolledMember(t, mo, nil)
		ist := m.ist(t)
		code := m.Codes[0]
		big := map[string]any{"k": strings.Repeat("x", 4096)}
		s.post(t, recoverPath, m.recoverBody(code, map[string]any{"intermediate_session_token": ist, "session_custom_claims": big})).fails(t, 400, "custom_claims_too_large")
		s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"intermediate_session_token": ist, "session_custom_claims": big})).fails(t, 400, "custom_claims_too_large")
		if !slices.Contains(m.unusedCodes(t), code) {
			t.Fatal("the refused recover spent the code")
		}
		// Same IST, same code, same TOTP step: all still good.
		r := s.post(t, recoverPath, m.recoverBody(code, map[string]any{"intermediate_session_token": ist, "session_custom_claims": map[string]any{"k": "v"}})).ok(t)
		r.want(t, "member_session.custom_claims", map[string]any{"k": "v"})
		s.post(t, totpAuthPath, m.totpBody(m.totpCode(t, 0), map[string]any{"session_token": r.str(t, "session_token"), "session_custom_claims": map[string]any{"k": nil, "j": 1}})).ok(t).
			want(t, "member_session.custom_claims", map[string]any{"j": 1})
	})
}

// TestSessionsList: GET /v1/b2b/sessions (§6.6).
func TestSessionsList(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, map[string]any{"organization_external_id": "list-" + itoa(int(s.next()))})
	m := s.newMember(t, o, map[string]any{"external_id": "lister-" + itoa(int(s.next()))})
	idle := s.newMember(t, o, nil)
	var ids []string
	for range 3 {
		ids = append(ids, m.session(t, nil).ID)
		s.Clock.Advance(time.Second)
	}
	short := m.session(t, map[string]any{"session_duration_minutes": 5})
	s.post(t, sessRevokePath, map[string]any{"member_session_id": ids[1]}).ok(t)
	q := func(org, mem string) string { return "/v1/b2b/sessions?organization_id=" + org + "&member_id=" + mem }
	list := func(r *response) []string {
		var out []string
		for i := range r.list(t, "member_sessions") {
			out = append(out, r.str(t, "member_sessions."+itoa(i)+".member_session_id"))
		}
		return out
	}

	r := s.get(t, q(o.ID, m.ID)).ok(t)
	if got := list(r); !slices.Equal(got, []string{ids[0], ids[2], short.ID}) {
		t.Errorf("sessions %v, want the live ones oldest first", got)
	}
	ext := m.state(t).str(t, "member.external_id")
	orgExt := s.get(t, "/v1/b2b/organizations/"+o.ID).ok(t).str(t, "organization.organization_external_id")
	s.get(t, q(orgExt, ext)+"&organization_id="+orgExt+"&unknown=1").ok(t).want(t, "member_sessions", r.at("member_sessions"))
	s.get(t, q(o.Slug, idle.ID)).ok(t).want(t, "member_sessions", []any{})
	s.Clock.Advance(5*time.Minute + time.Second)
	if got := list(s.get(t, q(o.ID, m.ID)).ok(t)); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Errorf("sessions %v after one expired", got)
	}

	for _, tc := range []struct {
		name, path string
		wantStatus int
		wantType   string
	}{
		{"no parameters", "/v1/b2b/sessions", 400, "bad_request"},
		{"no member_id", "/v1/b2b/sessions?organization_id=" + o.ID, 400, "bad_request"},
		{"empty member_id", q(o.ID, ""), 400, "bad_request"},
		{"no organization_id", "/v1/b2b/sessions?member_id=" + m.ID, 400, "bad_request"},
		{"unknown organization", q("nope", m.ID), 404, "organization_not_found"},
		{"unknown member", q(o.ID, "nope"), 404, "member_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) { s.get(t, tc.path).fails(t, tc.wantStatus, tc.wantType) })
	}
}

// TestSessionsRevoke: POST /v1/b2b/sessions/revoke (§6.6).
func TestSessionsRevoke(t *testing.T) {
	s := sharedServer(t)
	o := s.createOrg(t, nil)
	m := s.newMember(t, o, map[string]any{"external_id": "revokee-" + itoa(int(s.next()))})
	idle := s.newMember(t, o, nil)
	a, b, c := m.session(t, nil), m.session(t, nil), m.session(t, nil)

	for _, tc := range []struct {
		name       string
		body       map[string]any
		wantStatus int
		wantType   string
	}{
		{"nothing", map[string]any{}, 400, "no_session_revoke_arguments"},
		{"empty strings", map[string]any{"member_session_id": "", "session_token": "", "session_jwt": "", "member_id": ""}, 400, "no_session_revoke_arguments"},
		{"id and token", map[string]any{"member_session_id": a.ID, "session_token": a.Token}, 400, "too_many_session_revoke_arguments"},
		{"token and member", map[string]any{"session_token": a.Token, "member_id": m.ID}, 400, "too_many_session_revoke_arguments"},
		{"member_id a number", map[string]any{"member_id": 1}, 400, "bad_request"},
		{"unknown session id", map[string]any{"member_session_id": "member-session-test-" + uuid.NewString()}, 404, "session_not_found"},
		{"unknown token", map[string]any{"session_token": wellFormedToken}, 404, "session_not_found"},
		{"JWT by a stranger", map[string]any{"session_jwt": strangerJWT(t, s, m.ID)}, 400, "unable_to_parse_session_jwt"},
		{"unknown member", map[string]any{"member_id": "member-test-" + uuid.NewString()}, 404, "member_not_found"},
		{"external id is not canonical", map[string]any{"member_id": m.state(t).str(t, "member.external_id")}, 404, "member_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) { s.post(t, sessRevokePath, tc.body).fails(t, tc.wantStatus, tc.wantType) })
	}
	for _, x := range []session{a, b, c} {
		s.post(t, sessAuthPath, map[string]any{"session_token": x.Token}).ok(t)
	}

	r := s.post(t, sessRevokePath, map[string]any{"member_session_id": a.ID}).ok(t)
	if len(r.Body) != 2 {
		t.Errorf("revoke answers %s, want only request_id and status_code", r.Raw)
	}
	s.post(t, sessRevokePath, map[string]any{"member_session_id": a.ID}).fails(t, 404, "session_not_found")
	s.post(t, sessRevokePath, map[string]any{"session_token": a.Token}).fails(t, 404, "session_not_found")
	s.post(t, sessRevokePath, map[string]any{"session_token": b.Token}).ok(t)
	s.post(t, sessAuthPath, map[string]any{"session_jwt": b.JWT}).fails(t, 404, "session_not_found")
	s.post(t, sessRevokePath, map[string]any{"session_jwt": c.JWT}).ok(t)
	s.post(t, sessAuthPath, map[string]any{"session_token": c.Token}).fails(t, 404, "session_not_found")

	d, e := m.session(t, nil), m.session(t, nil)
	s.post(t, sessRevokePath, map[string]any{"member_id": m.ID}).ok(t)
	for _, x := range []session{d, e} {
		s.post(t, sessAuthPath, map[string]any{"session_token": x.Token}).fails(t, 404, "session_not_found")
	}
	s.post(t, sessRevokePath, map[string]any{"member_id": m.ID}).ok(t)    // no sessions left: still 200
	s.post(t, sessRevokePath, map[string]any{"member_id": idle.ID}).ok(t) // never had one
}
