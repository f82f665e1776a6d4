// Package totp implements the TOTP second factor as the Stytch B2B API
// exposes it: RFC 6238, HMAC-SHA1, 6 digits, 30-second steps, a ±1 step
// window and single use of each step (RFC 6238 §5.2).
//
// Code computation and QR encoding are delegated to github.com/pquerna/otp;
// this package owns the policy around them: secret format, the acceptance
// window, replay detection, constant-time comparison and the otpauth:// URL.
package totp

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

const (
	period     = 30
	digits     = 6
	secretSize = 20 // bytes; 160 bits is the HMAC-SHA1 output size RFC 4226 recommends
	minSecret  = 16 // base32 characters, i.e. 80 bits
)

// ErrInvalidSecret is returned for a secret that is not RFC 4648 base32 or
// is shorter than 16 characters once spaces and padding are removed.
var ErrInvalidSecret = errors.New("totp: invalid secret")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

var hotpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// NewSecret returns a fresh 160-bit secret in canonical form.
func NewSecret() (string, error) {
	key := make([]byte, secretSize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("totp: generating secret: %w", err)
	}
	return b32.EncodeToString(key), nil
}

// ParseSecret cleans an imported secret (case, spaces, '=' padding) and
// returns its canonical form, or ErrInvalidSecret when it is not base32 or
// shorter than 16 characters once cleaned.
//
// The imported length is kept as is: the key bytes are whatever the other
// system used, and re-encoding would change the codes.
func ParseSecret(s string) (string, error) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '=':
		case 'a' <= c && c <= 'z':
			// Byte-wise on purpose: strings.ToUpper would turn 'ſ' into 'S'
			// and 'ı' into 'I', accepting non-ASCII input as base32.
			b = append(b, c-'a'+'A')
		case 'A' <= c && c <= 'Z', '2' <= c && c <= '7':
			b = append(b, c)
		default:
			return "", ErrInvalidSecret
		}
	}
	// A final group of 1, 3 or 6 characters does not end on a byte
	// boundary, so it is not an RFC 4648 encoding. Go's unpadded decoder
	// silently drops such a tail while pquerna's (which re-pads) rejects
	// it; refusing it here keeps every accepted secret usable by Code.
	switch len(b) % 8 {
	case 1, 3, 6:
		return "", ErrInvalidSecret
	}
	if len(b) < minSecret {
		return "", ErrInvalidSecret
	}
	return string(b), nil
}

// IsCode reports whether s (already trimmed by the caller) is exactly six
// ASCII digits.
func IsCode(s string) bool {
	if len(s) != digits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Step returns the RFC 6238 time step (Unix seconds / 30) that t falls in.
func Step(t time.Time) int64 {
	u := t.Unix()
	s := u / period
	// RFC 6238 uses floor; Go's division truncates toward zero.
	if u%period < 0 {
		s--
	}
	return s
}

// Code returns the 6-digit code of secret at step.
func Code(secret string, step int64) (string, error) {
	canon, err := ParseSecret(secret)
	if err != nil {
		return "", err
	}
	return codeAt(canon, step)
}

// codeAt expects a secret that already went through ParseSecret: pquerna
// accepts an empty secret and would happily compute codes for it.
func codeAt(canon string, step int64) (string, error) {
	if step < 0 {
		return "", fmt.Errorf("totp: negative step %d", step)
	}
	c, err := hotp.GenerateCodeCustom(canon, uint64(step), hotpOpts)
	if err != nil {
		return "", fmt.Errorf("totp: computing code: %w", err)
	}
	return c, nil
}

// Spent is the set of time steps a registration has accepted, so that each step is accepted at
// most once (RFC 6238 §5.2), in a form a store keeps as two integers beside the registration.
//
// Every step up to Last is spent, except those of the 64 steps just below Last whose bit is set
// in Unspent (bit i stands for step Last-1-i). Accepting a step above Last moves Last up and marks
// the steps it skipped unspent, so an older code of the window that was never used still works
// after a newer one was (a phone a step behind the server, then one a step ahead). A step more
// than 64 below the newest accepted one counts as spent: no ±1 window reaches it unless the
// clocks of two servers disagree by half an hour, and then refusing is the safe answer. The zero
// value has spent nothing but the steps up to 1970-01-01 00:00:30 UTC.
type Spent struct {
	Last    int64
	Unspent uint64
}

// spentBits is how many steps below Last the set remembers one by one.
const spentBits = 64

// Has reports whether step is spent.
func (s Spent) Has(step int64) bool {
	if step > s.Last {
		return false
	}
	// Unsigned, so that no pair of int64s overflows: Last-step is exact in [0, 2^64).
	below := uint64(s.Last) - uint64(step)
	return below == 0 || below > spentBits || s.Unspent&(1<<(below-1)) == 0
}

// Add returns the set with step spent, and false (with the set unchanged) when it already was.
func (s Spent) Add(step int64) (Spent, bool) {
	if s.Has(step) {
		return s, false
	}
	if step < s.Last {
		s.Unspent &^= 1 << (uint64(s.Last) - uint64(step) - 1)
		return s, true
	}
	// step is above Last: each remembered step moves up by the distance; Go's shift by 64 or
	// more yields 0, so far moves forget them all. Of the bits below them, the lowest stand for
	// the steps skipped (step-1 down to Last+1): unspent; the one for the old Last stays clear.
	up := uint64(step) - uint64(s.Last)
	skipped := min(up-1, spentBits)
	return Spent{Last: step, Unspent: s.Unspent<<up | (1<<skipped - 1)}, true
}

// Result is the outcome of Check.
type Result int

const (
	Wrong    Result = iota // matches none of the accepted steps
	Accepted               // matches a step not yet spent; the step is returned
	Replayed               // matches spent steps only
)

func (r Result) String() string {
	switch r {
	case Wrong:
		return "Wrong"
	case Accepted:
		return "Accepted"
	case Replayed:
		return "Replayed"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Check compares code with the codes of steps Step(now)-1, Step(now) and Step(now)+1 and reports
// the matching step. spent holds the steps this registration has accepted so far; on Accepted
// the caller must add the returned step to it (Spent.Add), atomically with whatever the code
// grants, so that a concurrent request with the same step finds it spent.
//
// code is expected to have passed IsCode; anything else is Wrong. When several steps match (a
// 1-in-a-million coincidence), the newest unspent one wins, so a legitimate code is not refused
// as a replay; on Replayed the newest matching step is returned. A now before 1970-01-01
// 00:00:30 UTC has no step -1 and yields an error.
func Check(secret, code string, now time.Time, spent Spent) (step int64, r Result, err error) {
	canon, err := ParseSecret(secret)
	if err != nil {
		return 0, Wrong, err
	}
	if !IsCode(code) {
		return 0, Wrong, nil
	}
	// All three codes are computed and compared, and the matching step is
	// picked with masks rather than branches, so timing says nothing about
	// which step (if any) the guess hit. Whether a step is spent depends
	// only on public values, so branching on that is fine.
	var freshStep, usedStep int64
	var fresh, used int
	cur := Step(now)
	for s := cur - 1; s <= cur+1; s++ {
		want, err := codeAt(canon, s)
		if err != nil {
			return 0, Wrong, err
		}
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(code))
		if !spent.Has(s) {
			freshStep = selectInt64(eq, s, freshStep)
			fresh |= eq
		} else {
			usedStep = selectInt64(eq, s, usedStep)
			used |= eq
		}
	}
	switch {
	case fresh == 1:
		return freshStep, Accepted, nil
	case used == 1:
		return usedStep, Replayed, nil
	}
	return 0, Wrong, nil
}

// selectInt64 returns x if v == 1 and y if v == 0, without branching on v.
// subtle.ConstantTimeSelect works on int, which is 32 bits on some targets.
func selectInt64(v int, x, y int64) int64 {
	mask := -int64(v)
	return x&mask | y&^mask
}

// URL returns the otpauth:// key URI for an authenticator app, labelled
// "<issuer>:<accountEmail>" and carrying the issuer parameter too.
//
// Escaping follows the Key URI Format's own example (ACME%20Co): spaces are
// %20 everywhere, because several authenticators show a '+' literally.
func URL(issuer, accountEmail, secret string) string {
	return "otpauth://totp/" + escapeLabel(issuer) + ":" + escapeLabel(accountEmail) +
		"?secret=" + url.QueryEscape(secret) +
		"&issuer=" + escapeQuery(issuer) +
		"&algorithm=SHA1&digits=6&period=30"
}

// escapeLabel path-escapes one half of the label. ':' is escaped because the
// first literal colon separates issuer from account; '+' because apps that
// form-decode the label would show it as a space.
func escapeLabel(s string) string {
	s = url.PathEscape(s)
	s = strings.ReplaceAll(s, ":", "%3A")
	return strings.ReplaceAll(s, "+", "%2B")
}

// escapeQuery is QueryEscape with spaces as %20. A literal '+' is already
// %2B, so every '+' left in the output stands for a space.
func escapeQuery(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

const (
	// qrSize is the PNG's width and height in pixels.
	qrSize = 256
	// qrBorder is added around pquerna's image, which centres the code with
	// whatever margin its integer scaling leaves (sometimes none). 16px is
	// the 4-module quiet zone scanners expect for any module size up to
	// 4px, which covers every URL this package produces.
	qrBorder = 16
)

// pngPalette makes the PNG 1 bit per pixel; pquerna's image is 16-bit grey,
// which would cost 16 times the raw data for two colours. White is index 0
// so the zeroed image is already the quiet zone.
var pngPalette = color.Palette{color.White, color.Black}

// QRCode renders keyURL as a PNG QR code and returns it as a data: URL
// ("data:image/png;base64,...").
func QRCode(keyURL string) (string, error) {
	key, err := otp.NewKeyFromURL(keyURL)
	if err != nil {
		return "", fmt.Errorf("totp: parsing key URL: %w", err)
	}
	qr, err := key.Image(qrSize-2*qrBorder, qrSize-2*qrBorder)
	if err != nil {
		return "", fmt.Errorf("totp: encoding QR code: %w", err)
	}
	img := image.NewPaletted(image.Rect(0, 0, qrSize, qrSize), pngPalette)
	b := qr.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, _, _, _ := qr.At(x, y).RGBA(); r < 0x8000 {
				img.SetColorIndex(x-b.Min.X+qrBorder, y-b.Min.Y+qrBorder, 1)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("totp: encoding PNG: %w", err)
	}
	const prefix = "data:image/png;base64,"
	out := make([]byte, len(prefix)+base64.StdEncoding.EncodedLen(buf.Len()))
	copy(out, prefix)
	base64.StdEncoding.Encode(out[len(prefix):], buf.Bytes())
	return string(out), nil
}
