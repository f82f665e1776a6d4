package secret

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestSigningKeyRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	k, err := GenerateSigningKey("jwk-test-1", now)
	if err != nil {
		t.Fatal(err)
	}
	der, err := MarshalPrivateKey(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKey(der)
	if err != nil || !back.Equal(k.Private) {
		t.Fatalf("private key round trip: %v", err)
	}
	pub, err := k.JWK.PublicKey()
	if err != nil || !pub.Equal(&k.Private.PublicKey) {
		t.Fatalf("JWK public key: %v", err)
	}
	j := k.JWK
	if j.Alg != "RS256" || j.Kty != "RSA" || j.Use != "sig" || j.E != "AQAB" || len(j.KeyOps) != 1 || j.KeyOps[0] != "verify" || j.KID != "jwk-test-1" {
		t.Errorf("JWK fields: %+v", j)
	}
	cert, err := base64.StdEncoding.DecodeString(j.X5C[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert)
	if j.X5TS256 != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("x5tS256 is not the SHA-256 of the x5c certificate")
	}
	c, err := x509.ParseCertificate(cert)
	if err != nil || !c.PublicKey.(*rsa.PublicKey).Equal(pub) || c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil {
		t.Errorf("x5c is not a self-signed certificate of the key: %v", err)
	}
}

func TestSignAndParseJWT(t *testing.T) {
	now := time.Now()
	k, err := GenerateSigningKey("jwk-test-a", now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateSigningKey("jwk-test-b", now)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]*rsa.PublicKey{k.KID: &k.Private.PublicKey}
	keyFor := func(kid string) (*rsa.PublicKey, bool) { p, ok := keys[kid]; return p, ok }

	tok, err := SignJWT(k, map[string]any{"sub": "member-1", "exp": now.Add(-time.Hour).Unix(), "team": "blue"})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := ParseJWT(tok, keyFor)
	if err != nil {
		t.Fatalf("an expired but correctly signed JWT parses (expiry is the caller's call): %v", err)
	}
	if claims["sub"] != "member-1" || claims["team"] != "blue" {
		t.Errorf("claims: %v", claims)
	}

	byOther, _ := SignJWT(other, map[string]any{"sub": "x"})
	forged := strings.Replace(byOther, "jwk-test-b", "jwk-test-a", 1) // header still names b; re-encode below
	hs256, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x"}).SignedString([]byte("k"))
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2]
	for name, bad := range map[string]string{
		"unknown kid":      byOther,
		"garbled":          forged,
		"HS256":            hs256,
		"tampered payload": tampered,
		"not a JWT":        "hello",
		"empty":            "",
	} {
		if _, err := ParseJWT(bad, keyFor); !errors.Is(err, ErrJWTUnverifiable) {
			t.Errorf("%s: err = %v, want ErrJWTUnverifiable", name, err)
		}
	}
}

// FuzzParseJWT: the parser never panics, and nothing but a token signed by the known key parses.
func FuzzParseJWT(f *testing.F) {
	k, err := GenerateSigningKey("jwk-test-fuzz", time.Now())
	if err != nil {
		f.Fatal(err)
	}
	good, _ := SignJWT(k, map[string]any{"sub": "member", "aud": []string{"p"}})
	for _, s := range []string{good, good + "x", "a.b.c", "..", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 300)} {
		f.Add(s)
	}
	keyFor := func(kid string) (*rsa.PublicKey, bool) {
		if kid == k.KID {
			return &k.Private.PublicKey, true
		}
		return nil, false
	}
	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := ParseJWT(tok, keyFor)
		if err == nil && tok != good && claims["sub"] != "member" {
			t.Fatalf("an unsigned or altered token parsed: %q", tok)
		}
	})
}
