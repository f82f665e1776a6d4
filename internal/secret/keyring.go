package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MasterKeySize is the size of an AES-256 key.
const MasterKeySize = 32

// ErrDecrypt means a sealed value could not be opened: it was sealed under a key the keyring
// does not hold, or it (or the data bound to it) was altered.
var ErrDecrypt = errors.New("secret: cannot decrypt: wrong master key or altered data")

// ParseMasterKey accepts 32 bytes written as 64 hex characters or as base64 (standard or URL
// alphabet, padded or not). Surrounding whitespace is ignored so a key file may end in a newline.
func ParseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*MasterKeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == MasterKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("a master key is %d random bytes written as %d hex characters or as base64 (generate one with: openssl rand -hex 32)", MasterKeySize, 2*MasterKeySize)
}

// NewMasterKey returns a fresh random master key as 64 hex characters.
func NewMasterKey() (string, error) {
	k := make([]byte, MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return hex.EncodeToString(k), nil
}

// Keyring seals values with AES-256-GCM under its primary key and opens values sealed under any
// key it holds. A sealed value starts with the 4-byte id of its key, so values sealed under an
// older master key stay readable while a rotation re-seals them.
type Keyring struct {
	primary uint32
	aeads   map[uint32]cipher.AEAD
}

// NewKeyring builds a keyring whose primary (sealing) key is primary; older keys only open.
func NewKeyring(primary []byte, older ...[]byte) (*Keyring, error) {
	kr := &Keyring{aeads: make(map[uint32]cipher.AEAD)}
	for i, key := range append([][]byte{primary}, older...) {
		if len(key) != MasterKeySize {
			return nil, fmt.Errorf("secret: master key must be %d bytes, got %d", MasterKeySize, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := keyID(key)
		if i == 0 {
			kr.primary = id
		}
		kr.aeads[id] = aead
	}
	return kr, nil
}

// keyID names a key without revealing it: the first 4 bytes of a domain-separated SHA-256.
func keyID(key []byte) uint32 {
	sum := sha256.Sum256(append([]byte("sparekey master key id\x00"), key...))
	return binary.BigEndian.Uint32(sum[:4])
}

// PrimaryKeyID identifies the key new values are sealed under.
func (k *Keyring) PrimaryKeyID() uint32 { return k.primary }

// Seal encrypts plaintext; ad (associated data) binds the result to its owner (e.g. project,
// member and record id) so a sealed value copied onto another row no longer opens.
func (k *Keyring) Seal(plaintext, ad []byte) []byte {
	aead := k.aeads[k.primary]
	out := make([]byte, 4, 4+aead.NonceSize()+len(plaintext)+aead.Overhead())
	binary.BigEndian.PutUint32(out, k.primary)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("secret: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, ad)
}

// Open decrypts a value made by Seal with the same associated data.
func (k *Keyring) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < 4 {
		return nil, ErrDecrypt
	}
	aead, ok := k.aeads[binary.BigEndian.Uint32(sealed)]
	if !ok || len(sealed) < 4+aead.NonceSize()+aead.Overhead() {
		return nil, ErrDecrypt
	}
	nonce := sealed[4 : 4+aead.NonceSize()]
	pt, err := aead.Open(nil, nonce, sealed[4+aead.NonceSize():], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// SealedKeyID reports which key sealed a value (for re-sealing after a rotation).
func SealedKeyID(sealed []byte) (uint32, bool) {
	if len(sealed) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(sealed), true
}
