package secret

import (
	"regexp"
	"strings"
	"testing"
)

func TestNewRecoveryCodes(t *testing.T) {
	for _, tc := range []struct {
		symbols int
		shape   *regexp.Regexp
	}{
		{CodeSymbols, regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)},
		{LongCodeSymbols, regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$`)},
	} {
		codes, err := NewRecoveryCodes(10, tc.symbols)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, c := range codes {
			if !tc.shape.MatchString(c) {
				t.Errorf("%d symbols: code %q has the wrong shape", tc.symbols, c)
			}
			if seen[c] {
				t.Errorf("duplicate code %q in one set", c)
			}
			seen[c] = true
			if n := NormalizeRecoveryCode(c); ClassifyRecoveryCode(n) != CodeWellFormed || len(n) != tc.symbols {
				t.Errorf("issued code %q does not normalise to a well-formed code (%q)", c, n)
			}
		}
	}
	if _, err := NewRecoveryCodes(10, 13); err == nil {
		t.Error("13 symbols: want an error")
	}
}

// Every symbol of the alphabet appears with roughly equal frequency: 32 symbols from the low 5
// bits of a uniform byte are uniform, and a bias would show as a gross imbalance here.
func TestRecoveryCodeSymbolsAreUniform(t *testing.T) {
	counts := map[rune]int{}
	codes, err := NewRecoveryCodes(2000, CodeSymbols)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		for _, r := range strings.ReplaceAll(c, "-", "") {
			counts[r]++
		}
	}
	if len(counts) != 32 {
		t.Fatalf("saw %d distinct symbols, want 32", len(counts))
	}
	for r, n := range counts {
		if n < 500 || n > 1000 { // expected 750 each; the bounds are > 9 standard deviations
			t.Errorf("symbol %q appeared %d times of 24000", r, n)
		}
	}
}

func TestNormalizeAndClassifyRecoveryCode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		norm string
		kind CodeKind
	}{
		{"7hq2-k4mx-9trb", "7hq2k4mx9trb", CodeWellFormed},
		{"7HQ2 K4MX 9TRB", "7hq2k4mx9trb", CodeWellFormed},
		{"  7hq2k4mx9trb\n", "7hq2k4mx9trb", CodeWellFormed},
		{"7hq2\u2010k4mx\u2015 9trb", "7hq2k4mx9trb", CodeWellFormed},
		{"7hq2-k4mx-9trb.", "7hq2k4mx9trb", CodeWellFormed},
		{"7hq2-k4mx-9trb?!;:,", "7hq2k4mx9trb", CodeWellFormed},
		{"OIL0-k4mx-9trb", "0110k4mx9trb", CodeWellFormed},
		{"abcd-efgh-jkmn-pqrs", "abcdefghjkmnpqrs", CodeWellFormed},
		{"uuuu-uuuu-uuuu", "uuuuuuuuuuuu", CodeWellFormed}, // imported codes may hold a u
		{"123456", "123456", CodeLooksTOTP},
		{" 123 456 ", "123456", CodeLooksTOTP},
		{"12345", "12345", CodeMalformed},
		{"1234567", "1234567", CodeMalformed},
		{"7hq2-k4mx-9tr", "7hq2k4mx9tr", CodeMalformed},
		{"7hq2-k4mx-9trb-x", "7hq2k4mx9trbx", CodeMalformed},
		{"7hq2_k4mx_9trb", "7hq2_k4mx_9trb", CodeMalformed},
		{"7hq2-k4mx-9trß", "7hq2k4mx9trß", CodeMalformed},
		{"", "", CodeMalformed},
		{".", "", CodeMalformed},
		{"٣٣٣٣٣٣", "٣٣٣٣٣٣", CodeMalformed}, // Arabic-Indic digits are not ASCII digits
	} {
		norm := NormalizeRecoveryCode(tc.in)
		if norm != tc.norm {
			t.Errorf("NormalizeRecoveryCode(%q) = %q, want %q", tc.in, norm, tc.norm)
		}
		if kind := ClassifyRecoveryCode(norm); kind != tc.kind {
			t.Errorf("ClassifyRecoveryCode(%q) = %v, want %v", norm, kind, tc.kind)
		}
	}
}

// FuzzNormalizeRecoveryCode: the normaliser never panics, is idempotent, and a well-formed
// result is pure ASCII of the right length.
func FuzzNormalizeRecoveryCode(f *testing.F) {
	for _, s := range []string{"7hq2-k4mx-9trb", "7HQ2 K4MX 9TRB", "123456", "OIL0\u2012k4mx", "\xff\xfe", "a.b.c!", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n := NormalizeRecoveryCode(in)
		if again := NormalizeRecoveryCode(n); again != n {
			t.Fatalf("not idempotent: %q → %q → %q", in, n, again)
		}
		switch ClassifyRecoveryCode(n) {
		case CodeWellFormed:
			if len(n) != CodeSymbols && len(n) != LongCodeSymbols {
				t.Fatalf("well-formed %q has length %d", n, len(n))
			}
			for i := 0; i < len(n); i++ {
				if !isDigitOrLower(n[i]) || n[i] == 'o' || n[i] == 'i' || n[i] == 'l' {
					t.Fatalf("well-formed %q holds %q", n, n[i])
				}
			}
		case CodeLooksTOTP:
			if len(n) != 6 {
				t.Fatalf("TOTP-looking %q has length %d", n, len(n))
			}
		}
	})
}
