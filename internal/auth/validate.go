package auth

import (
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// The syntax rules of §5.
var (
	slugPattern       = regexp.MustCompile(`^[A-Za-z0-9._~-]{2,128}$`)
	externalIDPattern = regexp.MustCompile(`^[A-Za-z0-9._|-]{1,128}$`)
	e164Pattern       = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
)

func validName(name string) bool {
	n := utf8.RuneCountInString(name)
	return n >= 1 && n <= 128
}

// normalizeEmail lowercases an address and reports whether it is a plain addr-spec with a
// dotted domain: display names, comments and bare local parts are refused.
func normalizeEmail(s string) (string, bool) {
	e := strings.ToLower(s)
	if len(e) > 254 {
		return "", false
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", false
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 {
		return "", false
	}
	domain := e[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", false
	}
	return e, true
}

func validLogoURL(s string) bool {
	if s == "" {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func allOneOf(items []string, allowed ...string) bool {
	for _, it := range items {
		if !oneOf(it, allowed...) {
			return false
		}
	}
	return true
}

// knownRole reports whether sparekey knows a role id.
func knownRole(id string) bool { return id == RoleMember || id == RoleAdmin }

// maskPhone hides all but the last four digits (§5.5): +15551231234 → XXXXXXX1234.
func maskPhone(p string) string {
	digits := strings.TrimPrefix(p, "+")
	if len(digits) <= 4 {
		return digits
	}
	return strings.Repeat("X", len(digits)-4) + digits[len(digits)-4:]
}

func lower(s string) string { return strings.ToLower(s) }

// FoldCase is how sparekey compares text case-insensitively (search filters). Stores keep
// folded copies made with it rather than relying on their database's own lower(), which differs
// between backends and locales.
func FoldCase(s string) string { return strings.ToLower(s) }

// cleanText reports whether s is valid UTF-8 without NUL, the text every backend can store.
func cleanText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
