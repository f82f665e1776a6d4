package password

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

const pw = "correct horse battery staple"

type vector struct {
	name     string
	hashType string
	hash     string
	cfg      Config
	password string
}

// vectors lists one or more hashes per type that must verify. Published vectors
// are used where they exist; the rest are computed here from the primitives with
// fixed salts and small costs, so the suite stays fast.
func vectors(tb testing.TB) []vector {
	tb.Helper()
	must := func(b []byte, err error) []byte {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	std := base64.StdEncoding.EncodeToString
	raw := base64.RawStdEncoding.EncodeToString

	bcryptMin := string(must(bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)))

	argonSalt := []byte("sixteen byte slt")
	argonID := argon2.IDKey([]byte(pw), argonSalt, 2, 64, 2, 32)
	argonI := argon2.Key([]byte(pw), argonSalt, 1, 32, 1, 24)

	scryptSalt := []byte("scrypt-salt-0123")
	scryptPHC := must(scrypt.Key([]byte(pw), scryptSalt, 16, 8, 1, 32))
	scryptBare := must(scrypt.Key([]byte(pw), scryptSalt, 32, 2, 2, 64))

	pbkdfSalt := []byte("pbkdf2-salt")
	pbkdfURL := must(pbkdf2.Key(sha256.New, pw, pbkdfSalt, 3, 40))

	sha1Salted := sha1.Sum([]byte("pre~" + pw + "~post"))
	md5Salted := md5.Sum([]byte("pre~" + pw + "~post"))

	return []vector{
		// Openwall crypt_blowfish test vector; $2b$ and $2y$ differ from $2a$
		// only for non-ASCII or >255-byte passwords, so the digest is shared.
		{"bcrypt/openwall $2a$", "bcrypt", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", Config{}, "U*U"},
		{"bcrypt/openwall $2b$", "bcrypt", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", Config{}, "U*U"},
		{"bcrypt/openwall $2y$", "bcrypt", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", Config{}, "U*U"},
		{"bcrypt/x-crypto cost 4", "bcrypt", bcryptMin, Config{}, pw},
		{"bcrypt/surrounding whitespace is trimmed", "bcrypt", "  " + bcryptMin + "\n", Config{}, pw},

		// phc-winner-argon2 reference vectors (src/test.c: "password", "somesalt",
		// t=2, m=2^8), in the encoded form and in the CLI's hex form, whose salt
		// is the raw string.
		{"argon_2i/reference PHC", "argon_2i", "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8", Config{}, "password"},
		{"argon_2i/reference PHC two lanes", "argon_2i", "$argon2i$v=19$m=256,t=2,p=2$c29tZXNhbHQ$T/XOJ2mh1/TIpJHfCdQan76Q5esCFVoT5MAeIM1Oq2E", Config{}, "password"},
		{"argon_2i/reference hex", "argon_2i", "89e9029f4637b295beb027056a7336c414fadd43f6b208645281cb214a56452f",
			Config{Argon2: &Argon2Config{Salt: "somesalt", IterationAmount: 2, Memory: 256, Threads: 1, KeyLength: 32}}, "password"},
		{"argon_2id/PHC two lanes", "argon_2id", fmt.Sprintf("$argon2id$v=19$m=64,t=2,p=2$%s$%s", raw(argonSalt), raw(argonID)), Config{}, pw},
		{"argon_2id/PHC padded base64 and config ignored", "argon_2id", fmt.Sprintf("$argon2id$v=19$t=2,p=2,m=64$%s$%s", std(argonSalt), std(argonID)),
			Config{Argon2: &Argon2Config{Salt: "ignored"}}, pw},
		{"argon_2id/hex with config", "argon_2id", hex.EncodeToString(argonID),
			Config{Argon2: &Argon2Config{Salt: string(argonSalt), IterationAmount: 2, Memory: 64, Threads: 2, KeyLength: 32}}, pw},
		{"argon_2id/upper-case hex, key_length omitted", "argon_2id", strings.ToUpper(hex.EncodeToString(argonID)),
			Config{Argon2: &Argon2Config{Salt: string(argonSalt), IterationAmount: 2, Memory: 64, Threads: 2}}, pw},
		{"argon_2i/PHC 24-byte digest", "argon_2i", fmt.Sprintf("$argon2i$v=19$m=32,t=1,p=1$%s$%s", raw(argonSalt), raw(argonI)), Config{}, pw},

		{"scrypt/passlib PHC", "scrypt", fmt.Sprintf("$scrypt$ln=4,r=8,p=1$%s$%s", raw(scryptSalt), raw(scryptPHC)), Config{}, pw},
		{"scrypt/base64 digest with config", "scrypt", std(scryptBare),
			Config{Scrypt: &ScryptConfig{Salt: std(scryptSalt), NParameter: 32, RParameter: 2, PParameter: 2, KeyLength: 64}}, pw},

		// PBKDF2-HMAC-SHA256 and -SHA512 vectors for "password"/"salt" (as in
		// RFC 6070, which itself only covers SHA-1).
		{"pbkdf_2/sha256 default algorithm", "pbkdf_2", std(must(hex.DecodeString("c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"))),
			Config{PBKDF2: &PBKDF2Config{Salt: std([]byte("salt")), IterationAmount: 4096, KeyLength: 32}}, "password"},
		{"pbkdf_2/sha256 explicit", "pbkdf_2", std(must(hex.DecodeString("120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"))),
			Config{PBKDF2: &PBKDF2Config{Salt: std([]byte("salt")), IterationAmount: 1, KeyLength: 32, Algorithm: "sha256"}}, "password"},
		{"pbkdf_2/sha512", "pbkdf_2", std(must(hex.DecodeString("867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"))),
			Config{PBKDF2: &PBKDF2Config{Salt: std([]byte("salt")), IterationAmount: 1, KeyLength: 64, Algorithm: "sha512"}}, "password"},
		{"pbkdf_2/url-safe base64, key_length omitted", "pbkdf_2", base64.RawURLEncoding.EncodeToString(pbkdfURL),
			Config{PBKDF2: &PBKDF2Config{Salt: base64.URLEncoding.EncodeToString(pbkdfSalt), IterationAmount: 3}}, pw},

		{"sha_1/unsalted", "sha_1", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8", Config{}, "password"},
		{"sha_1/upper-case hex", "sha_1", "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8", Config{}, "password"},
		{"sha_1/salted", "sha_1", hex.EncodeToString(sha1Salted[:]), Config{SHA1: &SaltConfig{PrependSalt: "pre~", AppendSalt: "~post"}}, pw},
		{"md_5/unsalted", "md_5", "5f4dcc3b5aa765d61d8327deb882cf99", Config{}, "password"},
		{"md_5/salted", "md_5", hex.EncodeToString(md5Salted[:]), Config{MD5: &SaltConfig{PrependSalt: "pre~", AppendSalt: "~post"}}, pw},
	}
}

func TestKnownGoodHashesVerify(t *testing.T) {
	for _, v := range vectors(t) {
		t.Run(v.name, func(t *testing.T) {
			h, err := Parse(v.hashType, v.hash, v.cfg)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !h.Verify(v.password) {
				t.Fatal("right password refused")
			}
			for _, wrong := range []string{"", "x" + v.password, v.password[:len(v.password)-1], strings.ToUpper(v.password)} {
				if wrong != v.password && h.Verify(wrong) {
					t.Fatalf("wrong password %q accepted", wrong)
				}
			}

			// The store keeps a Hash as JSON; what comes back must verify the same.
			blob, err := json.Marshal(h)
			if err != nil {
				t.Fatal(err)
			}
			var back Hash
			if err := json.Unmarshal(blob, &back); err != nil {
				t.Fatal(err)
			}
			if !back.Verify(v.password) {
				t.Fatal("right password refused after a JSON round trip")
			}
		})
	}
}

func TestBcryptReadsOnlyFirst72Bytes(t *testing.T) {
	// OpenBSD, PHP and x/crypto all ignore bytes past the 72nd, so a user of the
	// old system who typed a longer password must still get in.
	long := strings.Repeat("0123456789", 8)
	stored, err := bcrypt.GenerateFromPassword([]byte(long[:72]), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Parse("bcrypt", string(stored), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Verify(long) {
		t.Fatal("password longer than 72 bytes refused")
	}
}

type rejectCase struct {
	name     string
	hashType string
	hash     string
	cfg      Config
	want     error
}

// Distinctive salts and digests, so that TestErrorsDoNotLeakSecrets can look for them.
const (
	secretSalt   = "SECRET-salt-must-not-leak"
	secretSalt64 = "U0VDUkVULXNhbHQtbXVzdC1ub3QtbGVhaw==" // base64 of secretSalt
	hex32        = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	b64x32       = "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8="
	saltB64Raw   = "c2l4dGVlbiBieXRlIHNsdA" // "sixteen byte slt"
	digestB64Raw = "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8"
)

func rejectCases() []rejectCase {
	bc := func(prefix string) string { return prefix + "CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" }
	argonCfg := func(mod func(*Argon2Config)) Config {
		c := &Argon2Config{Salt: secretSalt, IterationAmount: 2, Memory: 64, Threads: 1, KeyLength: 32}
		if mod != nil {
			mod(c)
		}
		return Config{Argon2: c}
	}
	scryptCfg := func(mod func(*ScryptConfig)) Config {
		c := &ScryptConfig{Salt: secretSalt64, NParameter: 16, RParameter: 8, PParameter: 1, KeyLength: 32}
		if mod != nil {
			mod(c)
		}
		return Config{Scrypt: c}
	}
	pbkdfCfg := func(mod func(*PBKDF2Config)) Config {
		c := &PBKDF2Config{Salt: secretSalt64, IterationAmount: 1000, KeyLength: 32}
		if mod != nil {
			mod(c)
		}
		return Config{PBKDF2: c}
	}
	argonPHC := func(variant, version, params string) string {
		return "$" + variant + "$" + version + "$" + params + "$" + saltB64Raw + "$" + digestB64Raw
	}
	scryptPHC := func(params string) string { return "$scrypt$" + params + "$" + saltB64Raw + "$" + digestB64Raw }

	return []rejectCase{
		// hash_type must be one of Stytch's names, spelled exactly.
		{"sha_512 is not implemented", "sha_512", strings.Repeat("ab", 64), Config{}, ErrUnsupportedType},
		{"phpass is not implemented", "phpass", "$P$984478476IagS59wHZvyQMArzfx58u.", Config{}, ErrUnsupportedType},
		{"empty hash_type", "", bc("$2a$05$"), Config{}, ErrUnsupportedType},
		{"hash_type is case-sensitive", "BCRYPT", bc("$2a$05$"), Config{}, ErrUnsupportedType},
		{"argon2id without underscore", "argon2id", argonPHC("argon2id", "v=19", "m=64,t=2,p=1"), Config{}, ErrUnsupportedType},
		{"unsupported type wins over empty hash", "sha_512", "", Config{}, ErrUnsupportedType},

		{"bcrypt/empty", "bcrypt", "", Config{}, ErrMalformed},
		{"bcrypt/whitespace only", "bcrypt", " \t\n", Config{}, ErrMalformed},
		{"bcrypt/cost above 16", "bcrypt", bc("$2b$17$"), Config{}, ErrMalformed},
		{"bcrypt/cost below 4", "bcrypt", bc("$2b$03$"), Config{}, ErrMalformed},
		{"bcrypt/$2x$ variant", "bcrypt", bc("$2x$05$"), Config{}, ErrMalformed},
		{"bcrypt/$2$ variant", "bcrypt", "$2$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWX", Config{}, ErrMalformed},
		{"bcrypt/truncated", "bcrypt", bc("$2a$05$")[:59], Config{}, ErrMalformed},
		{"bcrypt/too long", "bcrypt", bc("$2a$05$") + "A", Config{}, ErrMalformed},
		{"bcrypt/outside alphabet", "bcrypt", strings.Replace(bc("$2a$05$"), ".", "+", 1), Config{}, ErrMalformed},
		{"bcrypt/non-digit cost", "bcrypt", bc("$2a$x5$"), Config{}, ErrMalformed},

		{"argon2/empty", "argon_2id", "", argonCfg(nil), ErrMalformed},
		{"argon2/PHC version 16", "argon_2id", argonPHC("argon2id", "v=16", "m=64,t=2,p=1"), Config{}, ErrMalformed},
		{"argon2/PHC without version", "argon_2id", "$argon2id$m=64,t=2,p=1$" + saltB64Raw + "$" + digestB64Raw, Config{}, ErrMalformed},
		{"argon2/PHC variant differs from hash_type", "argon_2i", argonPHC("argon2id", "v=19", "m=64,t=2,p=1"), Config{}, ErrMalformed},
		{"argon2/argon2d", "argon_2id", argonPHC("argon2d", "v=19", "m=64,t=2,p=1"), Config{}, ErrMalformed},
		{"argon2/PHC memory above 256 MiB", "argon_2id", argonPHC("argon2id", "v=19", "m=262145,t=1,p=1"), Config{}, ErrMalformed},
		{"argon2/PHC memory below 8 KiB per thread", "argon_2id", argonPHC("argon2id", "v=19", "m=15,t=1,p=2"), Config{}, ErrMalformed},
		{"argon2/PHC iterations above 20", "argon_2id", argonPHC("argon2id", "v=19", "m=64,t=21,p=1"), Config{}, ErrMalformed},
		{"argon2/PHC threads above 16", "argon_2id", argonPHC("argon2id", "v=19", "m=1024,t=1,p=17"), Config{}, ErrMalformed},
		{"argon2/PHC zero threads", "argon_2id", argonPHC("argon2id", "v=19", "m=64,t=1,p=0"), Config{}, ErrMalformed},
		{"argon2/PHC huge number", "argon_2id", argonPHC("argon2id", "v=19", "m=99999999999999999999,t=1,p=1"), Config{}, ErrMalformed},
		{"argon2/PHC negative number", "argon_2id", argonPHC("argon2id", "v=19", "m=-64,t=1,p=1"), Config{}, ErrMalformed},
		{"argon2/PHC missing parameter", "argon_2id", argonPHC("argon2id", "v=19", "m=64,t=1"), Config{}, ErrMalformed},
		{"argon2/PHC duplicate parameter", "argon_2id", argonPHC("argon2id", "v=19", "m=64,m=64,t=1"), Config{}, ErrMalformed},
		{"argon2/PHC keyid parameter", "argon_2id", argonPHC("argon2id", "v=19", "m=64,t=1,p=1,keyid=AAAA"), Config{}, ErrMalformed},
		{"argon2/PHC missing digest", "argon_2id", "$argon2id$v=19$m=64,t=2,p=1$" + saltB64Raw, Config{}, ErrMalformed},
		{"argon2/PHC empty salt", "argon_2id", "$argon2id$v=19$m=64,t=2,p=1$$" + digestB64Raw, Config{}, ErrMalformed},
		{"argon2/PHC digest not base64", "argon_2id", "$argon2id$v=19$m=64,t=2,p=1$" + saltB64Raw + "$!!!!", Config{}, ErrMalformed},
		{"argon2/PHC digest shorter than 8 bytes", "argon_2id", "$argon2id$v=19$m=64,t=2,p=1$" + saltB64Raw + "$AAAAAAAA", Config{}, ErrMalformed},
		{"argon2/hex without config", "argon_2id", hex32, Config{}, ErrMalformed},
		{"argon2/hex with another type's config", "argon_2id", hex32, scryptCfg(nil), ErrMalformed},
		{"argon2/not hex", "argon_2i", strings.Replace(hex32, "0", "g", 1), argonCfg(nil), ErrMalformed},
		{"argon2/odd hex", "argon_2i", hex32[1:], argonCfg(nil), ErrMalformed},
		{"argon2/key_length differs from digest", "argon_2id", hex32, argonCfg(func(c *Argon2Config) { c.KeyLength = 16 }), ErrMalformed},
		{"argon2/key_length below 8", "argon_2id", hex32[:8], argonCfg(func(c *Argon2Config) { c.KeyLength = 4 }), ErrMalformed},
		{"argon2/key_length above 1024", "argon_2id", strings.Repeat("ab", 1025), argonCfg(func(c *Argon2Config) { c.KeyLength = 1025 }), ErrMalformed},
		{"argon2/empty salt", "argon_2id", hex32, argonCfg(func(c *Argon2Config) { c.Salt = "" }), ErrMalformed},
		{"argon2/memory above 256 MiB", "argon_2id", hex32, argonCfg(func(c *Argon2Config) { c.Memory = 262145 }), ErrMalformed},
		{"argon2/iterations above 20", "argon_2id", hex32, argonCfg(func(c *Argon2Config) { c.IterationAmount = 21 }), ErrMalformed},
		{"argon2/zero iterations", "argon_2id", hex32, argonCfg(func(c *Argon2Config) { c.IterationAmount = 0 }), ErrMalformed},
		{"argon2/threads above 16", "argon_2id", hex32, argonCfg(func(c *Argon2Config) { c.Threads, c.Memory = 17, 1024 }), ErrMalformed},
		{"argon2/zero threads", "argon_2id", hex32, argonCfg(func(c *Argon2Config) { c.Threads = 0 }), ErrMalformed},
		{"argon2/negative memory", "argon_2id", hex32, argonCfg(func(c *Argon2Config) { c.Memory = -1 }), ErrMalformed},

		{"scrypt/empty", "scrypt", "", scryptCfg(nil), ErrMalformed},
		{"scrypt/digest without config", "scrypt", b64x32, Config{}, ErrMalformed},
		{"scrypt/digest not base64", "scrypt", "not base64!", scryptCfg(nil), ErrMalformed},
		{"scrypt/salt not base64", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.Salt = secretSalt }), ErrMalformed},
		{"scrypt/empty salt", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.Salt = "" }), ErrMalformed},
		{"scrypt/N not a power of two", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.NParameter = 24 }), ErrMalformed},
		{"scrypt/N of 1", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.NParameter = 1 }), ErrMalformed},
		{"scrypt/N above 262144", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.NParameter = 524288 }), ErrMalformed},
		{"scrypt/r×p above 64", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.RParameter, c.PParameter = 8, 9 }), ErrMalformed},
		{"scrypt/RFC 7914 second vector has r×p 128", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.NParameter, c.RParameter, c.PParameter = 1024, 8, 16 }), ErrMalformed},
		{"scrypt/r×p overflow", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.RParameter, c.PParameter = 1<<32, 1<<32 }), ErrMalformed},
		{"scrypt/zero r", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.RParameter = 0 }), ErrMalformed},
		{"scrypt/zero p", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.PParameter = 0 }), ErrMalformed},
		{"scrypt/memory above 256 MiB", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.NParameter, c.RParameter = 262144, 16 }), ErrMalformed},
		{"scrypt/key_length differs from digest", "scrypt", b64x32, scryptCfg(func(c *ScryptConfig) { c.KeyLength = 64 }), ErrMalformed},
		{"scrypt/PHC ln 0", "scrypt", scryptPHC("ln=0,r=8,p=1"), Config{}, ErrMalformed},
		{"scrypt/PHC ln 19", "scrypt", scryptPHC("ln=19,r=8,p=1"), Config{}, ErrMalformed},
		{"scrypt/PHC ln 64", "scrypt", scryptPHC("ln=64,r=8,p=1"), Config{}, ErrMalformed},
		{"scrypt/PHC r×p above 64", "scrypt", scryptPHC("ln=4,r=16,p=8"), Config{}, ErrMalformed},
		{"scrypt/PHC N instead of ln", "scrypt", scryptPHC("N=16,r=8,p=1"), Config{}, ErrMalformed},
		{"scrypt/PHC wrong identifier", "scrypt", "$scrypt2$ln=4,r=8,p=1$" + saltB64Raw + "$" + digestB64Raw, Config{}, ErrMalformed},
		{"scrypt/$7$ format", "scrypt", "$7$DU..../....OhzHZvHVazzr5gCG7jotQ0$aehDO6CrqD4ITgsiLqw3EmIYyulY/tZSF9ARYtZN4U/", Config{}, ErrMalformed},
		{"scrypt/PHC missing digest", "scrypt", "$scrypt$ln=4,r=8,p=1$" + saltB64Raw, Config{}, ErrMalformed},

		{"pbkdf2/empty", "pbkdf_2", "", pbkdfCfg(nil), ErrMalformed},
		{"pbkdf2/config missing", "pbkdf_2", b64x32, Config{}, ErrMalformed},
		{"pbkdf2/digest not base64", "pbkdf_2", hex32 + "!", pbkdfCfg(nil), ErrMalformed},
		{"pbkdf2/salt not base64", "pbkdf_2", b64x32, pbkdfCfg(func(c *PBKDF2Config) { c.Salt = secretSalt }), ErrMalformed},
		{"pbkdf2/zero iterations", "pbkdf_2", b64x32, pbkdfCfg(func(c *PBKDF2Config) { c.IterationAmount = 0 }), ErrMalformed},
		{"pbkdf2/iterations above 5,000,000", "pbkdf_2", b64x32, pbkdfCfg(func(c *PBKDF2Config) { c.IterationAmount = 5_000_001 }), ErrMalformed},
		{"pbkdf2/sha1", "pbkdf_2", b64x32, pbkdfCfg(func(c *PBKDF2Config) { c.Algorithm = "sha1" }), ErrMalformed},
		{"pbkdf2/key_length differs from digest", "pbkdf_2", b64x32, pbkdfCfg(func(c *PBKDF2Config) { c.KeyLength = 16 }), ErrMalformed},
		{"pbkdf2/negative key_length", "pbkdf_2", b64x32, pbkdfCfg(func(c *PBKDF2Config) { c.KeyLength = -32 }), ErrMalformed},
		{"pbkdf2/digest shorter than 8 bytes", "pbkdf_2", "AAAAAAA=", pbkdfCfg(func(c *PBKDF2Config) { c.KeyLength = 0 }), ErrMalformed},

		{"sha_1/empty", "sha_1", "", Config{}, ErrMalformed},
		{"sha_1/md5-length digest", "sha_1", "5f4dcc3b5aa765d61d8327deb882cf99", Config{}, ErrMalformed},
		{"sha_1/not hex", "sha_1", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fdz", Config{SHA1: &SaltConfig{PrependSalt: secretSalt}}, ErrMalformed},
		{"sha_1/base64 digest", "sha_1", "W6ph5Mm5Pz8GgiULbPgzG37mj9g=", Config{}, ErrMalformed},
		{"md_5/empty", "md_5", "", Config{}, ErrMalformed},
		{"md_5/sha1-length digest", "md_5", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8", Config{MD5: &SaltConfig{AppendSalt: secretSalt}}, ErrMalformed},
		{"md_5/not hex", "md_5", "5f4dcc3b5aa765d61d8327deb882cfzz", Config{}, ErrMalformed},
	}
}

func TestParseRejects(t *testing.T) {
	for _, c := range rejectCases() {
		t.Run(c.name, func(t *testing.T) {
			h, err := Parse(c.hashType, c.hash, c.cfg)
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse error = %v, want %v", err, c.want)
			}
			if h != (Hash{}) {
				t.Fatalf("Parse returned a non-zero Hash alongside an error")
			}
			// The two sentinels are distinct API errors; one must not imply the other.
			other := ErrMalformed
			if c.want == ErrMalformed {
				other = ErrUnsupportedType
			}
			if errors.Is(err, other) {
				t.Fatalf("error %v matches both sentinels", err)
			}
		})
	}
}

func TestErrorsDoNotLeakSecrets(t *testing.T) {
	for _, c := range rejectCases() {
		_, err := Parse(c.hashType, c.hash, c.cfg)
		if err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		msg := err.Error()
		secrets := []string{secretSalt, secretSalt64, saltB64Raw, digestB64Raw, hex32, b64x32}
		if h := strings.TrimSpace(c.hash); len(h) >= 8 {
			secrets = append(secrets, h)
		}
		for _, s := range secrets {
			if strings.Contains(msg, s) {
				t.Errorf("%s: error %q contains secret material", c.name, msg)
			}
		}
	}
}

func TestParseKeepsOnlyTheConfigOfItsType(t *testing.T) {
	all := Config{
		Argon2: &Argon2Config{Salt: "a"},
		Scrypt: &ScryptConfig{Salt: "b"},
		PBKDF2: &PBKDF2Config{Salt: "c"},
		SHA1:   &SaltConfig{PrependSalt: "pre~", AppendSalt: "~post"},
		MD5:    &SaltConfig{PrependSalt: "e"},
	}
	sum := sha1.Sum([]byte("pre~" + pw + "~post"))
	h, err := Parse("sha_1", hex.EncodeToString(sum[:]), all)
	if err != nil {
		t.Fatal(err)
	}
	if h.Config.SHA1 == nil || h.Config.Argon2 != nil || h.Config.Scrypt != nil || h.Config.PBKDF2 != nil || h.Config.MD5 != nil {
		t.Fatalf("kept config = %+v, want only sha_1_config", h.Config)
	}
	// A copy is kept: changing the request afterwards must not change the stored Hash.
	all.SHA1.PrependSalt = "changed"
	if !h.Verify(pw) {
		t.Fatal("stored Hash changed with the caller's config")
	}

	// A PHC string carries its own parameters, so a config sent alongside is dropped.
	for _, v := range vectors(t) {
		if v.name == "argon_2id/PHC padded base64 and config ignored" {
			h, err := Parse(v.hashType, v.hash, v.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if h.Config != (Config{}) {
				t.Fatalf("kept config = %+v, want none for a PHC string", h.Config)
			}
		}
	}
}

func TestVerifyRefusesUnparseableHash(t *testing.T) {
	for _, h := range []Hash{
		{},
		{Type: "bcrypt"},
		{Type: "sha_512", Value: strings.Repeat("ab", 64)},
		{Type: "pbkdf_2", Value: b64x32}, // config lost from the store
	} {
		if h.Verify("password") || h.Verify("") {
			t.Errorf("Verify(%+v) = true", h)
		}
	}
}

func TestNewDecoy(t *testing.T) {
	t.Parallel() // two cost-10 bcrypt runs: overlap them with the rest of the suite
	d := NewDecoy()
	// It must be an ordinary stored hash, so verifying it costs what a real one does.
	if _, err := Parse(d.Type, d.Value, d.Config); err != nil {
		t.Fatalf("decoy does not parse: %v", err)
	}
	if cost, err := bcrypt.Cost([]byte(d.Value)); err != nil || cost != bcrypt.DefaultCost {
		t.Fatalf("decoy cost = %d, %v; want %d", cost, err, bcrypt.DefaultCost)
	}
	if d.Verify("password") {
		t.Fatal("decoy matched a password")
	}
}

// cheap reports whether verifying against v is fast enough for the fuzzer:
// Parse admits hashes that take seconds, which would stall fuzzing.
func cheap(v verifier) bool {
	switch v := v.(type) {
	case bcryptVerifier:
		cost, err := bcrypt.Cost(v)
		return err == nil && cost <= 5
	case *argon2Verifier:
		return uint64(v.memory)*uint64(v.time) <= 1<<12
	case *scryptVerifier:
		return v.n*v.r*v.p <= 1<<12
	case *pbkdf2Verifier:
		return v.iter <= 1<<12
	default:
		return true
	}
}

func FuzzParse(f *testing.F) {
	for _, v := range vectors(f) {
		cfg, _ := json.Marshal(v.cfg)
		f.Add(v.hashType, v.hash, string(cfg), v.password)
	}
	for _, c := range rejectCases() {
		cfg, _ := json.Marshal(c.cfg)
		f.Add(c.hashType, c.hash, string(cfg), pw)
	}
	f.Fuzz(func(t *testing.T, hashType, hash, cfgJSON, password string) {
		var cfg Config
		_ = json.Unmarshal([]byte(cfgJSON), &cfg) // a half-decoded config is fine input too
		h, err := Parse(hashType, hash, cfg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedType) {
				t.Fatalf("Parse error %v is neither sentinel", err)
			}
			return
		}
		// What Parse admits, Verify must accept back, also after the store's JSON round trip.
		blob, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		var back Hash
		if err := json.Unmarshal(blob, &back); err != nil {
			t.Fatal(err)
		}
		_, v, err := parse(back.Type, back.Value, back.Config)
		if err != nil {
			t.Fatalf("stored Hash no longer parses: %v", err)
		}
		if cheap(v) {
			back.Verify(password)
		}
	})
}
