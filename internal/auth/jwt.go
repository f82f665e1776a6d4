package auth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"time"

	"github.com/sparekey/sparekey/internal/secret"
)

// JWT claim names of Stytch's session and organization objects.
const (
	claimSession      = "https://stytch.com/session"
	claimOrganization = "https://stytch.com/organization"
)

func issuer(projectID string) string { return "stytch.com/" + projectID }

// mintJWT signs a session JWT with the project's newest key (§7). It lives at most five
// minutes, and never beyond the session: clients refresh it through sessions authenticate.
func (s *Service) mintJWT(ctx context.Context, ps *projectState, sess *Session, m *Member, org *Organization, now time.Time) (string, error) {
	if err := s.loadKeys(ctx, ps, false); err != nil {
		return "", err
	}
	ps.mu.Lock()
	key := ps.signer
	ps.mu.Unlock()

	exp := now.Add(jwtLifetime)
	if sess.ExpiresAt.Before(exp) {
		exp = sess.ExpiresAt
	}
	claims := make(map[string]any, len(sess.CustomClaims)+8)
	for k, v := range sess.CustomClaims {
		claims[k] = v
	}
	factors := sess.Factors
	if factors == nil {
		factors = []Factor{}
	}
	claims["sub"] = m.ID
	claims["iss"] = issuer(ps.Project.ID)
	claims["aud"] = []string{ps.Project.ID}
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = exp.Unix()
	claims[claimSession] = map[string]any{
		"id":                     sess.ID,
		"started_at":             sess.StartedAt.Format(time.RFC3339),
		"last_accessed_at":       sess.LastAccessedAt.Format(time.RFC3339),
		"expires_at":             sess.ExpiresAt.Format(time.RFC3339),
		"attributes":             map[string]string{"ip_address": "", "user_agent": ""},
		"authentication_factors": factors,
		"roles":                  m.RoleIDs(),
	}
	claims[claimOrganization] = map[string]string{"organization_id": org.ID, "slug": org.Slug}
	return secret.SignJWT(key, claims)
}

// verifySessionJWT checks a session JWT (§6.6) and returns the session id it names. Expiry is
// not checked: an expired JWT of a live session is how clients refresh.
func (s *Service) verifySessionJWT(ctx context.Context, ps *projectState, token string, now time.Time) (string, error) {
	if err := s.loadKeys(ctx, ps, false); err != nil {
		return "", err
	}
	unknownKID := false
	keyFor := func(kid string) (*rsa.PublicKey, bool) {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		k, ok := ps.publicKeys[kid]
		unknownKID = !ok
		return k, ok
	}
	claims, err := secret.ParseJWT(token, keyFor)
	if err != nil && unknownKID {
		// Another replica may have added a key since this one loaded them.
		if lerr := s.loadKeys(ctx, ps, true); lerr != nil {
			return "", lerr
		}
		claims, err = secret.ParseJWT(token, keyFor)
	}
	if err != nil {
		return "", ErrUnparseableJWT
	}
	if iss, _ := claims["iss"].(string); iss != issuer(ps.Project.ID) {
		return "", ErrJWTInvalidIssuer
	}
	if !audienceHas(claims["aud"], ps.Project.ID) {
		return "", ErrJWTInvalidAudience
	}
	if nbf, ok := claims["nbf"]; ok {
		n, isNum := nbf.(json.Number)
		v, err := n.Int64()
		if !isNum || err != nil || time.Unix(v, 0).After(now) {
			return "", ErrJWTInvalidClaims
		}
	}
	sub, _ := claims["sub"].(string)
	sc, _ := claims[claimSession].(map[string]any)
	id, _ := sc["id"].(string)
	if sub == "" || id == "" {
		return "", ErrJWTInvalidClaims
	}
	return id, nil
}

func audienceHas(aud any, projectID string) bool {
	switch a := aud.(type) {
	case string:
		return a == projectID
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && s == projectID {
				return true
			}
		}
	}
	return false
}
