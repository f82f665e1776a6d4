package secret

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// rsaBits is the modulus size of session signing keys; the JWKS contract publishes 2048-bit keys.
const rsaBits = 2048

// JWK is one entry of a JWKS. All nine members are always present because Python's JWKS model
// requires each of them; note the spelling x5tS256.
type JWK struct {
	Alg     string   `json:"alg"`
	E       string   `json:"e"`
	KeyOps  []string `json:"key_ops"`
	KID     string   `json:"kid"`
	Kty     string   `json:"kty"`
	N       string   `json:"n"`
	Use     string   `json:"use"`
	X5C     []string `json:"x5c"`
	X5TS256 string   `json:"x5tS256"`
}

// SigningKey is an RS256 key pair with its public JWK.
type SigningKey struct {
	KID     string
	Private *rsa.PrivateKey
	JWK     JWK
}

// GenerateSigningKey makes a fresh 2048-bit RSA key and its JWK, including the self-signed
// certificate some JWKS readers expect in x5c. It costs tens of milliseconds: call it off the
// request path (project creation, key rotation).
func GenerateSigningKey(kid string, now time.Time) (SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return SigningKey{}, err
	}
	jwk, err := publicJWK(kid, priv, now)
	if err != nil {
		return SigningKey{}, err
	}
	return SigningKey{KID: kid, Private: priv, JWK: jwk}, nil
}

func publicJWK(kid string, priv *rsa.PrivateKey, now time.Time) (JWK, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return JWK{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: kid},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return JWK{}, err
	}
	thumb := sha256.Sum256(der)
	return JWK{
		Alg:     "RS256",
		E:       base64.RawURLEncoding.EncodeToString(big.NewInt(int64(priv.PublicKey.E)).Bytes()),
		KeyOps:  []string{"verify"},
		KID:     kid,
		Kty:     "RSA",
		N:       base64.RawURLEncoding.EncodeToString(priv.PublicKey.N.Bytes()),
		Use:     "sig",
		X5C:     []string{base64.StdEncoding.EncodeToString(der)},
		X5TS256: base64.RawURLEncoding.EncodeToString(thumb[:]),
	}, nil
}

// MarshalPrivateKey encodes a private key as PKCS #8 DER, ready to be sealed.
func MarshalPrivateKey(k *rsa.PrivateKey) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k) }

// ParsePrivateKey decodes a PKCS #8 DER RSA key.
func ParsePrivateKey(der []byte) (*rsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("secret: signing key is not RSA")
	}
	return rk, nil
}

// PublicKey decodes the RSA public key of a JWK.
func (j JWK) PublicKey() (*rsa.PublicKey, error) {
	n, err := base64.RawURLEncoding.DecodeString(j.N)
	if err != nil {
		return nil, fmt.Errorf("secret: jwk n: %w", err)
	}
	e, err := base64.RawURLEncoding.DecodeString(j.E)
	if err != nil {
		return nil, fmt.Errorf("secret: jwk e: %w", err)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
}

// SignJWT signs claims with RS256 under key, naming the key in the kid header.
func SignJWT(key SigningKey, claims map[string]any) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims))
	t.Header["kid"] = key.KID
	return t.SignedString(key.Private)
}

// ErrJWTUnverifiable covers every JWT that cannot be trusted at all: not a JWT, an algorithm
// other than RS256, an unknown kid, a bad signature.
var ErrJWTUnverifiable = errors.New("secret: jwt cannot be verified")

// ParseJWT verifies an RS256 JWT's signature with the key keyFor returns for its kid and returns
// its claims, numbers as json.Number. It checks no claims: expiry in particular is the caller's
// call, since an expired session JWT is still a valid way to name a live session.
func ParseJWT(token string, keyFor func(kid string) (*rsa.PublicKey, bool)) (map[string]any, error) {
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithoutClaimsValidation(), jwt.WithJSONNumber())
	claims := jwt.MapClaims{}
	_, err := p.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := keyFor(kid)
		if !ok {
			return nil, ErrJWTUnverifiable
		}
		return k, nil
	})
	if err != nil {
		return nil, ErrJWTUnverifiable
	}
	return claims, nil
}
