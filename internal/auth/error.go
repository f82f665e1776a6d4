package auth

import (
	"errors"
	"time"
)

// Code classifies a domain error; the API layer maps each code to one HTTP status.
type Code string

const (
	EInvalid         Code = "invalid"         // the request is malformed or breaks a rule
	EUnauthenticated Code = "unauthenticated" // credentials, a code or a password did not check out
	EForbidden       Code = "forbidden"       // authenticated, but not allowed
	ENotFound        Code = "not_found"       // no such thing in this project
	ELocked          Code = "locked"          // the member is locked or a rate limit applies
	EInternal        Code = "internal"        // a fault of ours; details go to the log only
)

// Error is the one error type the domain returns. Type is the Stytch error_type the caller sees,
// chosen where the rule lives; Message is safe to show and never holds a code, token or secret.
type Error struct {
	Code    Code
	Type    string
	Message string
	// RetryAfter, when set, tells the caller when trying again can succeed (a member lock).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Is makes errors.Is match on the error type, so a copy carrying RetryAfter still matches its
// catalogue entry.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Type == e.Type
}

// TypeOf returns the error_type of err, or "" when err is not a domain error.
func TypeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Type
	}
	return ""
}

func newError(code Code, typ, msg string) *Error { return &Error{Code: code, Type: typ, Message: msg} }

// The error catalogue, in the order of CONTRACT.md §8.
var (
	ErrBadRequest                = newError(EInvalid, "bad_request", "The request body or parameters are malformed, or a required field is missing.")
	ErrInvalidRequestValue       = newError(EInvalid, "invalid_request_value", "A field has a value outside what this endpoint accepts.")
	ErrUnauthorizedCredentials   = newError(EUnauthenticated, "unauthorized_credentials", "Project credentials are missing or invalid.")
	ErrWrongEmailOrPassword      = newError(EUnauthenticated, "unauthorized_credentials", "The email address or password is incorrect.")
	ErrMFAMethodRestricted       = newError(EForbidden, "operation_restricted_by_organization_mfa_methods", "The organization does not allow this MFA method.")
	ErrSessionAuthorization      = newError(EForbidden, "session_authorization_error", "The session's member may not perform this action.")
	ErrSessionTenancy            = newError(EForbidden, "session_authorization_tenancy_error", "The session belongs to a different organization.")
	ErrProjectNotFound           = newError(ENotFound, "project_not_found", "No project has this id.")
	ErrOrganizationNotFound      = newError(ENotFound, "organization_not_found", "No organization matches this id, slug or external id.")
	ErrMemberNotFound            = newError(ENotFound, "member_not_found", "No member of the organization matches this id, external id or email address.")
	ErrTOTPNotFound              = newError(ENotFound, "totp_not_found", "The member has no TOTP registration.")
	ErrISTNotFound               = newError(ENotFound, "intermediate_session_not_found", "The intermediate session token is unknown, expired or already used.")
	ErrSessionNotFound           = newError(ENotFound, "session_not_found", "The session is unknown, revoked or expired.")
	ErrOrganizationNameMissing   = newError(EInvalid, "organization_name_missing", "An organization name is required.")
	ErrInvalidOrganizationName   = newError(EInvalid, "invalid_organization_name", "The organization name must be 1 to 128 characters.")
	ErrInvalidOrganizationSlug   = newError(EInvalid, "invalid_organization_slug", "The slug must be 2 to 128 letters, digits or - . _ ~.")
	ErrOrganizationSlugUsed      = newError(EInvalid, "organization_slug_already_used", "Another organization already uses this slug.")
	ErrInvalidOrganizationExtID  = newError(EInvalid, "invalid_organization_external_id", "The external id has an invalid length or character.")
	ErrOrganizationExtIDUsed     = newError(EInvalid, "organization_external_id_already_used", "Another organization already uses this external id.")
	ErrInvalidMFAPolicy          = newError(EInvalid, "invalid_organization_mfa_policy", "mfa_policy must be OPTIONAL or REQUIRED_FOR_ALL.")
	ErrInvalidAllowedMFAMethods  = newError(EInvalid, "invalid_organization_allowed_mfa_methods", "allowed_mfa_methods may contain only sms_otp and totp.")
	ErrAllowedMFAMethodsRequired = newError(EInvalid, "allowed_mfa_methods_required_for_restricted", "A RESTRICTED mfa_methods setting needs at least one allowed method.")
	ErrSearchFilterNotRecognized = newError(EInvalid, "organization_search_filter_name_not_recognized", "This search filter is not supported.")
	ErrInvalidEmail              = newError(EInvalid, "invalid_email", "The email address is not valid.")
	ErrInvalidPhoneNumber        = newError(EInvalid, "invalid_phone_number", "The phone number must be in E.164 format.")
	ErrDuplicateMemberEmail      = newError(EInvalid, "duplicate_member_email", "Another member of the organization has this email address.")
	ErrDuplicateMemberExtID      = newError(EInvalid, "duplicate_member_external_id", "Another member of the organization has this external id.")
	ErrInvalidRoleID             = newError(EInvalid, "invalid_rbac_role_id", "The role does not exist.")
	ErrInvalidDefaultMFAMethod   = newError(EInvalid, "invalid_mfa_default_method", "default_mfa_method must be totp or sms_otp.")
	ErrDefaultMFAMissingFactor   = newError(EInvalid, "default_mfa_member_missing_factor", "The member has not set up that MFA method.")
	ErrNoRecoveryCodeFactor      = newError(EInvalid, "no_active_recovery_code_backed_factor", "The member has no TOTP registration, so has no recovery codes.")
	ErrInvalidRecoveryCode       = newError(EInvalid, "invalid_recovery_code", "The recovery code is not in a valid format.")
	ErrTOTPCodeAsRecoveryCode    = newError(EInvalid, "totp_code_used_as_recovery_code", "A TOTP code was sent where a recovery code was expected.")
	ErrRecoveryCodeRejected      = newError(EUnauthenticated, "unable_to_authenticate_recovery_code", "The recovery code is wrong or has already been used.")
	ErrActiveTOTPExists          = newError(EInvalid, "active_totp_exists", "The member already has a TOTP registration; delete it first.")
	ErrInvalidTOTPCode           = newError(EInvalid, "invalid_totp_code", "A TOTP code must be six digits.")
	ErrRecoveryCodeAsTOTPCode    = newError(EInvalid, "recovery_code_used_as_totp_code", "A recovery code was sent where a TOTP code was expected.")
	ErrTOTPCodeAlreadyUsed       = newError(EInvalid, "totp_code_already_authenticated", "This TOTP code has already been used.")
	ErrTOTPRejected              = newError(EUnauthenticated, "unable_to_authenticate_totp", "The TOTP code is wrong.")
	ErrMemberLocked              = newError(ELocked, "user_lock_limit_reached", "Too many failed attempts; the member is locked until lock_expires_at.")
	ErrTooManyRequests           = newError(ELocked, "too_many_requests", "Rate limit exceeded.")
	ErrInvalidHashType           = newError(EInvalid, "invalid_hash_type", "This password hash type is not supported.")
	ErrInvalidHash               = newError(EInvalid, "invalid_hash", "The password hash or its configuration is malformed.")
	ErrMissingPrimaryFactor      = newError(EInvalid, "invalid_session_missing_primary_factor", "An intermediate session token, session token or session JWT is required.")
	ErrTooManySessionArguments   = newError(EInvalid, "too_many_session_arguments", "Send only one of intermediate_session_token, session_token and session_jwt.")
	ErrNoSessionArguments        = newError(EInvalid, "no_session_arguments", "Send session_token or session_jwt.")
	ErrISTForOtherOrganization   = newError(EInvalid, "invalid_intermediate_session_token_for_organization", "The intermediate session token belongs to another organization.")
	ErrSessionMemberMismatch     = newError(EInvalid, "member_session_member_id_mismatch", "The session belongs to a different member.")
	ErrInvalidSessionDuration    = newError(EInvalid, "invalid_session_duration_minutes", "session_duration_minutes must be an integer from 5 to 527040.")
	ErrUnparseableJWT            = newError(EInvalid, "unable_to_parse_session_jwt", "The session JWT is malformed or its signature does not verify.")
	ErrJWTInvalidIssuer          = newError(EInvalid, "jwt_invalid_issuer", "The session JWT has the wrong issuer.")
	ErrJWTInvalidAudience        = newError(EInvalid, "jwt_invalid_audience", "The session JWT was not issued for this project.")
	ErrJWTInvalidClaims          = newError(EInvalid, "jwt_invalid_claims", "The session JWT is not valid yet or lacks required claims.")
	ErrNoRevokeArguments         = newError(EInvalid, "no_session_revoke_arguments", "Say which session or member to revoke.")
	ErrTooManyRevokeArguments    = newError(EInvalid, "too_many_session_revoke_arguments", "Give only one of member_session_id, session_token, session_jwt and member_id.")
	ErrCustomClaimsTooLarge      = newError(EInvalid, "custom_claims_too_large", "Custom claims may not exceed 4096 bytes.")
	ErrReservedClaims            = newError(EInvalid, "reserved_claims_in_custom_claims", "Custom claims may not use iss, sub, aud, exp, nbf, iat or jti.")
	ErrStytchClaims              = newError(EInvalid, "stytch_claims_in_custom_claims", "Custom claim keys may not start with `https://stytch.com/`.")
	// ErrRecoveryCodesNotRetrievable is GET's answer under the strict storage policy (sparekey's
	// own: the contract leaves a hash-only policy to define its GET error), and for any set
	// issued under it.
	ErrRecoveryCodesNotRetrievable = newError(EInvalid, "recovery_codes_not_retrievable", "This deployment stores recovery codes only as keyed hashes; they are shown once, when issued. Rotate to issue a new set.")
	// Webhooks (sparekey's own API, beyond the contract).
	ErrWebhookNotFound         = newError(ENotFound, "webhook_not_found", "No webhook of this project has this id.")
	ErrInvalidWebhookURL       = newError(EInvalid, "invalid_request_value", "url must be an absolute http:// or https:// URL of at most 2048 characters, without user info or fragment.")
	ErrInvalidWebhookEventType = newError(EInvalid, "invalid_request_value", "event_types may hold only event types that sparekey records.")
	ErrTooManyWebhooks         = newError(EInvalid, "too_many_webhooks", "The project has the most webhooks allowed (20); delete one first.")
	// ErrWebhookClaimLost is the store's answer to an attempt whose lease ended (the delivery
	// was claimed again) or whose webhook was deleted; the dispatcher only counts it.
	ErrWebhookClaimLost = newError(EInternal, "webhook_claim_lost", "The webhook delivery is no longer held by this claim.")
	// ErrNoPassword is the store's answer for a member without a password; the domain never lets
	// it reach a caller (password authentication answers ErrWrongEmailOrPassword instead).
	ErrNoPassword = newError(ENotFound, "password_not_found", "The member has no password.")
	ErrInternal   = newError(EInternal, "internal_server_error", "Something went wrong on the server; quote the request_id when reporting it.")
)

// locked returns the lock error with the time until lockExpires, rounded up to whole seconds
// by the API layer.
func locked(now, lockExpires time.Time) *Error {
	e := *ErrMemberLocked
	e.RetryAfter = lockExpires.Sub(now)
	return &e
}
