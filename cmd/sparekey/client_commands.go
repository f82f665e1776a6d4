package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparekey/sparekey/client"
)

// The client-side commands call a running sparekey through the client package and print the
// API's response body exactly as the server sent it.

const connectionUsage = `
Connection (each flag is also read from its SPAREKEY_* environment twin):
  --url URL                    sparekey base URL (SPAREKEY_URL; default http://127.0.0.1:8080)
  --project-id ID              project id (SPAREKEY_PROJECT_ID)
  --secret SECRET              project secret (SPAREKEY_SECRET; prefer the variable: flags show in ps)
  --timeout D                  bound on the call (SPAREKEY_TIMEOUT; default 30s)

Prints the API's JSON response body on stdout. An API error prints
"error_type: message (request_id)" on stderr and exits 1; a usage mistake exits 2.
`

// connectionFlags say which sparekey and project to call.
type connectionFlags struct {
	url       string
	projectID string
	secret    string
	timeout   time.Duration
}

func (f *connectionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080", "sparekey base URL")
	fs.StringVar(&f.projectID, "project-id", "", "project id")
	fs.StringVar(&f.secret, "secret", "", "project secret")
	fs.DurationVar(&f.timeout, "timeout", client.DefaultTimeout, "bound on the call")
}

// client builds the client, with a transport that keeps the response body for printing.
func (f *connectionFlags) client() (*client.Client, *bodyKeeper, error) {
	if f.projectID == "" {
		return nil, nil, usageError{"--project-id (or " + envName("project-id") + ") is required"}
	}
	if f.secret == "" {
		return nil, nil, usageError{"--secret (or " + envName("secret") + ") is required"}
	}
	keeper := &bodyKeeper{next: http.DefaultTransport}
	c, err := client.New(f.url, f.projectID, f.secret,
		client.WithHTTPClient(&http.Client{Transport: keeper}),
		client.WithTimeout(f.timeout),
		client.WithUserAgent("sparekey-cli"))
	if err != nil {
		return nil, nil, usageError{err.Error()}
	}
	return c, keeper, nil
}

// bodyKeeper is a RoundTripper that keeps a copy of the last response body, so the command can
// print the server's JSON byte for byte rather than a re-encoding of the typed response.
type bodyKeeper struct {
	next http.RoundTripper
	mu   sync.Mutex
	body []byte
}

func (k *bodyKeeper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := k.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.body = body
	k.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (k *bodyKeeper) last() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.body
}

// apiError is an API refusal as the command line shows it: error_type: message (request_id).
type apiError struct{ e *client.Error }

func (a apiError) Error() string {
	return fmt.Sprintf("%s: %s (%s)", a.e.ErrorType, a.e.ErrorMessage, a.e.RequestID)
}

func (a apiError) Unwrap() error { return a.e }

// apiCall is one call of the API, parameterised by a command's flags.
type apiCall func(ctx context.Context, c *client.Client) error

// clientCommand is a command that calls the API once and prints the response body.
type clientCommand struct {
	name  string
	usage string
	// flags defines the command's own flags on fs and returns the call they parameterise; the
	// call checks its required flags first (a usage error) and then calls the API.
	flags func(fs *flag.FlagSet) apiCall
}

func (cc clientCommand) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(cc.name, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cc.usage) }
	var conn connectionFlags
	conn.register(fs)
	call := cc.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
			return err
		}
		return usageError{err.Error()} // an unknown flag or a bad value, from the line or the environment
	}
	c, keeper, err := conn.client()
	if err != nil {
		return err
	}
	if err := call(ctx, c); err != nil {
		var e *client.Error
		if errors.As(err, &e) {
			return apiError{e}
		}
		return unprefixed{err}
	}
	body := keeper.last()
	if len(body) > 0 && body[len(body)-1] != '\n' {
		body = append(body, '\n')
	}
	_, err = stdout.Write(body)
	return err
}

// unprefixed drops the client's "sparekey: " from an error, since main prints its own.
type unprefixed struct{ err error }

func (u unprefixed) Error() string { return strings.TrimPrefix(u.err.Error(), "sparekey: ") }
func (u unprefixed) Unwrap() error { return u.err }

// clientCommands lists the client-side commands (run.go's commands() names each of them).
func clientCommands() []clientCommand {
	return []clientCommand{
		recoveryCodesGet(), recoveryCodesRotate(), recoveryCodesRecover(),
		organizationsCreate(), organizationsGet(),
		membersCreate(), membersGet(),
		totpCreate(),
		passwordsMigrate(), passwordsAuthenticate(),
		sessionsAuthenticate(), sessionsRevoke(),
		eventsList(),
	}
}

// requireFlags refuses empty required flags, named in pairs: "--member-id", value, ...
func requireFlags(pairs ...string) error {
	var missing []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			missing = append(missing, pairs[i])
		}
	}
	if len(missing) > 0 {
		return usageError{strings.Join(missing, ", ") + " required"}
	}
	return nil
}

// optString, optInt and optBool are flags that remember whether they were given (on the line or
// through the environment), so an explicit "", 0 or false is sent and an absent flag is not.
type optString struct{ v *string }

func (o *optString) String() string {
	if o == nil || o.v == nil {
		return ""
	}
	return *o.v
}

func (o *optString) Set(s string) error { o.v = &s; return nil }

type optInt struct{ v *int }

func (o *optInt) String() string {
	if o == nil || o.v == nil {
		return ""
	}
	return strconv.Itoa(*o.v)
}

func (o *optInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not an integer")
	}
	o.v = &n
	return nil
}

type optBool struct{ v *bool }

func (o *optBool) String() string {
	if o == nil || o.v == nil {
		return ""
	}
	return strconv.FormatBool(*o.v)
}

func (o *optBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("not true or false")
	}
	o.v = &b
	return nil
}

func (o *optBool) IsBoolFlag() bool { return true }

// jsonObject is a flag holding a JSON object, e.g. --session-custom-claims '{"team":"blue"}'.
// Numbers keep their literal form.
type jsonObject struct{ v map[string]any }

func (j *jsonObject) String() string {
	if j == nil || j.v == nil {
		return ""
	}
	b, _ := json.Marshal(j.v)
	return string(b)
}

func (j *jsonObject) Set(s string) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return errors.New("not a JSON object")
	}
	j.v = m
	return nil
}

// stringList is a comma-separated list flag; "" is the empty list (sent as []).
type stringList struct{ v []string }

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.v, ",")
}

func (l *stringList) Set(s string) error {
	l.v = []string{}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			l.v = append(l.v, item)
		}
	}
	return nil
}

// sessionArgFlags are the session arguments and options of the authenticating calls.
type sessionArgFlags struct {
	ist, token, jwt string
	duration        optInt
	claims          jsonObject
}

func (f *sessionArgFlags) register(fs *flag.FlagSet, options bool) {
	fs.StringVar(&f.ist, "intermediate-session-token", "", "intermediate session token")
	fs.StringVar(&f.token, "session-token", "", "session token")
	fs.StringVar(&f.jwt, "session-jwt", "", "session JWT")
	if options {
		fs.Var(&f.duration, "session-duration-minutes", "session length in minutes")
		fs.Var(&f.claims, "session-custom-claims", "JSON object merged into the session's claims")
	}
}

const sessionArgsUsage = `  --intermediate-session-token T
                               the IST of a password login (SPAREKEY_INTERMEDIATE_SESSION_TOKEN)
  --session-token T            a session token (SPAREKEY_SESSION_TOKEN)
  --session-jwt JWT            a session JWT (SPAREKEY_SESSION_JWT)
`

const sessionOptionsUsage = `  --session-duration-minutes N 5 to 527040; a new session lasts 60 minutes without it
  --session-custom-claims JSON a JSON object merged into the session's claims (null deletes a key)
`

// ---- recovery-codes ----

const recoveryCodesGetUsage = `Usage: sparekey recovery-codes get --organization-id ID --member-id ID

Lists a member's unused recovery codes (GET /v1/b2b/recovery_codes/{organization_id}/{member_id}).

Flags:
  --organization-id ID         organization id, slug or external id (required)
  --member-id ID               member id or external id (required)
` + connectionUsage + `
Example:
  SPAREKEY_PROJECT_ID=project-test-… SPAREKEY_SECRET=secret-test-… \
    sparekey recovery-codes get --organization-id acme --member-id member-test-…
`

func recoveryCodesGet() clientCommand {
	return clientCommand{name: "recovery-codes get", usage: recoveryCodesGetUsage, flags: func(fs *flag.FlagSet) apiCall {
		var p client.GetParams
		fs.StringVar(&p.OrganizationID, "organization-id", "", "organization id, slug or external id")
		fs.StringVar(&p.MemberID, "member-id", "", "member id or external id")
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--organization-id", p.OrganizationID, "--member-id", p.MemberID); err != nil {
				return err
			}
			_, err := c.RecoveryCodes.Get(ctx, p)
			return err
		}
	}}
}

const recoveryCodesRotateUsage = `Usage: sparekey recovery-codes rotate --organization-id ID --member-id ID

Replaces all of a member's recovery codes, used and unused, with ten new ones and prints them
(POST /v1/b2b/recovery_codes/rotate).

Flags:
  --organization-id ID         organization id, slug or external id (required)
  --member-id ID               member id or external id (required)
` + connectionUsage + `
Example:
  sparekey recovery-codes rotate --organization-id acme --member-id member-test-…
`

func recoveryCodesRotate() clientCommand {
	return clientCommand{name: "recovery-codes rotate", usage: recoveryCodesRotateUsage, flags: func(fs *flag.FlagSet) apiCall {
		var p client.RotateParams
		fs.StringVar(&p.OrganizationID, "organization-id", "", "organization id, slug or external id")
		fs.StringVar(&p.MemberID, "member-id", "", "member id or external id")
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--organization-id", p.OrganizationID, "--member-id", p.MemberID); err != nil {
				return err
			}
			_, err := c.RecoveryCodes.Rotate(ctx, p)
			return err
		}
	}}
}

const recoveryCodesRecoverUsage = `Usage: sparekey recovery-codes recover --organization-id ID --member-id ID --recovery-code CODE
         (--intermediate-session-token T | --session-token T | --session-jwt JWT) [flags]

Authenticates a member with one of their recovery codes, consuming it, and prints the session
(POST /v1/b2b/recovery_codes/recover). A recovery code is a second factor: exactly one session
argument is needed.

Flags:
  --organization-id ID         organization id, slug or external id (required)
  --member-id ID               member id or external id (required)
  --recovery-code CODE         the code, e.g. 7hq2-k4mx-9trb (required; SPAREKEY_RECOVERY_CODE)
` + sessionArgsUsage + sessionOptionsUsage + `  --telemetry-id ID            device telemetry id
` + connectionUsage + `
Example:
  sparekey recovery-codes recover --organization-id acme --member-id member-test-… \
    --recovery-code 7hq2-k4mx-9trb --intermediate-session-token "$IST" --session-duration-minutes 120
`

func recoveryCodesRecover() clientCommand {
	return clientCommand{name: "recovery-codes recover", usage: recoveryCodesRecoverUsage, flags: func(fs *flag.FlagSet) apiCall {
		var (
			p       client.RecoverParams
			session sessionArgFlags
		)
		fs.StringVar(&p.OrganizationID, "organization-id", "", "organization id, slug or external id")
		fs.StringVar(&p.MemberID, "member-id", "", "member id or external id")
		fs.StringVar(&p.RecoveryCode, "recovery-code", "", "the recovery code")
		fs.StringVar(&p.TelemetryID, "telemetry-id", "", "device telemetry id")
		session.register(fs, true)
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--organization-id", p.OrganizationID, "--member-id", p.MemberID, "--recovery-code", p.RecoveryCode); err != nil {
				return err
			}
			p.IntermediateSessionToken, p.SessionToken, p.SessionJWT = session.ist, session.token, session.jwt
			p.SessionDurationMinutes, p.SessionCustomClaims = session.duration.v, session.claims.v
			_, err := c.RecoveryCodes.Recover(ctx, p)
			return err
		}
	}}
}

// ---- organizations ----

const organizationsCreateUsage = `Usage: sparekey organizations create --organization-name NAME [flags]

Creates an organization (POST /v1/b2b/organizations). Settings not given take their defaults.

Flags:
  --organization-name NAME     1 to 128 characters (required)
  --organization-slug SLUG     derived from the name when absent
  --organization-external-id ID
  --organization-logo-url URL
  --mfa-policy POLICY          OPTIONAL (default) or REQUIRED_FOR_ALL
  --mfa-methods M              ALL_ALLOWED (default) or RESTRICTED
  --allowed-mfa-methods LIST   comma-separated: totp, sms_otp
  --auth-methods M             ALL_ALLOWED (default) or RESTRICTED
  --allowed-auth-methods LIST  comma-separated, e.g. password,sso
  --email-allowed-domains LIST comma-separated domains
  --trusted-metadata JSON      a JSON object
` + connectionUsage + `
Example:
  sparekey organizations create --organization-name "Acme Inc" --mfa-policy REQUIRED_FOR_ALL
`

func organizationsCreate() clientCommand {
	return clientCommand{name: "organizations create", usage: organizationsCreateUsage, flags: func(fs *flag.FlagSet) apiCall {
		var (
			p                                                         client.CreateOrganizationParams
			slug, externalID, logo, mfaPolicy, mfaMethods, authMethod optString
			allowedMFA, allowedAuth, domains                          stringList
			trusted                                                   jsonObject
		)
		fs.StringVar(&p.OrganizationName, "organization-name", "", "organization name")
		fs.Var(&slug, "organization-slug", "slug")
		fs.Var(&externalID, "organization-external-id", "external id")
		fs.Var(&logo, "organization-logo-url", "logo URL")
		fs.Var(&mfaPolicy, "mfa-policy", "OPTIONAL or REQUIRED_FOR_ALL")
		fs.Var(&mfaMethods, "mfa-methods", "ALL_ALLOWED or RESTRICTED")
		fs.Var(&allowedMFA, "allowed-mfa-methods", "comma-separated MFA methods")
		fs.Var(&authMethod, "auth-methods", "ALL_ALLOWED or RESTRICTED")
		fs.Var(&allowedAuth, "allowed-auth-methods", "comma-separated auth methods")
		fs.Var(&domains, "email-allowed-domains", "comma-separated domains")
		fs.Var(&trusted, "trusted-metadata", "JSON object")
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--organization-name", p.OrganizationName); err != nil {
				return err
			}
			p.OrganizationSlug, p.OrganizationExternalID, p.OrganizationLogoURL = slug.v, externalID.v, logo.v
			p.MFAPolicy, p.MFAMethods, p.AuthMethods = mfaPolicy.v, mfaMethods.v, authMethod.v
			p.AllowedMFAMethods, p.AllowedAuthMethods, p.EmailAllowedDomains = allowedMFA.v, allowedAuth.v, domains.v
			p.TrustedMetadata = trusted.v
			_, err := c.Organizations.Create(ctx, p)
			return err
		}
	}}
}

const organizationsGetUsage = `Usage: sparekey organizations get --organization-id ID

Prints an organization (GET /v1/b2b/organizations/{organization_id}).

Flags:
  --organization-id ID         organization id, slug or external id (required)
` + connectionUsage + `
Example:
  sparekey organizations get --organization-id acme
`

func organizationsGet() clientCommand {
	return clientCommand{name: "organizations get", usage: organizationsGetUsage, flags: func(fs *flag.FlagSet) apiCall {
		var p client.GetOrganizationParams
		fs.StringVar(&p.OrganizationID, "organization-id", "", "organization id, slug or external id")
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--organization-id", p.OrganizationID); err != nil {
				return err
			}
			_, err := c.Organizations.Get(ctx, p)
			return err
		}
	}}
}

// ---- members ----

const membersCreateUsage = `Usage: sparekey members create --organization-id ID --email-address ADDRESS [flags]

Adds a member to an organization (POST /v1/b2b/organizations/{organization_id}/members).

Flags:
  --organization-id ID         organization id, slug or external id (required)
  --email-address ADDRESS      (required)
  --name NAME
  --external-id ID
  --roles LIST                 comma-separated explicit roles, e.g. stytch_admin
  --is-breakglass              exempt from the organization's MFA method restriction
  --mfa-enrolled
  --mfa-phone-number E164      e.g. +15551231234
  --create-member-as-pending   status pending instead of active
  --trusted-metadata JSON      a JSON object
  --untrusted-metadata JSON    a JSON object
` + connectionUsage + `
Example:
  sparekey members create --organization-id acme --email-address ada@example.com --name Ada
`

func membersCreate() clientCommand {
	return clientCommand{name: "members create", usage: membersCreateUsage, flags: func(fs *flag.FlagSet) apiCall {
		var (
			p                             client.CreateMemberParams
			name, externalID, phone       optString
			breakglass, enrolled, pending optBool
			roles                         stringList
			trusted, untrusted            jsonObject
		)
		fs.StringVar(&p.OrganizationID, "organization-id", "", "organization id, slug or external id")
		fs.StringVar(&p.EmailAddress, "email-address", "", "email address")
		fs.Var(&name, "name", "name")
		fs.Var(&externalID, "external-id", "external id")
		fs.Var(&roles, "roles", "comma-separated roles")
		fs.Var(&breakglass, "is-breakglass", "breakglass member")
		fs.Var(&enrolled, "mfa-enrolled", "MFA enrolled")
		fs.Var(&phone, "mfa-phone-number", "E.164 phone number")
		fs.Var(&pending, "create-member-as-pending", "create as pending")
		fs.Var(&trusted, "trusted-metadata", "JSON object")
		fs.Var(&untrusted, "untrusted-metadata", "JSON object")
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--organization-id", p.OrganizationID, "--email-address", p.EmailAddress); err != nil {
				return err
			}
			p.Name, p.ExternalID, p.MFAPhoneNumber = name.v, externalID.v, phone.v
			p.IsBreakglass, p.MFAEnrolled, p.CreateMemberAsPending = breakglass.v, enrolled.v, pending.v
			p.Roles, p.TrustedMetadata, p.UntrustedMetadata = roles.v, trusted.v, untrusted.v
			_, err := c.Members.Create(ctx, p)
			return err
		}
	}}
}

const membersGetUsage = `Usage: sparekey members get --organization-id ID (--member-id ID | --email-address ADDRESS)

Prints a member (GET /v1/b2b/organizations/{organization_id}/member).

Flags:
  --organization-id ID         organization id, slug or external id (required)
  --member-id ID               member id or external id
  --email-address ADDRESS      the member's address (case-insensitive)
` + connectionUsage + `
Example:
  sparekey members get --organization-id acme --email-address ada@example.com
`

func membersGet() clientCommand {
	return clientCommand{name: "members get", usage: membersGetUsage, flags: func(fs *flag.FlagSet) apiCall {
		var p client.GetMemberParams
		fs.StringVar(&p.OrganizationID, "organization-id", "", "organization id, slug or external id")
		fs.StringVar(&p.MemberID, "member-id", "", "member id or external id")
		fs.StringVar(&p.EmailAddress, "email-address", "", "email address")
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--organization-id", p.OrganizationID); err != nil {
				return err
			}
			if p.MemberID == "" && p.EmailAddress == "" {
				return usageError{"--member-id or --email-address required"}
			}
			_, err := c.Members.Get(ctx, p)
			return err
		}
	}}
}

// ---- totp ----

const totpCreateUsage = `Usage: sparekey totp create --organization-id ID --member-id ID [flags]

Registers an authenticator app for a member and prints its secret, QR code and the ten recovery
codes it issues (POST /v1/b2b/totp).

Flags:
  --organization-id ID         organization id, slug or external id (required)
  --member-id ID               member id or external id (required)
  --expiration-minutes N       5 to 1440
` + sessionArgsUsage + `                               (optional, at most one; must be the member's)
` + connectionUsage + `
Example:
  sparekey totp create --organization-id acme --member-id member-test-…
`

func totpCreate() clientCommand {
	return clientCommand{name: "totp create", usage: totpCreateUsage, flags: func(fs *flag.FlagSet) apiCall {
		var (
			p          client.CreateTOTPParams
			expiration optInt
			session    sessionArgFlags
		)
		fs.StringVar(&p.OrganizationID, "organization-id", "", "organization id, slug or external id")
		fs.StringVar(&p.MemberID, "member-id", "", "member id or external id")
		fs.Var(&expiration, "expiration-minutes", "5 to 1440")
		session.register(fs, false)
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--organization-id", p.OrganizationID, "--member-id", p.MemberID); err != nil {
				return err
			}
			p.ExpirationMinutes = expiration.v
			p.IntermediateSessionToken, p.SessionToken, p.SessionJWT = session.ist, session.token, session.jwt
			_, err := c.TOTPs.Create(ctx, p)
			return err
		}
	}}
}

// ---- passwords ----

const passwordsMigrateUsage = `Usage: sparekey passwords migrate --organization-id ID --email-address ADDRESS
         --hash HASH --hash-type TYPE [--hash-config JSON] [flags]

Imports a password hash from another system (POST /v1/b2b/passwords/migrate). A new address
creates the member with the profile flags; for an existing member only the password is set.

Flags:
  --organization-id ID         organization id, slug or external id (required)
  --email-address ADDRESS      (required)
  --hash HASH                  the hash (required)
  --hash-type TYPE             bcrypt, argon_2i, argon_2id, scrypt, pbkdf_2, sha_1 or md_5 (required)
  --hash-config JSON           the hash type's config object, e.g. for pbkdf_2
                               {"salt":"…","iteration_amount":100000,"key_length":32,"algorithm":"sha256"}
  --name NAME
  --external-id ID
  --roles LIST                 comma-separated explicit roles
  --mfa-phone-number E164
  --set-phone-number-verified
  --trusted-metadata JSON
  --untrusted-metadata JSON
  --preserve-existing-sessions
` + connectionUsage + `
Example:
  sparekey passwords migrate --organization-id acme --email-address ada@example.com \
    --hash-type bcrypt --hash '$2a$10$…'
`

func passwordsMigrate() clientCommand {
	return clientCommand{name: "passwords migrate", usage: passwordsMigrateUsage, flags: func(fs *flag.FlagSet) apiCall {
		var (
			p                       client.MigratePasswordParams
			hashConfig              optString
			name, externalID, phone optString
			phoneVerified, preserve optBool
			roles                   stringList
			trusted, untrusted      jsonObject
		)
		fs.StringVar(&p.OrganizationID, "organization-id", "", "organization id, slug or external id")
		fs.StringVar(&p.EmailAddress, "email-address", "", "email address")
		fs.StringVar(&p.Hash, "hash", "", "the hash")
		fs.StringVar(&p.HashType, "hash-type", "", "the hash type")
		fs.Var(&hashConfig, "hash-config", "JSON config object of the hash type")
		fs.Var(&name, "name", "name")
		fs.Var(&externalID, "external-id", "external id")
		fs.Var(&roles, "roles", "comma-separated roles")
		fs.Var(&phone, "mfa-phone-number", "E.164 phone number")
		fs.Var(&phoneVerified, "set-phone-number-verified", "mark the phone number verified")
		fs.Var(&trusted, "trusted-metadata", "JSON object")
		fs.Var(&untrusted, "untrusted-metadata", "JSON object")
		fs.Var(&preserve, "preserve-existing-sessions", "keep the member's sessions")
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--organization-id", p.OrganizationID, "--email-address", p.EmailAddress, "--hash", p.Hash, "--hash-type", p.HashType); err != nil {
				return err
			}
			if hashConfig.v != nil {
				if err := setHashConfig(&p, *hashConfig.v); err != nil {
					return err
				}
			}
			p.Name, p.ExternalID, p.MFAPhoneNumber = name.v, externalID.v, phone.v
			p.SetPhoneNumberVerified, p.PreserveExistingSessions = phoneVerified.v, preserve.v
			p.Roles, p.TrustedMetadata, p.UntrustedMetadata = roles.v, trusted.v, untrusted.v
			_, err := c.Passwords.Migrate(ctx, p)
			return err
		}
	}}
}

// setHashConfig decodes --hash-config into the config object of the hash type, refusing unknown
// fields so a typo does not silently fall back to a default.
func setHashConfig(p *client.MigratePasswordParams, raw string) error {
	var target any
	switch p.HashType {
	case "argon_2i", "argon_2id":
		p.Argon2Config = &client.Argon2Config{}
		target = p.Argon2Config
	case "scrypt":
		p.ScryptConfig = &client.ScryptConfig{}
		target = p.ScryptConfig
	case "pbkdf_2":
		p.PBKDF2Config = &client.PBKDF2Config{}
		target = p.PBKDF2Config
	case "sha_1":
		p.SHA1Config = &client.SHA1Config{}
		target = p.SHA1Config
	case "md_5":
		p.MD5Config = &client.MD5Config{}
		target = p.MD5Config
	default:
		return usageError{fmt.Sprintf("--hash-config: hash type %q takes no config object", p.HashType)}
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil || dec.More() {
		return usageError{fmt.Sprintf("--hash-config: not a valid %s config object: %v", p.HashType, err)}
	}
	return nil
}

const passwordsAuthenticateUsage = `Usage: sparekey passwords authenticate --organization-id ID --email-address ADDRESS --password P [flags]

Checks a member's password (POST /v1/b2b/passwords/authenticate). When the organization or the
member requires MFA the answer carries an intermediate_session_token for the second factor
(totp or recovery-codes recover); otherwise a session.

Flags:
  --organization-id ID         organization id, slug or external id (required)
  --email-address ADDRESS      (required)
  --password P                 (required; prefer SPAREKEY_PASSWORD: flags show in ps)
` + sessionArgsUsage + `                               (optional, at most one; a live session skips MFA)
` + sessionOptionsUsage + `  --locale L                   accepted and ignored
  --telemetry-id ID            device telemetry id
` + connectionUsage + `
Example:
  SPAREKEY_PASSWORD='correct horse battery staple' \
    sparekey passwords authenticate --organization-id acme --email-address ada@example.com
`

func passwordsAuthenticate() clientCommand {
	return clientCommand{name: "passwords authenticate", usage: passwordsAuthenticateUsage, flags: func(fs *flag.FlagSet) apiCall {
		var (
			p       client.AuthenticatePasswordParams
			session sessionArgFlags
		)
		fs.StringVar(&p.OrganizationID, "organization-id", "", "organization id, slug or external id")
		fs.StringVar(&p.EmailAddress, "email-address", "", "email address")
		fs.StringVar(&p.Password, "password", "", "the password")
		fs.StringVar(&p.Locale, "locale", "", "ignored")
		fs.StringVar(&p.TelemetryID, "telemetry-id", "", "device telemetry id")
		session.register(fs, true)
		return func(ctx context.Context, c *client.Client) error {
			if err := requireFlags("--organization-id", p.OrganizationID, "--email-address", p.EmailAddress, "--password", p.Password); err != nil {
				return err
			}
			p.IntermediateSessionToken, p.SessionToken, p.SessionJWT = session.ist, session.token, session.jwt
			p.SessionDurationMinutes, p.SessionCustomClaims = session.duration.v, session.claims.v
			_, err := c.Passwords.Authenticate(ctx, p)
			return err
		}
	}}
}

// ---- sessions ----

const sessionsAuthenticateUsage = `Usage: sparekey sessions authenticate (--session-token T | --session-jwt JWT) [flags]

Checks a session on the server and prints it with a fresh JWT (POST /v1/b2b/sessions/authenticate).

Flags:
  --session-token T            a session token (SPAREKEY_SESSION_TOKEN)
  --session-jwt JWT            a session JWT (SPAREKEY_SESSION_JWT)
` + sessionOptionsUsage + `  --authorization-organization-id ID, --authorization-resource-id R, --authorization-action A
                               ask whether the member may do A on R in that organization
                               (all three together)
` + connectionUsage + `
Example:
  sparekey sessions authenticate --session-token "$TOKEN" --session-duration-minutes 60
`

func sessionsAuthenticate() clientCommand {
	return clientCommand{name: "sessions authenticate", usage: sessionsAuthenticateUsage, flags: func(fs *flag.FlagSet) apiCall {
		var (
			p                     client.AuthenticateSessionParams
			session               sessionArgFlags
			authzOrg, res, action string
		)
		fs.StringVar(&session.token, "session-token", "", "session token")
		fs.StringVar(&session.jwt, "session-jwt", "", "session JWT")
		fs.Var(&session.duration, "session-duration-minutes", "session length in minutes")
		fs.Var(&session.claims, "session-custom-claims", "JSON object merged into the session's claims")
		fs.StringVar(&authzOrg, "authorization-organization-id", "", "authorization check: organization")
		fs.StringVar(&res, "authorization-resource-id", "", "authorization check: resource")
		fs.StringVar(&action, "authorization-action", "", "authorization check: action")
		return func(ctx context.Context, c *client.Client) error {
			p.SessionToken, p.SessionJWT = session.token, session.jwt
			p.SessionDurationMinutes, p.SessionCustomClaims = session.duration.v, session.claims.v
			if authzOrg != "" || res != "" || action != "" {
				if err := requireFlags("--authorization-organization-id", authzOrg, "--authorization-resource-id", res, "--authorization-action", action); err != nil {
					return err
				}
				p.AuthorizationCheck = &client.AuthorizationCheck{OrganizationID: authzOrg, ResourceID: res, Action: action}
			}
			_, err := c.Sessions.Authenticate(ctx, p)
			return err
		}
	}}
}

const sessionsRevokeUsage = `Usage: sparekey sessions revoke (--member-session-id ID | --session-token T | --session-jwt JWT | --member-id ID)

Ends one session, or every session of a member (POST /v1/b2b/sessions/revoke). JWTs already
issued keep passing local checks until they expire, at most five minutes later.

Flags:
  --member-session-id ID       the session's id
  --session-token T            the session's token (SPAREKEY_SESSION_TOKEN)
  --session-jwt JWT            the session's JWT (SPAREKEY_SESSION_JWT)
  --member-id ID               a canonical member id: revokes all of the member's sessions
` + connectionUsage + `
Example:
  sparekey sessions revoke --member-id member-test-…
`

func sessionsRevoke() clientCommand {
	return clientCommand{name: "sessions revoke", usage: sessionsRevokeUsage, flags: func(fs *flag.FlagSet) apiCall {
		var p client.RevokeSessionParams
		fs.StringVar(&p.MemberSessionID, "member-session-id", "", "session id")
		fs.StringVar(&p.SessionToken, "session-token", "", "session token")
		fs.StringVar(&p.SessionJWT, "session-jwt", "", "session JWT")
		fs.StringVar(&p.MemberID, "member-id", "", "canonical member id")
		return func(ctx context.Context, c *client.Client) error {
			_, err := c.Sessions.Revoke(ctx, p)
			return err
		}
	}}
}
