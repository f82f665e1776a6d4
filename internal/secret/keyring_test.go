package secret

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func mustKey(t *testing.T) []byte {
	t.Helper()
	s, err := NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseMasterKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyringSealOpen(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	old, err := NewKeyring(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewKeyring(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	ad := []byte("recovery-codes\x00member-1\x00reg-1")
	sealedOld := old.Seal([]byte("7hq2-k4mx-9trb"), ad)

	if bytes.Contains(sealedOld, []byte("7hq2")) {
		t.Fatal("sealed value contains the plaintext")
	}
	if pt, err := rotated.Open(sealedOld, ad); err != nil || string(pt) != "7hq2-k4mx-9trb" {
		t.Fatalf("a rotated keyring opens values of its older key: %q, %v", pt, err)
	}
	if id, _ := SealedKeyID(rotated.Seal([]byte("x"), ad)); id != rotated.PrimaryKeyID() {
		t.Error("new values are sealed under the primary key")
	}
	for _, tc := range []struct {
		name   string
		kr     *Keyring
		sealed []byte
		ad     []byte
	}{
		{"other associated data", old, sealedOld, []byte("recovery-codes\x00member-2\x00reg-1")},
		{"unknown key", mustKeyring(t, mustKey(t)), sealedOld, ad},
		{"altered ciphertext", old, flipLast(sealedOld), ad},
		{"truncated", old, sealedOld[:10], ad},
		{"empty", old, nil, ad},
	} {
		if _, err := tc.kr.Open(tc.sealed, tc.ad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: Open = %v, want ErrDecrypt", tc.name, err)
		}
	}
}

func mustKeyring(t *testing.T, k []byte) *Keyring {
	kr, err := NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func flipLast(b []byte) []byte {
	out := append([]byte(nil), b...)
	out[len(out)-1] ^= 1
	return out
}

func TestParseMasterKey(t *testing.T) {
	hexKey := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{hexKey, true},
		{hexKey + "\n", true},
		{strings.ToUpper(hexKey), true},
		{"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=", true}, // base64 of 32 bytes
		{"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s", true},
		{strings.Repeat("ab", 16), false}, // 16 bytes
		{"not a key", false},
		{"", false},
	} {
		k, err := ParseMasterKey(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseMasterKey(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err == nil && len(k) != MasterKeySize {
			t.Errorf("ParseMasterKey(%q) gave %d bytes", tc.in, len(k))
		}
		if err != nil && strings.Contains(err.Error(), tc.in) && tc.in != "" {
			t.Errorf("the error repeats the key material: %v", err)
		}
	}
}

func TestTokens(t *testing.T) {
	a, b := NewToken(), NewToken()
	if a == b || !IsToken(a) || len(a) != TokenLength {
		t.Fatalf("tokens %q %q", a, b)
	}
	for _, s := range []string{"", a[:43], a + "A", strings.Replace(a, a[:1], "+", 1), strings.Replace(a, a[:1], "=", 1)} {
		if IsToken(s) {
			t.Errorf("IsToken(%q) = true", s)
		}
	}
	if !EqualDigest(Digest(a), Digest(a)) || EqualDigest(Digest(a), Digest(b)) {
		t.Error("digests compare wrongly")
	}
	p := NewPepper()
	if bytes.Equal(CodeMAC(p, "7hq2k4mx9trb"), CodeMAC(NewPepper(), "7hq2k4mx9trb")) {
		t.Error("a code's MAC must depend on the pepper")
	}
}
