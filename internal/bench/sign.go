package bench

import (
	"fmt"
	"runtime"
	"time"

	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/secret"
)

// SessionClaims is a session JWT's claims as recover mints them (CONTRACT.md §7): a password
// and a recovery-code factor, the member role, no custom claims.
func SessionClaims(now time.Time) map[string]any {
	projectID := "project-test-" + uuid.NewString()
	memberID := "member-test-" + uuid.NewString()
	ts := now.UTC().Truncate(time.Second)
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	factor := func(typ, delivery string, extra map[string]any) map[string]any {
		f := map[string]any{"type": typ, "delivery_method": delivery, "created_at": rfc(ts), "updated_at": rfc(ts), "last_authenticated_at": rfc(ts)}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	return map[string]any{
		"sub": memberID,
		"iss": "stytch.com/" + projectID,
		"aud": []string{projectID},
		"iat": ts.Unix(),
		"nbf": ts.Unix(),
		"exp": ts.Add(5 * time.Minute).Unix(),
		"https://stytch.com/session": map[string]any{
			"id":               "member-session-test-" + uuid.NewString(),
			"started_at":       rfc(ts),
			"last_accessed_at": rfc(ts),
			"expires_at":       rfc(ts.Add(time.Hour)),
			"attributes":       map[string]string{"ip_address": "", "user_agent": ""},
			"authentication_factors": []any{
				factor("password", "knowledge", nil),
				factor("recovery_codes", "recovery_code", map[string]any{"recovery_code_factor": map[string]string{"totp_recovery_code_id": "member-totp-recovery-code-test-" + uuid.NewString()}}),
			},
			"roles": []string{"stytch_member"},
		},
		"https://stytch.com/organization": map[string]string{"organization_id": "organization-test-" + uuid.NewString(), "slug": "bench-org"},
	}
}

// measureSign signs a representative session JWT with a fresh 2048-bit key, on this goroutine,
// for about d, and divides this process's CPU time by the number of signatures. Nothing else
// of the bench runs meanwhile, so process CPU is the signing's (plus its garbage collection,
// which a server pays as well). It includes building the claims map and encoding it, exactly
// what secret.SignJWT does for the server.
func measureSign(d time.Duration) (SignBaseline, error) {
	key, err := secret.GenerateSigningKey("jwk-test-"+uuid.NewString(), time.Now())
	if err != nil {
		return SignBaseline{}, err
	}
	claims := SessionClaims(time.Now())
	jwt, err := secret.SignJWT(key, claims) // warm up: first use builds the key's precomputed values
	if err != nil {
		return SignBaseline{}, err
	}
	runtime.GC()
	cpu0, err := SelfCPU()
	if err != nil {
		return SignBaseline{}, err
	}
	start := time.Now()
	n := 0
	for n < 20 || time.Since(start) < d {
		if _, err := secret.SignJWT(key, claims); err != nil {
			return SignBaseline{}, err
		}
		n++
	}
	wall := time.Since(start)
	cpu1, err := SelfCPU()
	if err != nil {
		return SignBaseline{}, err
	}
	if n == 0 {
		return SignBaseline{}, fmt.Errorf("bench: no signature measured")
	}
	return SignBaseline{
		KeyBits:     key.Private.N.BitLen(),
		JWTBytes:    len(jwt),
		Signatures:  n,
		CPUPerOpUS:  round3((cpu1 - cpu0).Seconds() / float64(n) * 1e6),
		WallPerOpUS: round3(wall.Seconds() / float64(n) * 1e6),
	}, nil
}
