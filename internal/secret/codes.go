package secret

import (
	"crypto/rand"
	"fmt"
	"strings"
	"unicode"
)

// CodeAlphabet is lowercase Crockford base32: no i, l, o or u, so a printed code cannot be
// misread, and 32 symbols make every symbol exactly 5 bits.
const CodeAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// Code lengths in symbols: 12 (60 bits) by default, 16 (80 bits) when a deployment asks for more.
const (
	CodeSymbols     = 12
	LongCodeSymbols = 16
)

// NewRecoveryCodes returns n distinct codes of the given number of symbols, shown in groups of
// four (xxxx-xxxx-xxxx). Symbols are uniform: each takes the low 5 bits of a random byte.
func NewRecoveryCodes(n, symbols int) ([]string, error) {
	if symbols != CodeSymbols && symbols != LongCodeSymbols {
		return nil, fmt.Errorf("secret: recovery codes have %d or %d symbols, not %d", CodeSymbols, LongCodeSymbols, symbols)
	}
	codes := make([]string, 0, n)
	seen := make(map[string]bool, n)
	raw := make([]byte, symbols)
	for len(codes) < n {
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		var b strings.Builder
		for i, r := range raw {
			if i > 0 && i%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(CodeAlphabet[r&31])
		}
		code := b.String()
		if seen[code] {
			continue // 60 bits make this practically unreachable, but a set must be distinct
		}
		seen[code] = true
		codes = append(codes, code)
	}
	return codes, nil
}

// CodeKind is what a normalised recovery-code input turned out to be.
type CodeKind int

const (
	CodeMalformed  CodeKind = iota // not a recovery code: invalid_recovery_code
	CodeLooksTOTP                  // exactly six ASCII digits: someone typed their TOTP code
	CodeWellFormed                 // 12 or 16 symbols of 0-9a-z: compare it
)

// NormalizeRecoveryCode turns what a person typed or pasted into the canonical form that is
// hashed and compared: separators (whitespace, hyphen-minus, Unicode dashes U+2010–U+2015) go
// wherever they are, trailing sentence punctuation goes, letters are lowercased and the
// look-alikes o, i and l become 0, 1 and 1. It never fails; Classify judges the result.
func NormalizeRecoveryCode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if unicode.IsSpace(r) || r == '-' || (r >= '\u2010' && r <= '\u2015') {
			continue
		}
		b.WriteRune(r)
	}
	out := strings.TrimRight(b.String(), ".,;:!?")
	out = strings.ToLower(out)
	return strings.Map(func(r rune) rune {
		switch r {
		case 'o':
			return '0'
		case 'i', 'l':
			return '1'
		}
		return r
	}, out)
}

// ClassifyRecoveryCode judges a normalised code in the contract's order: six digits first (a TOTP
// code sent by mistake), then the shape of a recovery code. 'u' passes so that imported codes
// holding it still match, although sparekey never issues one.
func ClassifyRecoveryCode(normalized string) CodeKind {
	if len(normalized) == 6 && allASCII(normalized, isDigit) {
		return CodeLooksTOTP
	}
	if (len(normalized) == CodeSymbols || len(normalized) == LongCodeSymbols) && allASCII(normalized, isDigitOrLower) {
		return CodeWellFormed
	}
	return CodeMalformed
}

func allASCII(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool        { return c >= '0' && c <= '9' }
func isDigitOrLower(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'z') }
