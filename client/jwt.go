package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// defaultJWKSMaxAge bounds how long fetched keys are trusted, so a key the server retired
	// stops verifying here within it.
	defaultJWKSMaxAge = 10 * time.Minute
	// jwksRefreshCooldown spaces refetches caused by unknown kids: a stream of forged tokens
	// naming random kids must not turn into a stream of JWKS requests.
	jwksRefreshCooldown = 30 * time.Second
	// minRSABits refuses keys too weak to trust; sparekey publishes 2048-bit keys.
	minRSABits = 2048
	// maxJWTBytes bounds the work a hostile token can cause before its signature is checked.
	maxJWTBytes = 64 << 10
)

// ErrJWTInvalid matches every refusal of [SessionsClient.AuthenticateJWTLocal]; the specific
// errors below match it too. A JWKS that cannot be fetched is not a refusal: it is reported as the
// fetch's own error (*Error, *TransportError or *ResponseError).
var ErrJWTInvalid = errors.New("sparekey: session JWT refused")

type jwtError struct{ msg string }

func (e *jwtError) Error() string { return e.msg }
func (e *jwtError) Unwrap() error { return ErrJWTInvalid }

// The reasons AuthenticateJWTLocal refuses a JWT. Each matches ErrJWTInvalid with errors.Is.
var (
	ErrJWTMalformed       error = &jwtError{"sparekey: session JWT is malformed"}
	ErrJWTUnknownKey      error = &jwtError{"sparekey: session JWT names a key the project's JWKS does not list"}
	ErrJWTSignature       error = &jwtError{"sparekey: session JWT signature does not verify"}
	ErrJWTInvalidIssuer   error = &jwtError{"sparekey: session JWT has the wrong issuer"}
	ErrJWTInvalidAudience error = &jwtError{"sparekey: session JWT was not issued for this project"}
	ErrJWTExpired         error = &jwtError{"sparekey: session JWT has expired"}
	ErrJWTNotYetValid     error = &jwtError{"sparekey: session JWT is not valid yet"}
	ErrJWTInvalidClaims   error = &jwtError{"sparekey: session JWT lacks required claims"}
)

// Claim names of the Stytch session and organization objects.
const (
	claimSession      = "https://stytch.com/session"
	claimOrganization = "https://stytch.com/organization"
)

// registeredClaims are left out of MemberSession.CustomClaims, as are the two Stytch claims.
var registeredClaims = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true}

// AuthenticateJWTLocal verifies a session JWT without calling the server for each JWT and
// returns the session it carries, with the custom claims. The project's JWKS is fetched on first
// use, cached, fetched again after its maximum age (10 minutes by default, [WithJWKSMaxAge]) and
// when a JWT names an unknown kid (at most every 30 seconds).
//
// The JWT must be a compact JWS with header typ JWT, alg RS256 and a kid; signed by that key;
// iss stytch.com/{project_id}; aud containing the project id; exp in the future and nbf, when
// present, in the past (each within [WithJWTLeeway]); and carry the https://stytch.com/session and
// https://stytch.com/organization claims. A revoked session's JWT passes until its exp (at most
// five minutes after issue): use [SessionsClient.Authenticate] where that matters. An expired JWT
// is refused with [ErrJWTExpired]; Authenticate accepts it while its session lives and answers
// with a fresh one.
func (s *SessionsClient) AuthenticateJWTLocal(ctx context.Context, token string) (*MemberSession, error) {
	if len(token) > maxJWTBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrJWTMalformed, maxJWTBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: %d parts, want 3", ErrJWTMalformed, len(parts))
	}
	var header struct {
		Alg  string          `json:"alg"`
		Typ  string          `json:"typ"`
		Kid  string          `json:"kid"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrJWTMalformed, err)
	}
	switch {
	case header.Typ != "JWT":
		return nil, fmt.Errorf("%w: header typ %q, want JWT", ErrJWTMalformed, header.Typ)
	case header.Alg != "RS256":
		// Anything else (none, HS256 keyed with the public key, ...) is an algorithm confusion.
		return nil, fmt.Errorf("%w: header alg %q, want RS256", ErrJWTMalformed, header.Alg)
	case header.Kid == "":
		return nil, fmt.Errorf("%w: header has no kid", ErrJWTMalformed)
	case header.Crit != nil:
		return nil, fmt.Errorf("%w: header has crit extensions", ErrJWTMalformed)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url", ErrJWTMalformed)
	}
	key, err := s.publicKey(ctx, header.Kid)
	if err != nil {
		return nil, err
	}
	if len(sig) != key.Size() {
		return nil, fmt.Errorf("%w: signature is %d bytes, want %d", ErrJWTMalformed, len(sig), key.Size())
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig); err != nil {
		return nil, ErrJWTSignature
	}

	// The payload is authentic from here on; what remains is whether it is for us and current.
	var claims struct {
		Sub     string       `json:"sub"`
		Iss     string       `json:"iss"`
		Aud     audience     `json:"aud"`
		Exp     *numericDate `json:"exp"`
		Nbf     *numericDate `json:"nbf"`
		Session *struct {
			ID                    string                 `json:"id"`
			StartedAt             time.Time              `json:"started_at"`
			LastAccessedAt        time.Time              `json:"last_accessed_at"`
			ExpiresAt             time.Time              `json:"expires_at"`
			AuthenticationFactors []AuthenticationFactor `json:"authentication_factors"`
			Roles                 []string               `json:"roles"`
		} `json:"https://stytch.com/session"`
		Organization *struct {
			OrganizationID string `json:"organization_id"`
			Slug           string `json:"slug"`
		} `json:"https://stytch.com/organization"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrJWTInvalidClaims, err)
	}
	now := s.c.clock()
	leeway := s.c.jwtLeeway
	if claims.Iss != "stytch.com/"+s.c.projectID {
		return nil, ErrJWTInvalidIssuer
	}
	if !claims.Aud.has(s.c.projectID) {
		return nil, ErrJWTInvalidAudience
	}
	if claims.Exp == nil {
		return nil, fmt.Errorf("%w: no exp", ErrJWTInvalidClaims)
	}
	if !now.Before(time.Time(*claims.Exp).Add(leeway)) {
		return nil, ErrJWTExpired
	}
	if claims.Nbf != nil && now.Add(leeway).Before(time.Time(*claims.Nbf)) {
		return nil, ErrJWTNotYetValid
	}
	sess, org := claims.Session, claims.Organization
	switch {
	case claims.Sub == "":
		return nil, fmt.Errorf("%w: no sub", ErrJWTInvalidClaims)
	case sess == nil || sess.ID == "" || sess.StartedAt.IsZero() || sess.LastAccessedAt.IsZero() || sess.ExpiresAt.IsZero() ||
		sess.AuthenticationFactors == nil || sess.Roles == nil:
		return nil, fmt.Errorf("%w: incomplete %s claim", ErrJWTInvalidClaims, claimSession)
	case org == nil || org.OrganizationID == "":
		return nil, fmt.Errorf("%w: incomplete %s claim", ErrJWTInvalidClaims, claimOrganization)
	}
	if !now.Before(sess.ExpiresAt.Add(leeway)) {
		return nil, fmt.Errorf("%w: the session expired", ErrJWTExpired)
	}
	custom, err := customClaims(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrJWTInvalidClaims, err)
	}
	return &MemberSession{
		MemberSessionID:       sess.ID,
		MemberID:              claims.Sub,
		OrganizationID:        org.OrganizationID,
		OrganizationSlug:      org.Slug,
		StartedAt:             sess.StartedAt,
		LastAccessedAt:        sess.LastAccessedAt,
		ExpiresAt:             sess.ExpiresAt,
		AuthenticationFactors: sess.AuthenticationFactors,
		Roles:                 sess.Roles,
		CustomClaims:          custom,
	}, nil
}

// b64 is the JWS segment encoding: base64url without padding, with no stray bits.
var b64 = base64.RawURLEncoding.Strict()

// decodeSegment decodes one base64url JSON-object segment of a JWT.
func decodeSegment(seg string, out any) error {
	raw, err := b64.DecodeString(seg)
	if err != nil {
		return errors.New("not base64url")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("not a JSON object")
	}
	return strictUnmarshal(raw, out)
}

// customClaims returns the payload's claims other than the registered and Stytch ones.
func customClaims(seg string) (map[string]any, error) {
	var all map[string]json.RawMessage
	if err := decodeSegment(seg, &all); err != nil {
		return nil, err
	}
	out := make(map[string]any)
	for k, raw := range all {
		if registeredClaims[k] || k == claimSession || k == claimOrganization {
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// audience is the aud claim: one string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

func (a audience) has(s string) bool {
	for _, v := range a {
		if v == s {
			return true
		}
	}
	return false
}

// numericDate is a JWT time: seconds since the epoch as a JSON number (RFC 7519 §2).
type numericDate time.Time

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || !(b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		return errors.New("a time claim is not a number")
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		return errors.New("a time claim is out of range")
	}
	sec, frac := math.Modf(f)
	*d = numericDate(time.Unix(int64(sec), int64(frac*1e9)))
	return nil
}

// jwksCache holds the project's verification keys.
type jwksCache struct {
	// fetching admits one fetch at a time; waiting on it honours the caller's context.
	fetching chan struct{}

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey
	fetchedAt time.Time // when keys were fetched; zero before the first success
	triedAt   time.Time // the last fetch attempt, successful or not
}

func newJWKSCache() *jwksCache { return &jwksCache{fetching: make(chan struct{}, 1)} }

// lookup returns the key for kid, or whether a fetch is due: no keys yet, keys past their max
// age, or an unknown kid once the cooldown has passed.
func (j *jwksCache) lookup(kid string, now time.Time, maxAge, cooldown time.Duration) (key *rsa.PublicKey, fetch bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.keys == nil || now.Sub(j.fetchedAt) >= maxAge || now.Before(j.fetchedAt) {
		return nil, true
	}
	if k, ok := j.keys[kid]; ok {
		return k, false
	}
	return nil, now.Sub(j.triedAt) >= cooldown || now.Before(j.triedAt)
}

func (s *SessionsClient) publicKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	j, c := s.jwks, s.c
	if k, fetch := j.lookup(kid, c.clock(), c.jwksMaxAge, c.jwksBackoff); !fetch {
		if k == nil {
			return nil, ErrJWTUnknownKey
		}
		return k, nil
	}
	select {
	case j.fetching <- struct{}{}:
		defer func() { <-j.fetching }()
	case <-ctx.Done():
		return nil, &TransportError{Method: "GET", Path: "/v1/b2b/sessions/jwks/" + pathEscape(c.projectID), Err: context.Cause(ctx)}
	}
	// Another caller may have fetched while this one waited.
	if k, fetch := j.lookup(kid, c.clock(), c.jwksMaxAge, c.jwksBackoff); !fetch {
		if k == nil {
			return nil, ErrJWTUnknownKey
		}
		return k, nil
	}
	resp, err := s.GetJWKS(ctx)
	now := c.clock()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.triedAt = now
	if err != nil {
		return nil, fmt.Errorf("sparekey: fetch JWKS: %w", err)
	}
	j.keys, j.fetchedAt = usableKeys(resp.Keys), now
	if k, ok := j.keys[kid]; ok {
		return k, nil
	}
	return nil, ErrJWTUnknownKey
}

// usableKeys keeps the RSA signing keys fit for RS256 and drops the rest.
func usableKeys(jwks []JWK) map[string]*rsa.PublicKey {
	keys := make(map[string]*rsa.PublicKey, len(jwks))
	for _, k := range jwks {
		if k.Kty != "RSA" || k.KID == "" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		n, errN := b64.DecodeString(k.N)
		e, errE := b64.DecodeString(k.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			continue
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			continue
		}
		keys[k.KID] = pub
	}
	return keys
}
