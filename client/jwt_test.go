package client_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparekey/sparekey/client"
)

// Keys are slow to make under the race detector: make them once.
var testKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	var keys []*rsa.PrivateKey
	for _, bits := range []int{2048, 2048, 1024} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
	}
	return keys
})

func jwkOf(kid string, k *rsa.PrivateKey) client.JWK {
	return client.JWK{
		Alg: "RS256", Kty: "RSA", Use: "sig", KID: kid, KeyOps: []string{"verify"},
		N: base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	}
}

// jwksServer publishes a JWKS for project pid and counts how often it is fetched. It stands in
// for sparekey where a test needs keys sparekey would never publish or sign with.
type jwksServer struct {
	pid     string
	fetches atomic.Int32
	mu      sync.Mutex
	keys    []client.JWK
	down    bool
}

func (s *jwksServer) publish(keys ...client.JWK) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *jwksServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/b2b/sessions/jwks/"+s.pid || r.Header.Get("Authorization") != "" {
		http.Error(w, "unexpected request", 400)
		return
	}
	s.fetches.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if s.down {
		w.WriteHeader(503)
		io.WriteString(w, `{"status_code":503,"request_id":"r","error_type":"unavailable","error_message":"down","error_url":""}`)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"keys": s.keys, "request_id": "request-id-test-1", "status_code": 200})
}

func newJWKSServer(t *testing.T, pid string, keys ...client.JWK) (*jwksServer, string) {
	s := &jwksServer{pid: pid, keys: keys}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func signedJWT(key *rsa.PrivateKey, header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(claims)
	input := b64url(h) + "." + b64url(p)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		panic(err)
	}
	return input + "." + b64url(sig)
}

func sessionClaims(pid string, now time.Time) map[string]any {
	return map[string]any{
		"sub": "member-test-1",
		"iss": "stytch.com/" + pid,
		"aud": []string{pid},
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
		"https://stytch.com/session": map[string]any{
			"id":               "member-session-test-1",
			"started_at":       now.Add(-time.Hour).Format(time.RFC3339),
			"last_accessed_at": now.Format(time.RFC3339),
			"expires_at":       now.Add(time.Hour).Format(time.RFC3339),
			"attributes":       map[string]any{"ip_address": "", "user_agent": ""},
			"authentication_factors": []map[string]any{{
				"type": "password", "delivery_method": "knowledge",
				"created_at": now.Format(time.RFC3339), "updated_at": now.Format(time.RFC3339), "last_authenticated_at": now.Format(time.RFC3339),
			}},
			"roles": []string{"stytch_member"},
		},
		"https://stytch.com/organization": map[string]any{"organization_id": "organization-test-1", "slug": "acme"},
		"team":                            "blue",
		"limits":                          map[string]any{"seats": 5},
	}
}

func TestAuthenticateJWTLocalStrictness(t *testing.T) {
	const pid = "project-test-jwt"
	keys := testKeys()
	good, other, weak := keys[0], keys[1], keys[2]
	_, url := newJWKSServer(t, pid, jwkOf("k1", good), jwkOf("weak", weak))
	clock := newTestClock()
	now := clock.Now()
	c, err := client.New(url, pid, "secret", client.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	lenient, err := client.New(url, pid, "secret", client.WithClock(clock.Now), client.WithJWTLeeway(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	header := func() map[string]any { return map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k1"} }
	with := func(change func(h, c map[string]any)) string {
		h, cl := header(), sessionClaims(pid, now)
		change(h, cl)
		return signedJWT(good, h, cl)
	}
	valid := with(func(h, c map[string]any) {})
	parts := strings.Split(valid, ".")

	// The session carried by a valid JWT, custom claims included.
	sess, err := c.Sessions.AuthenticateJWTLocal(context.Background(), valid)
	if err != nil {
		t.Fatalf("valid JWT: %v", err)
	}
	equal(t, "session", *sess, client.MemberSession{
		MemberSessionID:  "member-session-test-1",
		MemberID:         "member-test-1",
		OrganizationID:   "organization-test-1",
		OrganizationSlug: "acme",
		StartedAt:        now.Add(-time.Hour),
		LastAccessedAt:   now,
		ExpiresAt:        now.Add(time.Hour),
		AuthenticationFactors: []client.AuthenticationFactor{
			{Type: "password", DeliveryMethod: "knowledge", CreatedAt: now, UpdatedAt: now, LastAuthenticatedAt: now},
		},
		Roles:        []string{"stytch_member"},
		CustomClaims: map[string]any{"team": "blue", "limits": map[string]any{"seats": float64(5)}},
	})

	for _, tc := range []struct {
		name    string
		token   string
		c       *client.Client
		wantErr error // nil: accepted
	}{
		{"aud as a single string", with(func(h, c map[string]any) { c["aud"] = pid }), c, nil},
		{"no nbf", with(func(h, c map[string]any) { delete(c, "nbf") }), c, nil},
		{"two parts", parts[0] + "." + parts[1], c, client.ErrJWTMalformed},
		{"four parts", valid + ".x", c, client.ErrJWTMalformed},
		{"empty", "", c, client.ErrJWTMalformed},
		{"header not base64url", "e30=." + parts[1] + "." + parts[2], c, client.ErrJWTMalformed},
		{"header not JSON", b64url([]byte("hello")) + "." + parts[1] + "." + parts[2], c, client.ErrJWTMalformed},
		{"no typ", with(func(h, c map[string]any) { delete(h, "typ") }), c, client.ErrJWTMalformed},
		{"typ not JWT", with(func(h, c map[string]any) { h["typ"] = "at+jwt" }), c, client.ErrJWTMalformed},
		{"alg none", b64url([]byte(`{"alg":"none","typ":"JWT","kid":"k1"}`)) + "." + parts[1] + ".", c, client.ErrJWTMalformed},
		{"alg HS256", with(func(h, c map[string]any) { h["alg"] = "HS256" }), c, client.ErrJWTMalformed},
		{"alg RS512", with(func(h, c map[string]any) { h["alg"] = "RS512" }), c, client.ErrJWTMalformed},
		{"no kid", with(func(h, c map[string]any) { delete(h, "kid") }), c, client.ErrJWTMalformed},
		{"crit extension", with(func(h, c map[string]any) { h["crit"] = []string{"exp"} }), c, client.ErrJWTMalformed},
		{"signature cut short", valid[:len(valid)-4], c, client.ErrJWTMalformed},
		{"signature padded", valid + "==", c, client.ErrJWTMalformed},
		{"empty signature", parts[0] + "." + parts[1] + ".", c, client.ErrJWTMalformed},
		{"unknown kid", with(func(h, c map[string]any) { h["kid"] = "k9" }), c, client.ErrJWTUnknownKey},
		{"key too weak to trust", signedJWT(weak, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "weak"}, sessionClaims(pid, now)), c, client.ErrJWTUnknownKey},
		{"payload altered", parts[0] + "." + b64url([]byte(`{"sub":"member-test-2"}`)) + "." + parts[2], c, client.ErrJWTSignature},
		{"signed by another key", signedJWT(other, header(), sessionClaims(pid, now)), c, client.ErrJWTSignature},
		{"wrong issuer", with(func(h, c map[string]any) { c["iss"] = "stytch.com/project-test-other" }), c, client.ErrJWTInvalidIssuer},
		{"no issuer", with(func(h, c map[string]any) { delete(c, "iss") }), c, client.ErrJWTInvalidIssuer},
		{"wrong audience", with(func(h, c map[string]any) { c["aud"] = []string{"project-test-other"} }), c, client.ErrJWTInvalidAudience},
		{"no exp", with(func(h, c map[string]any) { delete(c, "exp") }), c, client.ErrJWTInvalidClaims},
		{"exp as a string", with(func(h, c map[string]any) { c["exp"] = "9999999999" }), c, client.ErrJWTInvalidClaims},
		{"expired", with(func(h, c map[string]any) { c["exp"] = now.Unix() }), c, client.ErrJWTExpired},
		{"expired, within the leeway", with(func(h, c map[string]any) { c["exp"] = now.Add(-20 * time.Second).Unix() }), lenient, nil},
		{"expired, beyond the leeway", with(func(h, c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() }), lenient, client.ErrJWTExpired},
		{"not valid yet", with(func(h, c map[string]any) { c["nbf"] = now.Add(time.Second).Unix() }), c, client.ErrJWTNotYetValid},
		{"not valid yet, within the leeway", with(func(h, c map[string]any) { c["nbf"] = now.Add(20 * time.Second).Unix() }), lenient, nil},
		{"session expired", with(func(h, c map[string]any) {
			c["https://stytch.com/session"].(map[string]any)["expires_at"] = now.Format(time.RFC3339)
		}), c, client.ErrJWTExpired},
		{"no sub", with(func(h, c map[string]any) { delete(c, "sub") }), c, client.ErrJWTInvalidClaims},
		{"no session claim", with(func(h, c map[string]any) { delete(c, "https://stytch.com/session") }), c, client.ErrJWTInvalidClaims},
		{"session claim without id", with(func(h, c map[string]any) { delete(c["https://stytch.com/session"].(map[string]any), "id") }), c, client.ErrJWTInvalidClaims},
		{"session claim without roles", with(func(h, c map[string]any) { delete(c["https://stytch.com/session"].(map[string]any), "roles") }), c, client.ErrJWTInvalidClaims},
		{"session times not RFC 3339", with(func(h, c map[string]any) {
			c["https://stytch.com/session"].(map[string]any)["started_at"] = "yesterday"
		}), c, client.ErrJWTInvalidClaims},
		{"no organization claim", with(func(h, c map[string]any) { delete(c, "https://stytch.com/organization") }), c, client.ErrJWTInvalidClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Sessions.AuthenticateJWTLocal(context.Background(), tc.token)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !errors.Is(err, client.ErrJWTInvalid) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestJWKSCache(t *testing.T) {
	const pid = "project-test-cache"
	ctx := context.Background()
	keys := testKeys()
	srv, url := newJWKSServer(t, pid, jwkOf("k1", keys[0]))
	clock := newTestClock()
	c, err := client.New(url, pid, "secret", client.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	token := func(key *rsa.PrivateKey, kid string) string {
		return signedJWT(key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, sessionClaims(pid, clock.Now()))
	}
	verify := func(what, jwt string, wantErr error, wantFetches int32) {
		t.Helper()
		_, err := c.Sessions.AuthenticateJWTLocal(ctx, jwt)
		if (wantErr == nil && err != nil) || !errors.Is(err, wantErr) {
			t.Errorf("%s: got %v, want %v", what, err, wantErr)
		}
		if n := srv.fetches.Load(); n != wantFetches {
			t.Errorf("%s: %d JWKS fetches, want %d", what, n, wantFetches)
		}
	}

	// Many first uses at once share one fetch.
	var wg sync.WaitGroup
	first := token(keys[0], "k1")
	for range 8 {
		wg.Go(func() {
			if _, err := c.Sessions.AuthenticateJWTLocal(ctx, first); err != nil {
				t.Errorf("first use: %v", err)
			}
		})
	}
	wg.Wait()
	verify("cached", first, nil, 1)

	// A new key is picked up on its first unknown kid, but refetches are spaced 30 s apart.
	srv.publish(jwkOf("k1", keys[0]), jwkOf("k2", keys[1]))
	clock.Advance(29 * time.Second)
	verify("unknown kid inside the cooldown", token(keys[1], "k2"), client.ErrJWTUnknownKey, 1)
	clock.Advance(time.Second)
	verify("unknown kid after the cooldown", token(keys[1], "k2"), nil, 2)
	verify("forged kid right after a fetch", token(keys[1], "k3"), client.ErrJWTUnknownKey, 2)
	verify("known kid", token(keys[0], "k1"), nil, 2)

	// Keys are trusted for at most 10 minutes: a retired key stops verifying.
	srv.publish(jwkOf("k2", keys[1]))
	clock.Advance(10*time.Minute - time.Second)
	verify("retired key inside the max age", token(keys[0], "k1"), nil, 2)
	clock.Advance(time.Second)
	verify("retired key after the max age", token(keys[0], "k1"), client.ErrJWTUnknownKey, 3)

	// A JWKS that cannot be fetched is not a verdict on the JWT.
	srv.setDown(true)
	clock.Advance(10 * time.Minute)
	_, err = c.Sessions.AuthenticateJWTLocal(ctx, token(keys[1], "k2"))
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != 503 || errors.Is(err, client.ErrJWTInvalid) {
		t.Errorf("JWKS down: got %v, want the fetch's *client.Error", err)
	}
	srv.setDown(false)
	verify("JWKS back", token(keys[1], "k2"), nil, 5)
}

func TestAuthenticateJWTLocalOfAnotherProject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	sk := newSparekey(t, clock.Now)
	c, _ := newClient(t, sk, clock)
	m := newMFAMember(t, c, "Umbrella")
	res, err := c.RecoveryCodes.Recover(ctx, client.RecoverParams{OrganizationID: m.orgID, MemberID: m.memberID, RecoveryCode: m.codes[0], IntermediateSessionToken: m.ist})
	if err != nil {
		t.Fatal(err)
	}
	// The same server, another project: its JWKS lists other keys.
	project, secret, err := sk.svc.CreateProject(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := client.New(sk.URL, project.ID, secret, client.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Sessions.AuthenticateJWTLocal(ctx, res.SessionJWT); !errors.Is(err, client.ErrJWTUnknownKey) {
		t.Errorf("JWT of another project: %v, want ErrJWTUnknownKey", err)
	}
	// The server agrees.
	_, err = other.Sessions.Authenticate(ctx, client.AuthenticateSessionParams{SessionJWT: res.SessionJWT})
	apiError(t, err, 400, "unable_to_parse_session_jwt")
}

// FuzzAuthenticateJWTLocal feeds arbitrary tokens to the local check: it must never panic, and
// must refuse anything it cannot verify with an ErrJWTInvalid error rather than a fetch error.
func FuzzAuthenticateJWTLocal(f *testing.F) {
	const pid = "project-test-fuzz"
	key := testKeys()[0]
	s := &jwksServer{pid: pid, keys: []client.JWK{jwkOf("k1", key)}}
	ts := httptest.NewServer(s)
	defer ts.Close()
	clock := newTestClock()
	c, err := client.New(ts.URL, pid, "secret", client.WithClock(clock.Now))
	if err != nil {
		f.Fatal(err)
	}
	valid := signedJWT(key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k1"}, sessionClaims(pid, clock.Now()))
	parts := strings.Split(valid, ".")
	for _, seed := range []string{
		valid, "", ".", "..", "...", parts[0] + "." + parts[1] + ".", parts[0] + ".." + parts[2],
		b64url([]byte(`{"alg":"RS256","typ":"JWT","kid":"k1"}`)) + "." + b64url([]byte(`{"exp":1e309}`)) + "." + parts[2],
		b64url([]byte(`{"alg":"RS256","typ":"JWT","kid":"k9"}`)) + "." + parts[1] + "." + parts[2],
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		sess, err := c.Sessions.AuthenticateJWTLocal(context.Background(), token)
		switch {
		case err == nil:
			if token != valid || sess.MemberID != "member-test-1" {
				t.Fatalf("accepted %q", token)
			}
		case !errors.Is(err, client.ErrJWTInvalid):
			t.Fatalf("%q: %v is not a refusal", token, err)
		}
	})
}
