package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// TokenLength is the length of an opaque token: 33 random bytes in unpadded URL-safe base64.
const TokenLength = 44

// NewToken returns a fresh opaque token (session token, intermediate session token, project
// secret body). 264 bits: unguessable, so a fast digest is enough to store it.
func NewToken() string {
	b := make([]byte, 33)
	if _, err := rand.Read(b); err != nil {
		panic("secret: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// IsToken reports whether s has the shape of a token. Anything else cannot have been issued,
// so callers answer "not found" without a database round trip.
func IsToken(s string) bool {
	if len(s) != TokenLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Digest is what sparekey stores of a token or project secret: its SHA-256. Tokens carry 264
// bits of entropy, so a slow hash would add cost without adding safety.
func Digest(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// EqualDigest compares digests in constant time.
func EqualDigest(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// PepperSize is the size of a project's recovery-code pepper.
const PepperSize = 32

// NewPepper returns a fresh HMAC key for a project's recovery codes. It is independent of the
// master key, so a master-key rotation re-seals it without touching a single stored code MAC.
func NewPepper() []byte {
	p := make([]byte, PepperSize)
	if _, err := rand.Read(p); err != nil {
		panic("secret: crypto/rand failed: " + err.Error())
	}
	return p
}

// CodeMAC is the verification index of a recovery code: HMAC-SHA256 under the project's pepper
// of the normalised code. A stolen database without the pepper gives an attacker nothing to
// brute-force offline, and lookups are one indexed probe.
func CodeMAC(pepper []byte, normalized string) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(normalized))
	return m.Sum(nil)
}
