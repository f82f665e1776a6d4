// Package password imports password hashes produced by other systems
// (POST /v1/b2b/passwords/migrate) and checks plaintext passwords against them
// (POST /v1/b2b/passwords/authenticate).
//
// Everything that reaches Parse is attacker-influenced, so every cost
// parameter is capped: one migrate request must not be able to make each later
// authenticate burn minutes of CPU or gigabytes of memory. Error messages name
// the rule that was broken and never repeat the hash, a salt or a parameter
// value, because they travel into API responses and logs.
package password

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Config holds the optional per-type configuration objects of a migrate request; the JSON
// tags are the Stytch wire names, so the API layer decodes requests straight into it and
// the store keeps it as JSON. Integer fields are plain ints; a wrong JSON type is the
// decoder's problem, not this package's.
type Config struct {
	Argon2 *Argon2Config `json:"argon_2_config,omitempty"`
	Scrypt *ScryptConfig `json:"scrypt_config,omitempty"`
	PBKDF2 *PBKDF2Config `json:"pbkdf_2_config,omitempty"`
	SHA1   *SaltConfig   `json:"sha_1_config,omitempty"`
	MD5    *SaltConfig   `json:"md_5_config,omitempty"`
}

// Argon2Config describes a bare argon2 digest (the hex form). Salt is used as
// raw bytes, not decoded: Stytch documents it only as "the salt value" while it
// explicitly says base64 for scrypt and pbkdf2, and the argon2 reference CLI,
// whose "Hash:" output is this hex form, takes the salt as a plain string.
type Argon2Config struct {
	Salt            string `json:"salt"`
	IterationAmount int    `json:"iteration_amount"`
	Memory          int    `json:"memory"` // KiB
	Threads         int    `json:"threads"`
	KeyLength       int    `json:"key_length"`
}

// ScryptConfig describes a bare base64 scrypt digest; Salt is base64, as
// Stytch documents.
type ScryptConfig struct {
	Salt       string `json:"salt"`
	NParameter int    `json:"n_parameter"`
	RParameter int    `json:"r_parameter"`
	PParameter int    `json:"p_parameter"`
	KeyLength  int    `json:"key_length"`
}

// PBKDF2Config describes a base64 PBKDF2-HMAC digest; Salt is base64, as Stytch
// documents, and an empty Algorithm means sha256, Stytch's default.
type PBKDF2Config struct {
	Salt            string `json:"salt"`
	IterationAmount int    `json:"iteration_amount"`
	KeyLength       int    `json:"key_length"`
	Algorithm       string `json:"algorithm"`
}

// SaltConfig holds the literal strings glued around the password before a
// sha_1 or md_5 digest is taken.
type SaltConfig struct {
	PrependSalt string `json:"prepend_salt"`
	AppendSalt  string `json:"append_salt"`
}

var (
	// ErrUnsupportedType maps to the Stytch error invalid_hash_type.
	ErrUnsupportedType = errors.New("password: unsupported hash type")
	// ErrMalformed maps to the Stytch error invalid_hash.
	ErrMalformed = errors.New("password: malformed hash or configuration")
)

// Hash is a validated imported hash, ready to store (as JSON) and to verify against.
//
// Only exported fields are kept, so that a Hash read back from the store verifies
// exactly like the one Parse returned; Verify re-validates them every time, which
// costs microseconds next to the hashing itself.
type Hash struct {
	Type   string `json:"type"`   // the hash_type as sent
	Value  string `json:"value"`  // the hash as sent (trimmed)
	Config Config `json:"config"` // only the config object that belongs to Type is kept
}

// The hash_type values Stytch accepts that this package implements. sha_512 and
// phpass are Stytch types too, but are deliberately left out.
const (
	typeBcrypt   = "bcrypt"
	typeArgon2i  = "argon_2i"
	typeArgon2id = "argon_2id"
	typeScrypt   = "scrypt"
	typePBKDF2   = "pbkdf_2"
	typeSHA1     = "sha_1"
	typeMD5      = "md_5"
)

// Resource limits. A migrated hash is recomputed on every authenticate call, so
// whoever can call migrate chooses the price of every later login attempt.
const (
	maxBcryptCost = 16 // ~5 s; real deployments use 10–14

	maxArgon2MemoryKiB  = 256 * 1024
	maxArgon2Iterations = 20
	maxArgon2Threads    = 16

	minScryptN  = 2
	maxScryptN  = 1 << 18
	maxScryptRP = 64
	// scrypt needs 128·N·r bytes; without this cap N=2^18, r=64 would ask for
	// 2 GiB. 2^21 keeps it at the argon2 memory cap (256 MiB) and still admits
	// every documented N with the usual r=8.
	maxScryptNR = 1 << 21

	maxPBKDF2Iterations = 5_000_000

	minKeyLength = 8
	maxKeyLength = 1024
)

// Parse validates hashType, hash and the config that belongs to the type and returns a Hash,
// or ErrUnsupportedType / ErrMalformed (wrapped with what is wrong, never with the hash,
// a salt or any other secret material).
//
// For argon_2i, argon_2id and scrypt hashes in PHC form the string carries its own
// parameters, so the config is ignored and not kept.
func Parse(hashType, hash string, cfg Config) (Hash, error) {
	value := strings.TrimSpace(hash)
	kept, _, err := parse(hashType, value, cfg)
	if err != nil {
		return Hash{}, err
	}
	return Hash{Type: hashType, Value: value, Config: kept}, nil
}

// Verify reports whether password matches, in constant time with respect to the digest compare.
// A Hash that no longer parses (a corrupted store row, a zero Hash) matches nothing.
func (h Hash) Verify(password string) bool {
	_, v, err := parse(h.Type, strings.TrimSpace(h.Value), h.Config)
	if err != nil {
		return false
	}
	return v.verify(password)
}

// decoyCost is the cost most imported bcrypt hashes carry (x/crypto, PHP and
// Node bcrypt all default to 10).
const decoyCost = bcrypt.DefaultCost

// NewDecoy returns a Hash that matches no password and costs about as much to verify
// as a typical stored hash. Verify it when the e-mail address is unknown, so that the
// answer takes as long as for a known address with a wrong password. Call it once at
// start-up and keep the result: building it costs one bcrypt hash.
func NewDecoy() Hash {
	// The secret starts with 0xFF, which never occurs in UTF-8, and passwords
	// arrive as JSON strings (always valid UTF-8), so no request can even
	// present it; the 256 random bits make guessing moot anyway.
	secret := make([]byte, 33)
	secret[0] = 0xFF
	rand.Read(secret[1:]) // never fails since Go 1.24
	h, err := bcrypt.GenerateFromPassword(secret, decoyCost)
	if err != nil {
		// Unreachable: 33 bytes and cost 10 are both within bcrypt's limits.
		panic("password: building decoy: " + err.Error())
	}
	return Hash{Type: typeBcrypt, Value: string(h)}
}

// verifier recomputes a digest from a candidate password and compares it.
type verifier interface {
	verify(password string) bool
}

func malformed(reason string) error {
	return fmt.Errorf("%w: %s", ErrMalformed, reason)
}

// parse is shared by Parse and Verify so that a stored Hash is held to the same
// rules it was admitted under. It returns the config worth keeping: a copy, so
// that the caller mutating its request afterwards cannot change a stored Hash.
func parse(hashType, value string, cfg Config) (Config, verifier, error) {
	switch hashType {
	case typeBcrypt, typeArgon2i, typeArgon2id, typeScrypt, typePBKDF2, typeSHA1, typeMD5:
	default:
		return Config{}, nil, fmt.Errorf("%w: hash_type must be one of bcrypt, argon_2i, argon_2id, scrypt, pbkdf_2, sha_1, md_5", ErrUnsupportedType)
	}
	if value == "" {
		return Config{}, nil, malformed("hash is empty")
	}
	switch hashType {
	case typeBcrypt:
		v, err := parseBcrypt(value)
		return Config{}, v, err
	case typeArgon2i, typeArgon2id:
		return parseArgon2(hashType == typeArgon2id, value, cfg.Argon2)
	case typeScrypt:
		return parseScrypt(value, cfg.Scrypt)
	case typePBKDF2:
		return parsePBKDF2(value, cfg.PBKDF2)
	case typeSHA1:
		return parseSalted(typeSHA1, sha1.New, sha1.Size, value, cfg.SHA1)
	default: // typeMD5
		return parseSalted(typeMD5, md5.New, md5.Size, value, cfg.MD5)
	}
}

// ---- bcrypt ----

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

type bcryptVerifier []byte

func (v bcryptVerifier) verify(password string) bool {
	// x/crypto reads only the first 72 bytes of a longer password, as OpenBSD
	// and PHP do, so long passwords hashed elsewhere still match.
	return bcrypt.CompareHashAndPassword(v, []byte(password)) == nil
}

func parseBcrypt(value string) (verifier, error) {
	// $2x$ (crypt_blowfish's buggy mode) and $2$ hash differently from what
	// x/crypto computes, so only the variants it reproduces are admitted.
	switch {
	case len(value) < 4:
		return nil, malformed("bcrypt hash must start with $2a$, $2b$ or $2y$")
	case value[:4] != "$2a$" && value[:4] != "$2b$" && value[:4] != "$2y$":
		return nil, malformed("bcrypt hash must start with $2a$, $2b$ or $2y$")
	case len(value) != 60:
		return nil, malformed("bcrypt hash must be 60 characters long")
	case !isDigit(value[4]) || !isDigit(value[5]) || value[6] != '$':
		return nil, malformed("bcrypt cost must be two digits")
	}
	for i := 7; i < len(value); i++ {
		if strings.IndexByte(bcryptAlphabet, value[i]) < 0 {
			return nil, malformed("bcrypt salt and digest must use the bcrypt base64 alphabet")
		}
	}
	cost := int(value[4]-'0')*10 + int(value[5]-'0')
	if cost < bcrypt.MinCost || cost > maxBcryptCost {
		return nil, malformed(fmt.Sprintf("bcrypt cost must be between %d and %d", bcrypt.MinCost, maxBcryptCost))
	}
	// Let x/crypto parse it as well, so that nothing admitted here can fail
	// inside CompareHashAndPassword and be mistaken for a wrong password.
	if _, err := bcrypt.Cost([]byte(value)); err != nil {
		return nil, malformed("bcrypt hash is not decodable")
	}
	return bcryptVerifier(value), nil
}

// ---- argon2 ----

type argon2Verifier struct {
	id      bool
	salt    []byte
	time    uint32
	memory  uint32 // KiB
	threads uint8
	digest  []byte
}

func (v *argon2Verifier) verify(password string) bool {
	var got []byte
	if v.id {
		got = argon2.IDKey([]byte(password), v.salt, v.time, v.memory, v.threads, uint32(len(v.digest)))
	} else {
		got = argon2.Key([]byte(password), v.salt, v.time, v.memory, v.threads, uint32(len(v.digest)))
	}
	return subtle.ConstantTimeCompare(got, v.digest) == 1
}

func parseArgon2(id bool, value string, cfg *Argon2Config) (Config, verifier, error) {
	if strings.HasPrefix(value, "$") {
		v, err := parseArgon2PHC(id, value)
		return Config{}, v, err
	}
	if cfg == nil {
		return Config{}, nil, malformed("argon_2_config is required unless the hash is a PHC string")
	}
	digest, err := hex.DecodeString(value)
	if err != nil {
		return Config{}, nil, malformed("argon2 hash must be a PHC string or a hex digest")
	}
	if err := checkKeyLength(cfg.KeyLength, len(digest)); err != nil {
		return Config{}, nil, err
	}
	if cfg.Salt == "" {
		return Config{}, nil, malformed("argon_2_config.salt is required")
	}
	if err := checkArgon2(cfg.IterationAmount, cfg.Memory, cfg.Threads); err != nil {
		return Config{}, nil, err
	}
	kept := *cfg
	return Config{Argon2: &kept}, &argon2Verifier{
		id:      id,
		salt:    []byte(cfg.Salt),
		time:    uint32(cfg.IterationAmount),
		memory:  uint32(cfg.Memory),
		threads: uint8(cfg.Threads),
		digest:  digest,
	}, nil
}

// parseArgon2PHC reads $argon2id$v=19$m=…,t=…,p=…$salt$digest, the form the
// reference implementation, libsodium, PHP and argon2-cffi all emit.
func parseArgon2PHC(id bool, value string) (verifier, error) {
	const form = "argon2 PHC string must look like $argon2id$v=19$m=…,t=…,p=…$salt$hash"
	parts := strings.Split(value, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, malformed(form)
	}
	want := "argon2i"
	if id {
		want = "argon2id"
	}
	if parts[1] != want {
		return nil, malformed("argon2 PHC variant does not match hash_type")
	}
	// x/crypto implements only version 0x13; a v=16 hash would never match.
	if parts[2] != "v=19" {
		return nil, malformed("argon2 PHC version must be v=19")
	}
	params, ok := phcParams(parts[3], "m", "t", "p")
	if !ok {
		return nil, malformed(form)
	}
	salt, ok := decodeBase64(parts[4])
	if !ok || len(salt) == 0 {
		return nil, malformed("argon2 PHC salt must be non-empty base64")
	}
	digest, ok := decodeBase64(parts[5])
	if !ok {
		return nil, malformed("argon2 PHC hash must be base64")
	}
	if err := checkKeyLength(0, len(digest)); err != nil {
		return nil, err
	}
	if err := checkArgon2(params["t"], params["m"], params["p"]); err != nil {
		return nil, err
	}
	return &argon2Verifier{
		id:      id,
		salt:    salt,
		time:    uint32(params["t"]),
		memory:  uint32(params["m"]),
		threads: uint8(params["p"]),
		digest:  digest,
	}, nil
}

func checkArgon2(iterations, memoryKiB, threads int) error {
	if threads < 1 || threads > maxArgon2Threads {
		return malformed(fmt.Sprintf("argon2 threads must be between 1 and %d", maxArgon2Threads))
	}
	if iterations < 1 || iterations > maxArgon2Iterations {
		return malformed(fmt.Sprintf("argon2 iterations must be between 1 and %d", maxArgon2Iterations))
	}
	// Argon2 needs at least 8 KiB per lane. x/crypto would silently round a
	// smaller value up and compute a different hash than the source system.
	if memoryKiB < 8*threads || memoryKiB > maxArgon2MemoryKiB {
		return malformed(fmt.Sprintf("argon2 memory must be between 8 KiB per thread and %d KiB", maxArgon2MemoryKiB))
	}
	return nil
}

// ---- scrypt ----

type scryptVerifier struct {
	salt    []byte
	n, r, p int
	digest  []byte
}

func (v *scryptVerifier) verify(password string) bool {
	got, err := scrypt.Key([]byte(password), v.salt, v.n, v.r, v.p, len(v.digest))
	return err == nil && subtle.ConstantTimeCompare(got, v.digest) == 1
}

func parseScrypt(value string, cfg *ScryptConfig) (Config, verifier, error) {
	if strings.HasPrefix(value, "$") {
		v, err := parseScryptPHC(value)
		return Config{}, v, err
	}
	if cfg == nil {
		return Config{}, nil, malformed("scrypt_config is required unless the hash is a PHC string")
	}
	digest, ok := decodeBase64(value)
	if !ok {
		return Config{}, nil, malformed("scrypt hash must be a PHC string or a base64 digest")
	}
	if err := checkKeyLength(cfg.KeyLength, len(digest)); err != nil {
		return Config{}, nil, err
	}
	salt, ok := decodeBase64(cfg.Salt)
	if !ok || len(salt) == 0 {
		return Config{}, nil, malformed("scrypt_config.salt must be non-empty base64")
	}
	if err := checkScrypt(cfg.NParameter, cfg.RParameter, cfg.PParameter); err != nil {
		return Config{}, nil, err
	}
	kept := *cfg
	return Config{Scrypt: &kept}, &scryptVerifier{
		salt: salt, n: cfg.NParameter, r: cfg.RParameter, p: cfg.PParameter, digest: digest,
	}, nil
}

// parseScryptPHC reads passlib's $scrypt$ln=…,r=…,p=…$salt$digest (ln is log2 N),
// which the RustCrypto scrypt crate and @phc/scrypt emit too. passlib writes both
// salt and digest as unpadded standard base64 and hashes the decoded salt bytes.
func parseScryptPHC(value string) (verifier, error) {
	const form = "scrypt PHC string must look like $scrypt$ln=…,r=…,p=…$salt$hash"
	parts := strings.Split(value, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "scrypt" {
		return nil, malformed(form)
	}
	params, ok := phcParams(parts[2], "ln", "r", "p")
	if !ok {
		return nil, malformed(form)
	}
	// Check ln before shifting so that a huge ln cannot overflow into range.
	ln := params["ln"]
	if ln < 1 || ln > 18 {
		return nil, malformed(fmt.Sprintf("scrypt N must be a power of two between %d and %d", minScryptN, maxScryptN))
	}
	salt, ok := decodeBase64(parts[3])
	if !ok || len(salt) == 0 {
		return nil, malformed("scrypt PHC salt must be non-empty base64")
	}
	digest, ok := decodeBase64(parts[4])
	if !ok {
		return nil, malformed("scrypt PHC hash must be base64")
	}
	if err := checkKeyLength(0, len(digest)); err != nil {
		return nil, err
	}
	n := 1 << ln
	if err := checkScrypt(n, params["r"], params["p"]); err != nil {
		return nil, err
	}
	return &scryptVerifier{salt: salt, n: n, r: params["r"], p: params["p"], digest: digest}, nil
}

func checkScrypt(n, r, p int) error {
	if n < minScryptN || n > maxScryptN || n&(n-1) != 0 {
		return malformed(fmt.Sprintf("scrypt N must be a power of two between %d and %d", minScryptN, maxScryptN))
	}
	// Bound r and p singly first: their product could overflow.
	if r < 1 || p < 1 || r > maxScryptRP || p > maxScryptRP || r*p > maxScryptRP {
		return malformed(fmt.Sprintf("scrypt r and p must be at least 1 with r×p at most %d", maxScryptRP))
	}
	if n*r > maxScryptNR {
		return malformed("scrypt memory (128·N·r bytes) must not exceed 256 MiB")
	}
	return nil
}

// ---- pbkdf2 ----

type pbkdf2Verifier struct {
	newHash func() hash.Hash
	salt    []byte
	iter    int
	digest  []byte
}

func (v *pbkdf2Verifier) verify(password string) bool {
	got, err := pbkdf2.Key(v.newHash, password, v.salt, v.iter, len(v.digest))
	return err == nil && subtle.ConstantTimeCompare(got, v.digest) == 1
}

func parsePBKDF2(value string, cfg *PBKDF2Config) (Config, verifier, error) {
	if cfg == nil {
		return Config{}, nil, malformed("pbkdf_2_config is required")
	}
	digest, ok := decodeBase64(value)
	if !ok {
		return Config{}, nil, malformed("pbkdf2 hash must be a base64 digest")
	}
	if err := checkKeyLength(cfg.KeyLength, len(digest)); err != nil {
		return Config{}, nil, err
	}
	salt, ok := decodeBase64(cfg.Salt)
	if !ok || len(salt) == 0 {
		return Config{}, nil, malformed("pbkdf_2_config.salt must be non-empty base64")
	}
	if cfg.IterationAmount < 1 || cfg.IterationAmount > maxPBKDF2Iterations {
		return Config{}, nil, malformed(fmt.Sprintf("pbkdf2 iteration_amount must be between 1 and %d", maxPBKDF2Iterations))
	}
	var newHash func() hash.Hash
	switch cfg.Algorithm {
	case "", "sha256":
		newHash = sha256.New
	case "sha512":
		newHash = sha512.New
	default:
		return Config{}, nil, malformed("pbkdf2 algorithm must be sha256 or sha512")
	}
	kept := *cfg
	return Config{PBKDF2: &kept}, &pbkdf2Verifier{
		newHash: newHash, salt: salt, iter: cfg.IterationAmount, digest: digest,
	}, nil
}

// ---- sha_1, md_5 ----

type saltedVerifier struct {
	newHash        func() hash.Hash
	prefix, suffix string
	digest         []byte
}

func (v *saltedVerifier) verify(password string) bool {
	h := v.newHash()
	io.WriteString(h, v.prefix)
	io.WriteString(h, password)
	io.WriteString(h, v.suffix)
	return subtle.ConstantTimeCompare(h.Sum(nil), v.digest) == 1
}

func parseSalted(name string, newHash func() hash.Hash, size int, value string, cfg *SaltConfig) (Config, verifier, error) {
	digest, err := hex.DecodeString(value)
	if err != nil || len(digest) != size {
		return Config{}, nil, malformed(fmt.Sprintf("%s hash must be %d hex digits", name, 2*size))
	}
	v := &saltedVerifier{newHash: newHash, digest: digest}
	var kept Config
	if cfg != nil {
		v.prefix, v.suffix = cfg.PrependSalt, cfg.AppendSalt
		c := *cfg
		if name == typeSHA1 {
			kept.SHA1 = &c
		} else {
			kept.MD5 = &c
		}
	}
	return kept, v, nil
}

// ---- shared helpers ----

// checkKeyLength applies the key-length bounds to the digest actually supplied;
// a configured key_length of 0 means "not given" and defers to the digest.
func checkKeyLength(configured, digestLen int) error {
	if digestLen < minKeyLength || digestLen > maxKeyLength {
		return malformed(fmt.Sprintf("digest must be between %d and %d bytes", minKeyLength, maxKeyLength))
	}
	if configured != 0 && configured != digestLen {
		return malformed("key_length does not match the length of the digest")
	}
	return nil
}

// decodeBase64 accepts standard or URL-safe base64, padded or not: exporters
// disagree, and since the two alphabets differ only in characters the other
// rejects, no string decodes two different ways.
func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{
		base64.RawStdEncoding, base64.StdEncoding, base64.RawURLEncoding, base64.URLEncoding,
	} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// phcParams parses a PHC parameter list such as "m=65536,t=3,p=4" that must
// hold exactly the given keys, each once, in any order. Values are plain
// decimal; nine digits bound them well below overflow and above every limit.
func phcParams(s string, keys ...string) (map[string]int, bool) {
	fields := strings.Split(s, ",")
	if len(fields) != len(keys) {
		return nil, false
	}
	out := make(map[string]int, len(keys))
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !slices.Contains(keys, k) || len(v) == 0 || len(v) > 9 {
			return nil, false
		}
		if _, dup := out[k]; dup {
			return nil, false
		}
		n := 0
		for i := 0; i < len(v); i++ {
			if !isDigit(v[i]) {
				return nil, false
			}
			n = n*10 + int(v[i]-'0')
		}
		out[k] = n
	}
	return out, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
