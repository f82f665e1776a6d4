package auth

import (
	"bytes"
	"encoding/json"
	"strings"
)

// maxCustomClaimsBytes bounds a session's custom claims as compact JSON: they ride in every JWT.
const maxCustomClaimsBytes = 4096

// reservedClaims are the registered JWT claims sparekey sets itself; a custom claim may not
// shadow them, or a caller could mint a JWT for another subject or lifetime.
var reservedClaims = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true}

const stytchClaimPrefix = "https://stytch.com/"

// checkClaimKeys refuses top-level keys that would collide with the claims sparekey owns.
// Reserved names are judged before the Stytch namespace, whatever the key order.
func checkClaimKeys(patch map[string]any) error {
	for k := range patch {
		if reservedClaims[k] {
			return ErrReservedClaims
		}
	}
	for k := range patch {
		if strings.HasPrefix(k, stytchClaimPrefix) {
			return ErrStytchClaims
		}
	}
	return nil
}

// mergeClaims deep-merges patch onto base and returns a new map (base is not changed): null
// deletes a key at any depth, an object merged onto an object recurses, anything else replaces.
// An object emptied by deletions stays as {}.
func mergeClaims(base, patch map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(patch))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(out, k)
		case map[string]any:
			if bv, ok := out[k].(map[string]any); ok {
				out[k] = mergeClaims(bv, pv)
			} else {
				out[k] = mergeClaims(nil, pv) // drops nulls inside a new object too
			}
		default:
			out[k] = v
		}
	}
	return out
}

// checkClaimsSize refuses merged claims above the limit, measured as the compact JSON the JWT
// will carry (without HTML escaping, which would inflate <, > and &).
func checkClaimsSize(claims map[string]any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(claims); err != nil {
		return ErrBadRequest
	}
	if buf.Len()-1 > maxCustomClaimsBytes { // Encode appends a newline
		return ErrCustomClaimsTooLarge
	}
	return nil
}
