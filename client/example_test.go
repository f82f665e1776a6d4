package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/sparekey/sparekey/client"
)

// The examples run against a real sparekey started in-process; in a program the URL and the
// project's credentials come from configuration (sparekey project create --json prints them).

// Example_recoveryCodeLifeCycle walks an MFA login that ends with a recovery code: an organization
// requiring MFA, a member with an imported password and an authenticator app, a password login
// that asks for the second factor, and the recovery code that completes it.
func Example_recoveryCodeLifeCycle() {
	sk, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(sk.URL, sk.ProjectID, sk.Secret)
	if err != nil {
		log.Fatal(err)
	}
	org, err := c.Organizations.Create(ctx, client.CreateOrganizationParams{
		OrganizationName:   "Acme Inc",
		OrganizationFields: client.OrganizationFields{MFAPolicy: client.String("REQUIRED_FOR_ALL")},
	})
	if err != nil {
		log.Fatal(err)
	}
	orgID := org.Organization.OrganizationID

	// Import the member with the password hash of the system they come from.
	hash, cfg := pbkdf2Hash("correct horse battery staple")
	member, err := c.Passwords.Migrate(ctx, client.MigratePasswordParams{
		OrganizationID: orgID, EmailAddress: "ada@example.com", Hash: hash, HashType: "pbkdf_2", PBKDF2Config: cfg,
	})
	if err != nil {
		log.Fatal(err)
	}
	memberID := member.MemberID

	// Registering an authenticator app issues the ten recovery codes.
	totp, err := c.TOTPs.Create(ctx, client.CreateTOTPParams{OrganizationID: orgID, MemberID: memberID})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("codes issued:", len(totp.RecoveryCodes))

	// The password is only the first factor: the login returns an intermediate session.
	login, err := c.Passwords.Authenticate(ctx, client.AuthenticatePasswordParams{
		OrganizationID: orgID, EmailAddress: "ada@example.com", Password: "correct horse battery staple",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("member authenticated:", login.MemberAuthenticated)

	// A recovery code stands in for the lost authenticator app.
	session, err := c.RecoveryCodes.Recover(ctx, client.RecoverParams{
		OrganizationID:           orgID,
		MemberID:                 memberID,
		RecoveryCode:             totp.RecoveryCodes[0],
		IntermediateSessionToken: login.IntermediateSessionToken,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("codes remaining:", session.RecoveryCodesRemaining)
	for _, f := range session.MemberSession.AuthenticationFactors {
		fmt.Println("factor:", f.Type)
	}

	// The session JWT can be checked locally, without a call per request.
	local, err := c.Sessions.AuthenticateJWTLocal(ctx, session.SessionJWT)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same session:", local.MemberSessionID == session.MemberSession.MemberSessionID)

	// Every code works once.
	_, err = c.RecoveryCodes.Recover(ctx, client.RecoverParams{
		OrganizationID: orgID, MemberID: memberID, RecoveryCode: totp.RecoveryCodes[0], SessionToken: session.SessionToken,
	})
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println("reused code:", apiErr.StatusCode, apiErr.ErrorType)
	}

	// Output:
	// codes issued: 10
	// member authenticated: false
	// codes remaining: 9
	// factor: password
	// factor: recovery_codes
	// same session: true
	// reused code: 401 unable_to_authenticate_recovery_code
}

// exampleMember sets up what the method examples start from: a member of an organization that
// requires MFA, with recovery codes, who has just passed the password step of a login.
func exampleMember(c *client.Client) (orgID, memberID, ist string) {
	ctx := context.Background()
	org, err := c.Organizations.Create(ctx, client.CreateOrganizationParams{
		OrganizationName:   "Acme Inc",
		OrganizationFields: client.OrganizationFields{MFAPolicy: client.String("REQUIRED_FOR_ALL")},
	})
	if err != nil {
		log.Fatal(err)
	}
	orgID = org.Organization.OrganizationID
	hash, cfg := pbkdf2Hash("correct horse battery staple")
	m, err := c.Passwords.Migrate(ctx, client.MigratePasswordParams{OrganizationID: orgID, EmailAddress: "ada@example.com", Hash: hash, HashType: "pbkdf_2", PBKDF2Config: cfg})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.TOTPs.Create(ctx, client.CreateTOTPParams{OrganizationID: orgID, MemberID: m.MemberID}); err != nil {
		log.Fatal(err)
	}
	login, err := c.Passwords.Authenticate(ctx, client.AuthenticatePasswordParams{OrganizationID: orgID, EmailAddress: "ada@example.com", Password: "correct horse battery staple"})
	if err != nil {
		log.Fatal(err)
	}
	return orgID, m.MemberID, login.IntermediateSessionToken
}

func ExampleRecoveryCodesClient_Get() {
	sk, stop := exampleServer()
	defer stop()
	c, err := client.New(sk.URL, sk.ProjectID, sk.Secret)
	if err != nil {
		log.Fatal(err)
	}
	orgID, memberID, _ := exampleMember(c)

	// Organization and member may also be named by slug and external id.
	res, err := c.RecoveryCodes.Get(context.Background(), client.GetParams{OrganizationID: orgID, MemberID: memberID})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("unused codes:", len(res.RecoveryCodes))
	fmt.Println("member:", res.Member.EmailAddress)
	// Output:
	// unused codes: 10
	// member: ada@example.com
}

func ExampleRecoveryCodesClient_Recover() {
	sk, stop := exampleServer()
	defer stop()
	c, err := client.New(sk.URL, sk.ProjectID, sk.Secret)
	if err != nil {
		log.Fatal(err)
	}
	orgID, memberID, ist := exampleMember(c)
	ctx := context.Background()
	codes, err := c.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: orgID, MemberID: memberID})
	if err != nil {
		log.Fatal(err)
	}

	// Users type codes loosely: case, spaces and dashes do not matter.
	res, err := c.RecoveryCodes.Recover(ctx, client.RecoverParams{
		OrganizationID:           orgID,
		MemberID:                 memberID,
		RecoveryCode:             " " + codes.RecoveryCodes[3] + " ",
		IntermediateSessionToken: ist,
		SessionDurationMinutes:   client.Int(60 * 24),
		SessionCustomClaims:      map[string]any{"recovered": true},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("codes remaining:", res.RecoveryCodesRemaining)
	fmt.Println("session lasts:", res.MemberSession.ExpiresAt.Sub(res.MemberSession.StartedAt))
	fmt.Println("custom claims:", res.MemberSession.CustomClaims)
	// Output:
	// codes remaining: 9
	// session lasts: 24h0m0s
	// custom claims: map[recovered:true]
}

func ExampleRecoveryCodesClient_Rotate() {
	sk, stop := exampleServer()
	defer stop()
	c, err := client.New(sk.URL, sk.ProjectID, sk.Secret)
	if err != nil {
		log.Fatal(err)
	}
	orgID, memberID, ist := exampleMember(c)
	ctx := context.Background()
	before, err := c.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: orgID, MemberID: memberID})
	if err != nil {
		log.Fatal(err)
	}

	// A member who fears their codes leaked gets a new set; the old codes stop working at once.
	after, err := c.RecoveryCodes.Rotate(ctx, client.RotateParams{OrganizationID: orgID, MemberID: memberID})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new codes:", len(after.RecoveryCodes))
	_, err = c.RecoveryCodes.Recover(ctx, client.RecoverParams{
		OrganizationID: orgID, MemberID: memberID, RecoveryCode: before.RecoveryCodes[0], IntermediateSessionToken: ist,
	})
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println("old code:", apiErr.ErrorType)
	}
	_, err = c.RecoveryCodes.Recover(ctx, client.RecoverParams{
		OrganizationID: orgID, MemberID: memberID, RecoveryCode: after.RecoveryCodes[0], IntermediateSessionToken: ist,
	})
	fmt.Println("new code accepted:", err == nil)
	// Output:
	// new codes: 10
	// old code: unable_to_authenticate_recovery_code
	// new code accepted: true
}

// ExampleError tells API refusals, which carry a Stytch error_type, from failures to reach the
// server.
func ExampleError() {
	sk, stop := exampleServer()
	defer stop()
	c, err := client.New(sk.URL, sk.ProjectID, sk.Secret)
	if err != nil {
		log.Fatal(err)
	}
	orgID, memberID, ist := exampleMember(c)

	_, err = c.RecoveryCodes.Recover(context.Background(), client.RecoverParams{
		OrganizationID: orgID, MemberID: memberID, RecoveryCode: "123456", IntermediateSessionToken: ist,
	})
	var apiErr *client.Error
	var netErr *client.TransportError
	switch {
	case errors.As(err, &apiErr):
		fmt.Println(apiErr.StatusCode, apiErr.ErrorType)
	case errors.As(err, &netErr):
		fmt.Println("sparekey unreachable:", netErr.Err)
	}
	// Output:
	// 400 totp_code_used_as_recovery_code
}
