package e2e

import (
	"net/http"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The steps of an MFA login that several tests share, each one request that must succeed.

// bcryptHash hashes password at bcrypt's minimum cost: these tests exercise the server, not
// password hashing, and the cost is part of the imported hash.
func bcryptHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// createOrganization creates an organization with mfa_policy REQUIRED_FOR_ALL, so that a
// password login ends in an intermediate session token, and returns its id.
func createOrganization(t testing.TB, c *apiClient, name string) string {
	t.Helper()
	r := c.ok(t, http.MethodPost, "/v1/b2b/organizations", map[string]any{
		"organization_name": name,
		"mfa_policy":        "REQUIRED_FOR_ALL",
	})
	return r.Str(t, "organization", "organization_id")
}

// createMember adds a member and returns its id.
func createMember(t testing.TB, c *apiClient, orgID, email string) string {
	t.Helper()
	r := c.ok(t, http.MethodPost, "/v1/b2b/organizations/"+orgID+"/members", map[string]any{"email_address": email})
	return r.Str(t, "member_id")
}

// migratePassword gives the member with email the bcrypt hash.
func migratePassword(t testing.TB, c *apiClient, orgID, email, hash string) {
	t.Helper()
	c.ok(t, http.MethodPost, "/v1/b2b/passwords/migrate", map[string]any{
		"organization_id": orgID,
		"email_address":   email,
		"hash":            hash,
		"hash_type":       "bcrypt",
	})
}

// passwordIST logs in with a password in a REQUIRED_FOR_ALL organization and returns the
// intermediate session token that the MFA step needs.
func passwordIST(t testing.TB, c *apiClient, orgID, email, password string) string {
	t.Helper()
	r := c.ok(t, http.MethodPost, "/v1/b2b/passwords/authenticate", passwordBody(orgID, email, password))
	if r.Bool(t, "member_authenticated") {
		t.Fatalf("passwords/authenticate in a REQUIRED_FOR_ALL organization authenticated the member without MFA: %s", r.Raw)
	}
	return r.Str(t, "intermediate_session_token")
}

func passwordBody(orgID, email, password string) map[string]any {
	return map[string]any{"organization_id": orgID, "email_address": email, "password": password}
}

// recoverBody is a recover request with an intermediate session token.
func recoverBody(orgID, memberID, code, ist string) map[string]any {
	return map[string]any{
		"organization_id":            orgID,
		"member_id":                  memberID,
		"recovery_code":              code,
		"intermediate_session_token": ist,
	}
}

// totpCreate registers TOTP for the member and returns the response (secret, recovery_codes).
func totpCreate(t testing.TB, c *apiClient, orgID, memberID string) apiResponse {
	t.Helper()
	r := c.ok(t, http.MethodPost, "/v1/b2b/totp", map[string]any{"organization_id": orgID, "member_id": memberID})
	if codes := r.Strings(t, "recovery_codes"); len(codes) != 10 {
		t.Fatalf("totp create issued %d recovery codes, want 10: %s", len(codes), r.Raw)
	}
	return r
}

// recoveryCodes is GET /v1/b2b/recovery_codes/{org}/{member}: the member's unused codes.
func recoveryCodes(t testing.TB, c *apiClient, orgID, memberID string) []string {
	t.Helper()
	return c.ok(t, http.MethodGet, "/v1/b2b/recovery_codes/"+orgID+"/"+memberID, nil).Strings(t, "recovery_codes")
}
