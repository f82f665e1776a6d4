// Field-by-field checkers for the sparekey wire contract (/work/shared/CONTRACT.md).
//
// Each checker throws an AssertionError naming the JSON path that broke the
// contract. The section numbers in the comments point at the rule enforced.

import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";

// §4: every UUID is version 4, lowercase, hyphenated.
const UUID4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";
const id = (prefix) => new RegExp(`^${prefix}-${UUID4}$`);

export const ID = {
  project: id("project-test"),
  organization: id("organization-test"),
  member: id("member-test"),
  memberSession: id("member-session-test"),
  totpRegistration: id("member-totp-test"),
  memberPassword: id("member-password-test"),
  totpRecoveryCode: id("member-totp-recovery-code-test"),
  email: id("email-test"),
  jwk: id("jwk-test"),
  request: id("request-id-test"),
};

// §4: "secret-test-<opaque>".
export const SECRET = /^secret-test-\S+$/;
// §3 rule 3: RFC 3339, UTC, whole seconds, "Z".
export const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
// §4: 33 random bytes as unpadded URL-safe base64 is exactly 44 characters.
export const TOKEN = /^[A-Za-z0-9_-]{44}$/;
// §6.1: lowercase Crockford base32 (no i, l, o, u), issued as xxxx-xxxx-xxxx
// or, on the 80-bit setting, xxxx-xxxx-xxxx-xxxx.
const C = "[0-9a-hjkmnp-tv-z]";
export const RECOVERY_CODE = new RegExp(`^${C}{4}-${C}{4}-${C}{4}(-${C}{4})?$`);
export const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";
// §4: 160-bit RFC 4648 base32 secret without padding.
export const TOTP_SECRET = /^[A-Z2-7]{32}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

// §5.1 enums.
const ALLOWED_NOT = ["ALL_ALLOWED", "RESTRICTED", "NOT_ALLOWED"];
const ORG_ENUMS = {
  mfa_policy: ["OPTIONAL", "REQUIRED_FOR_ALL"],
  mfa_methods: ["ALL_ALLOWED", "RESTRICTED"],
  auth_methods: ["ALL_ALLOWED", "RESTRICTED"],
  sso_jit_provisioning: ALLOWED_NOT,
  email_invites: ALLOWED_NOT,
  first_party_connected_apps_allowed_type: ALLOWED_NOT,
  third_party_connected_apps_allowed_type: ALLOWED_NOT,
  email_jit_provisioning: ["RESTRICTED", "NOT_ALLOWED"],
  oauth_tenant_jit_provisioning: ["RESTRICTED", "NOT_ALLOWED"],
};
const ALLOWED_MFA_METHODS = ["sms_otp", "totp"];
const ALLOWED_AUTH_METHODS = [
  "sso", "magic_link", "email_otp", "password", "google_oauth",
  "microsoft_oauth", "slack_oauth", "github_oauth", "hubspot_oauth",
];
const OAUTH_TENANT_KEYS = ["slack", "hubspot", "github"];

// §5.4 enums. Python rejects anything else.
export const FACTOR_TYPES = [
  "magic_link", "otp", "oauth", "webauthn", "totp", "crypto", "password",
  "signature_challenge", "sso", "imported", "recovery_codes", "email_otp",
  "impersonated", "trusted_auth_token",
];
export const DELIVERY_METHODS = [
  "email", "sms", "whatsapp", "embedded", "oauth_google", "oauth_microsoft",
  "oauth_apple", "webauthn_registration", "authenticator_app", "oauth_github",
  "recovery_code", "oauth_facebook", "crypto_wallet", "oauth_amazon",
  "oauth_bitbucket", "oauth_coinbase", "oauth_discord", "oauth_figma",
  "oauth_gitlab", "oauth_instagram", "oauth_linkedin", "oauth_shopify",
  "oauth_slack", "oauth_snapchat", "oauth_spotify", "oauth_steam",
  "oauth_tiktok", "oauth_twitch", "oauth_twitter", "knowledge", "biometric",
  "sso_saml", "sso_oidc", "oauth_salesforce", "oauth_yahoo", "oauth_hubspot",
  "imported_auth0", "oauth_exchange_slack", "oauth_exchange_hubspot",
  "oauth_exchange_github", "oauth_exchange_google", "impersonation",
  "oauth_access_token_exchange", "trusted_token_exchange",
];
// §5.4: the only factors sparekey issues, each with its one delivery method.
const ISSUED_FACTORS = {
  password: "knowledge",
  totp: "authenticator_app",
  recovery_codes: "recovery_code",
};

// §5.2: role and role-source vocabulary.
const KNOWN_ROLES = ["stytch_member", "stytch_admin"];

// --- primitive checks -------------------------------------------------------

function isPlainObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function keysExactly(obj, keys, path) {
  assert.ok(isPlainObject(obj), `${path}: expected a JSON object, got ${JSON.stringify(obj)}`);
  const missing = keys.filter((k) => !(k in obj));
  const extra = Object.keys(obj).filter((k) => !keys.includes(k));
  assert.ok(
    missing.length === 0 && extra.length === 0,
    `${path}: the set of keys differs from the contract (missing: ${missing.join(", ") || "none"}; not in the contract: ${extra.join(", ") || "none"})`,
  );
}

export function str(v, path) {
  assert.equal(typeof v, "string", `${path}: expected a string (never null), got ${JSON.stringify(v)}`);
}

export function bool(v, path) {
  assert.equal(typeof v, "boolean", `${path}: expected a boolean, got ${JSON.stringify(v)}`);
}

export function int(v, path) {
  assert.ok(Number.isInteger(v), `${path}: expected a JSON integer, got ${JSON.stringify(v)}`);
}

export function obj(v, path) {
  assert.ok(isPlainObject(v), `${path}: expected an object (never null), got ${JSON.stringify(v)}`);
}

export function strArray(v, path, allowed) {
  assert.ok(Array.isArray(v), `${path}: expected an array (never null), got ${JSON.stringify(v)}`);
  v.forEach((item, i) => {
    str(item, `${path}[${i}]`);
    if (allowed) oneOf(item, allowed, `${path}[${i}]`);
  });
}

export function oneOf(v, allowed, path) {
  assert.ok(allowed.includes(v), `${path}: ${JSON.stringify(v)} is not one of ${allowed.join(", ")}`);
}

export function timestamp(v, path) {
  assert.ok(
    typeof v === "string" && TIMESTAMP.test(v) && !Number.isNaN(Date.parse(v)),
    `${path}: expected an RFC 3339 UTC timestamp with whole seconds and Z, got ${JSON.stringify(v)}`,
  );
}

export function timestampOrNull(v, path) {
  if (v !== null) timestamp(v, path);
}

export function matches(v, re, path) {
  assert.ok(typeof v === "string" && re.test(v), `${path}: ${JSON.stringify(v)} does not match ${re}`);
}

export function idOrEmpty(v, re, path) {
  if (v !== "") matches(v, re, path);
}

// --- §5.1 Organization ------------------------------------------------------

export const ORGANIZATION_FIELDS = [
  "organization_id", "organization_name", "organization_slug", "organization_logo_url",
  "organization_external_id", "trusted_metadata", "mfa_policy", "mfa_methods",
  "allowed_mfa_methods", "auth_methods", "allowed_auth_methods", "sso_jit_provisioning",
  "email_invites", "first_party_connected_apps_allowed_type",
  "third_party_connected_apps_allowed_type", "email_jit_provisioning",
  "oauth_tenant_jit_provisioning", "sso_jit_provisioning_allowed_connections",
  "email_allowed_domains", "claimed_email_domains", "allowed_first_party_connected_apps",
  "allowed_third_party_connected_apps", "rbac_email_implicit_role_assignments",
  "allowed_oauth_tenants", "sso_active_connections", "custom_roles",
  "sso_default_connection_id", "scim_active_connection", "created_at", "updated_at",
];

export function checkOrganization(o, path = "organization") {
  keysExactly(o, ORGANIZATION_FIELDS, path);
  matches(o.organization_id, ID.organization, `${path}.organization_id`);
  str(o.organization_name, `${path}.organization_name`);
  assert.ok(
    o.organization_name.length >= 1 && [...o.organization_name].length <= 128,
    `${path}.organization_name: must be 1-128 characters`,
  );
  matches(o.organization_slug, /^[A-Za-z0-9._~-]{2,128}$/, `${path}.organization_slug`);
  str(o.organization_logo_url, `${path}.organization_logo_url`);
  if (o.organization_logo_url !== "") {
    matches(o.organization_logo_url, /^https?:\/\//, `${path}.organization_logo_url`);
  }
  str(o.organization_external_id, `${path}.organization_external_id`);
  if (o.organization_external_id !== "") {
    matches(o.organization_external_id, /^[A-Za-z0-9._|-]{1,128}$/, `${path}.organization_external_id`);
  }
  obj(o.trusted_metadata, `${path}.trusted_metadata`);
  for (const [field, allowed] of Object.entries(ORG_ENUMS)) {
    str(o[field], `${path}.${field}`);
    oneOf(o[field], allowed, `${path}.${field}`);
  }
  strArray(o.allowed_mfa_methods, `${path}.allowed_mfa_methods`, ALLOWED_MFA_METHODS);
  if (o.mfa_methods === "RESTRICTED") {
    assert.ok(o.allowed_mfa_methods.length > 0, `${path}.allowed_mfa_methods: must be non-empty when mfa_methods is RESTRICTED`);
  }
  strArray(o.allowed_auth_methods, `${path}.allowed_auth_methods`, ALLOWED_AUTH_METHODS);
  for (const field of [
    "sso_jit_provisioning_allowed_connections", "email_allowed_domains", "claimed_email_domains",
    "allowed_first_party_connected_apps", "allowed_third_party_connected_apps",
  ]) {
    strArray(o[field], `${path}.${field}`);
  }
  assert.ok(Array.isArray(o.rbac_email_implicit_role_assignments), `${path}.rbac_email_implicit_role_assignments: expected an array`);
  o.rbac_email_implicit_role_assignments.forEach((a, i) => {
    const p = `${path}.rbac_email_implicit_role_assignments[${i}]`;
    keysExactly(a, ["domain", "role_id"], p);
    str(a.domain, `${p}.domain`);
    str(a.role_id, `${p}.role_id`);
  });
  obj(o.allowed_oauth_tenants, `${path}.allowed_oauth_tenants`);
  for (const [k, v] of Object.entries(o.allowed_oauth_tenants)) {
    oneOf(k, OAUTH_TENANT_KEYS, `${path}.allowed_oauth_tenants key`);
    strArray(v, `${path}.allowed_oauth_tenants.${k}`);
  }
  // No SSO, SCIM or custom roles exist in sparekey, so these never carry data.
  assert.deepEqual(o.sso_active_connections, [], `${path}.sso_active_connections: always []`);
  assert.deepEqual(o.custom_roles, [], `${path}.custom_roles: always []`);
  assert.equal(o.sso_default_connection_id, null, `${path}.sso_default_connection_id: always null`);
  assert.equal(o.scim_active_connection, null, `${path}.scim_active_connection: always null`);
  timestamp(o.created_at, `${path}.created_at`);
  timestamp(o.updated_at, `${path}.updated_at`);
}

// --- §5.2 Member ------------------------------------------------------------

export const MEMBER_FIELDS = [
  "organization_id", "member_id", "email_address", "status", "name", "external_id",
  "email_address_verified", "mfa_phone_number_verified", "retired_email_addresses",
  "is_breakglass", "is_admin", "roles", "mfa_enrolled", "mfa_phone_number",
  "default_mfa_method", "totp_registration_id", "member_password_id", "is_locked",
  "lock_created_at", "lock_expires_at", "sso_registrations", "oauth_registrations",
  "scim_registration", "trusted_metadata", "untrusted_metadata", "created_at", "updated_at",
];

export function checkMember(m, path = "member") {
  keysExactly(m, MEMBER_FIELDS, path);
  matches(m.organization_id, ID.organization, `${path}.organization_id`);
  matches(m.member_id, ID.member, `${path}.member_id`);
  str(m.email_address, `${path}.email_address`);
  assert.equal(m.email_address, m.email_address.toLowerCase(), `${path}.email_address: stored lowercase`);
  // sparekey shows only these two of the four legal statuses.
  oneOf(m.status, ["active", "pending"], `${path}.status`);
  str(m.name, `${path}.name`);
  str(m.external_id, `${path}.external_id`);
  if (m.external_id !== "") {
    matches(m.external_id, /^[A-Za-z0-9._|-]{1,128}$/, `${path}.external_id`);
  }
  for (const f of ["email_address_verified", "mfa_phone_number_verified", "is_breakglass", "is_admin", "mfa_enrolled", "is_locked"]) {
    bool(m[f], `${path}.${f}`);
  }
  assert.ok(Array.isArray(m.retired_email_addresses), `${path}.retired_email_addresses: expected an array`);
  m.retired_email_addresses.forEach((r, i) => {
    const p = `${path}.retired_email_addresses[${i}]`;
    keysExactly(r, ["email_id", "email_address"], p);
    matches(r.email_id, ID.email, `${p}.email_id`);
    str(r.email_address, `${p}.email_address`);
  });
  checkMemberRoles(m.roles, `${path}.roles`);
  assert.equal(
    m.is_admin,
    m.roles.some((r) => r.role_id === "stytch_admin"),
    `${path}.is_admin: true exactly when roles holds stytch_admin`,
  );
  str(m.mfa_phone_number, `${path}.mfa_phone_number`);
  if (m.mfa_phone_number !== "") matches(m.mfa_phone_number, /^\+[1-9]\d{1,14}$/, `${path}.mfa_phone_number`);
  oneOf(m.default_mfa_method, ["", "totp", "sms_otp"], `${path}.default_mfa_method`);
  idOrEmpty(m.totp_registration_id, ID.totpRegistration, `${path}.totp_registration_id`);
  idOrEmpty(m.member_password_id, ID.memberPassword, `${path}.member_password_id`);
  timestampOrNull(m.lock_created_at, `${path}.lock_created_at`);
  timestampOrNull(m.lock_expires_at, `${path}.lock_expires_at`);
  // §6.0.3: a lock sets both timestamps; its end clears both.
  assert.equal(m.lock_created_at !== null, m.is_locked, `${path}.lock_created_at: set exactly while is_locked`);
  assert.equal(m.lock_expires_at !== null, m.is_locked, `${path}.lock_expires_at: set exactly while is_locked`);
  assert.deepEqual(m.sso_registrations, [], `${path}.sso_registrations: always []`);
  assert.deepEqual(m.oauth_registrations, [], `${path}.oauth_registrations: always []`);
  assert.equal(m.scim_registration, null, `${path}.scim_registration: always null`);
  obj(m.trusted_metadata, `${path}.trusted_metadata`);
  obj(m.untrusted_metadata, `${path}.untrusted_metadata`);
  timestamp(m.created_at, `${path}.created_at`);
  timestamp(m.updated_at, `${path}.updated_at`);
}

export function checkMemberRoles(roles, path) {
  assert.ok(Array.isArray(roles) && roles.length >= 1, `${path}: expected a non-empty array`);
  assert.equal(roles[0]?.role_id, "stytch_member", `${path}[0]: stytch_member is always first`);
  roles.forEach((r, i) => {
    const p = `${path}[${i}]`;
    keysExactly(r, ["role_id", "sources"], p);
    oneOf(r.role_id, KNOWN_ROLES, `${p}.role_id`);
    assert.ok(Array.isArray(r.sources) && r.sources.length >= 1, `${p}.sources: expected a non-empty array`);
    r.sources.forEach((s, j) => {
      const q = `${p}.sources[${j}]`;
      keysExactly(s, ["type", "details"], q);
      // sparekey emits direct_assignment only.
      assert.equal(s.type, "direct_assignment", `${q}.type`);
      obj(s.details, `${q}.details`);
    });
  });
}

// --- §5.3 MemberSession, §5.4 AuthenticationFactor --------------------------

export const MEMBER_SESSION_FIELDS = [
  "member_session_id", "member_id", "organization_id", "organization_slug", "started_at",
  "last_accessed_at", "expires_at", "authentication_factors", "roles", "custom_claims",
];

export function checkMemberSession(s, path = "member_session") {
  keysExactly(s, MEMBER_SESSION_FIELDS, path);
  matches(s.member_session_id, ID.memberSession, `${path}.member_session_id`);
  matches(s.member_id, ID.member, `${path}.member_id`);
  matches(s.organization_id, ID.organization, `${path}.organization_id`);
  str(s.organization_slug, `${path}.organization_slug`);
  timestamp(s.started_at, `${path}.started_at`);
  timestamp(s.last_accessed_at, `${path}.last_accessed_at`);
  timestamp(s.expires_at, `${path}.expires_at`);
  assert.ok(Date.parse(s.started_at) <= Date.parse(s.last_accessed_at), `${path}: started_at after last_accessed_at`);
  assert.ok(Date.parse(s.last_accessed_at) < Date.parse(s.expires_at), `${path}: a live session expires after its last access`);
  checkFactors(s.authentication_factors, `${path}.authentication_factors`);
  strArray(s.roles, `${path}.roles`, KNOWN_ROLES);
  assert.ok(s.roles.includes("stytch_member"), `${path}.roles: every member holds stytch_member`);
  obj(s.custom_claims, `${path}.custom_claims`);
}

export function checkFactors(factors, path) {
  assert.ok(Array.isArray(factors), `${path}: expected an array`);
  factors.forEach((f, i) => checkFactor(f, `${path}[${i}]`));
  // §5.3: one entry per (type, delivery_method).
  const pairs = factors.map((f) => `${f.type}/${f.delivery_method}`);
  assert.equal(new Set(pairs).size, pairs.length, `${path}: duplicate (type, delivery_method) in ${pairs.join(", ")}`);
}

export function checkFactor(f, path) {
  assert.ok(isPlainObject(f), `${path}: expected an object`);
  oneOf(f.type, FACTOR_TYPES, `${path}.type`);
  oneOf(f.delivery_method, DELIVERY_METHODS, `${path}.delivery_method`);
  assert.ok(f.type in ISSUED_FACTORS, `${path}.type: sparekey never issues ${f.type}`);
  assert.equal(f.delivery_method, ISSUED_FACTORS[f.type], `${path}.delivery_method for type ${f.type}`);
  const keys = ["type", "delivery_method", "created_at", "updated_at", "last_authenticated_at"];
  if (f.type === "totp") keys.push("authenticator_app_factor");
  if (f.type === "recovery_codes") keys.push("recovery_code_factor");
  keysExactly(f, keys, path);
  timestamp(f.created_at, `${path}.created_at`);
  timestamp(f.updated_at, `${path}.updated_at`);
  timestamp(f.last_authenticated_at, `${path}.last_authenticated_at`);
  if (f.type === "totp") {
    keysExactly(f.authenticator_app_factor, ["totp_id"], `${path}.authenticator_app_factor`);
    matches(f.authenticator_app_factor.totp_id, ID.totpRegistration, `${path}.authenticator_app_factor.totp_id`);
  }
  if (f.type === "recovery_codes") {
    keysExactly(f.recovery_code_factor, ["totp_recovery_code_id"], `${path}.recovery_code_factor`);
    matches(f.recovery_code_factor.totp_recovery_code_id, ID.totpRecoveryCode, `${path}.recovery_code_factor.totp_recovery_code_id`);
  }
}

// --- §5.5 mfa_required ------------------------------------------------------

export function checkMfaRequired(x, path = "mfa_required") {
  keysExactly(x, ["member_options", "secondary_auth_initiated"], path);
  keysExactly(x.member_options, ["mfa_phone_number", "totp_registration_id"], `${path}.member_options`);
  str(x.member_options.mfa_phone_number, `${path}.member_options.mfa_phone_number`);
  if (x.member_options.mfa_phone_number !== "") {
    // Masked: "+" dropped, every digit but the last four shown as X.
    matches(x.member_options.mfa_phone_number, /^X+\d{4}$/, `${path}.member_options.mfa_phone_number`);
  }
  idOrEmpty(x.member_options.totp_registration_id, ID.totpRegistration, `${path}.member_options.totp_registration_id`);
  // No SMS in sparekey.
  assert.equal(x.secondary_auth_initiated, null, `${path}.secondary_auth_initiated: always null`);
}

// --- §5.6 JWK ---------------------------------------------------------------

export function checkJwk(k, path = "jwk") {
  keysExactly(k, ["alg", "e", "key_ops", "kid", "kty", "n", "use", "x5c", "x5tS256"], path);
  assert.equal(k.alg, "RS256", `${path}.alg`);
  assert.equal(k.e, "AQAB", `${path}.e`);
  assert.deepEqual(k.key_ops, ["verify"], `${path}.key_ops`);
  matches(k.kid, ID.jwk, `${path}.kid`);
  assert.equal(k.kty, "RSA", `${path}.kty`);
  matches(k.n, BASE64URL, `${path}.n`);
  assert.equal(Buffer.from(k.n, "base64url").length, 256, `${path}.n: a 2048-bit modulus is 256 bytes`);
  assert.equal(k.use, "sig", `${path}.use`);
  assert.ok(Array.isArray(k.x5c) && k.x5c.length >= 1, `${path}.x5c: expected a non-empty array`);
  matches(k.x5c[0], BASE64, `${path}.x5c[0]`);
  const der = Buffer.from(k.x5c[0], "base64");
  matches(k.x5tS256, BASE64URL, `${path}.x5tS256`);
  assert.equal(k.x5tS256, createHash("sha256").update(der).digest("base64url"), `${path}.x5tS256: SHA-256 of x5c[0]`);
  const cert = new X509Certificate(der);
  assert.ok(cert.verify(cert.publicKey), `${path}.x5c[0]: must be self-signed`);
  const pub = cert.publicKey.export({ format: "jwk" });
  assert.equal(pub.n, k.n, `${path}.x5c[0]: certificate key differs from n`);
  assert.equal(pub.e, k.e, `${path}.x5c[0]: certificate key differs from e`);
}

// --- §7 session JWT ---------------------------------------------------------

export const SESSION_CLAIM = "https://stytch.com/session";
export const ORGANIZATION_CLAIM = "https://stytch.com/organization";

export function decodeJwt(jwt) {
  assert.equal(typeof jwt, "string", "session_jwt: expected a string");
  const parts = jwt.split(".");
  assert.equal(parts.length, 3, "session_jwt: expected a compact JWT of three parts");
  parts.forEach((p, i) => matches(p, BASE64URL, `session_jwt part ${i}`));
  const header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
  const payload = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
  return { header, payload };
}

// Checks the §7 header and claims. With `session` (a §5.3 MemberSession from
// the same response) the claims must describe that very session.
export function checkJwt(jwt, { projectId, session } = {}) {
  const { header, payload } = decodeJwt(jwt);
  keysExactly(header, ["alg", "typ", "kid"], "session_jwt header");
  assert.equal(header.alg, "RS256", "session_jwt header.alg");
  assert.equal(header.typ, "JWT", "session_jwt header.typ");
  matches(header.kid, ID.jwk, "session_jwt header.kid");

  const p = "session_jwt payload";
  assert.ok(!("jti" in payload), `${p}: no jti is emitted`);
  matches(payload.sub, ID.member, `${p}.sub`);
  assert.equal(payload.iss, `stytch.com/${projectId}`, `${p}.iss`);
  assert.deepEqual(payload.aud, [projectId], `${p}.aud: an array holding the project id`);
  for (const c of ["iat", "nbf", "exp"]) int(payload[c], `${p}.${c}`);
  assert.equal(payload.nbf, payload.iat, `${p}.nbf: both iat and nbf are "now"`);
  assert.ok(payload.exp > payload.iat, `${p}.exp: must be after iat`);
  assert.ok(payload.exp <= payload.iat + 300, `${p}.exp: at most iat + 300, got exp - iat = ${payload.exp - payload.iat}`);
  const nowSec = Date.now() / 1000;
  assert.ok(Math.abs(payload.iat - nowSec) < 60, `${p}.iat: ${payload.iat} is not "now" (${Math.floor(nowSec)})`);

  const sc = payload[SESSION_CLAIM];
  const sp = `${p}["${SESSION_CLAIM}"]`;
  keysExactly(sc, ["id", "started_at", "last_accessed_at", "expires_at", "attributes", "authentication_factors", "roles"], sp);
  matches(sc.id, ID.memberSession, `${sp}.id`);
  timestamp(sc.started_at, `${sp}.started_at`);
  timestamp(sc.last_accessed_at, `${sp}.last_accessed_at`);
  timestamp(sc.expires_at, `${sp}.expires_at`);
  assert.deepEqual(sc.attributes, { ip_address: "", user_agent: "" }, `${sp}.attributes`);
  checkFactors(sc.authentication_factors, `${sp}.authentication_factors`);
  strArray(sc.roles, `${sp}.roles`, KNOWN_ROLES);
  assert.equal(payload.exp, Math.min(payload.iat + 300, Date.parse(sc.expires_at) / 1000), `${p}.exp: min(iat + 300, session expires_at)`);

  const oc = payload[ORGANIZATION_CLAIM];
  const op = `${p}["${ORGANIZATION_CLAIM}"]`;
  keysExactly(oc, ["organization_id", "slug"], op);
  matches(oc.organization_id, ID.organization, `${op}.organization_id`);
  str(oc.slug, `${op}.slug`);

  const custom = Object.fromEntries(
    Object.entries(payload).filter(([k]) => !["sub", "iss", "aud", "iat", "nbf", "exp", SESSION_CLAIM, ORGANIZATION_CLAIM].includes(k)),
  );
  if (session) {
    assert.equal(payload.sub, session.member_id, `${p}.sub: the session's member_id`);
    assert.equal(sc.id, session.member_session_id, `${sp}.id: the member_session_id`);
    assert.equal(sc.started_at, session.started_at, `${sp}.started_at`);
    assert.equal(sc.last_accessed_at, session.last_accessed_at, `${sp}.last_accessed_at`);
    assert.equal(sc.expires_at, session.expires_at, `${sp}.expires_at: the session's`);
    assert.deepEqual(sc.authentication_factors, session.authentication_factors, `${sp}.authentication_factors`);
    assert.deepEqual(sc.roles, session.roles, `${sp}.roles`);
    assert.equal(oc.organization_id, session.organization_id, `${op}.organization_id`);
    assert.equal(oc.slug, session.organization_slug, `${op}.slug`);
    assert.deepEqual(custom, session.custom_claims, `${p}: top-level custom claims equal member_session.custom_claims`);
  }
  return { header, payload, custom };
}

// --- §8 error envelope ------------------------------------------------------

export const ERROR_FIELDS = ["status_code", "request_id", "error_type", "error_message", "error_url"];

export function checkErrorEnvelope(body, httpStatus, path = "error body") {
  assert.ok(!(isPlainObject(body) && "error" in body), `${path}: has a top-level "error" key (Node would read it as an OAuth error)`);
  keysExactly(body, ERROR_FIELDS, path);
  int(body.status_code, `${path}.status_code`);
  assert.equal(body.status_code, httpStatus, `${path}.status_code: must equal the HTTP status`);
  matches(body.request_id, ID.request, `${path}.request_id`);
  matches(body.error_type, /^[a-z0-9_]+$/, `${path}.error_type`);
  str(body.error_message, `${path}.error_message`);
  assert.ok(body.error_message.length > 0, `${path}.error_message: must not be empty`);
  assert.equal(
    body.error_url,
    `https://stytch.com/docs/api-reference/b2b/api/errors/${httpStatus}#${body.error_type}`,
    `${path}.error_url`,
  );
}

// --- responses per endpoint -------------------------------------------------

const MEMBER_RESPONSE = ["request_id", "member_id", "member", "organization", "status_code"];
const RECOVERY_CODES_RESPONSE = ["request_id", "member_id", "member", "organization", "recovery_codes", "status_code"];
const ORGANIZATION_RESPONSE = ["request_id", "organization", "status_code"];

// Top-level keys of each success body, keyed by the SDK method that calls the
// endpoint. member_device is left out: no device lookup is configured.
export const RESPONSE_KEYS = {
  "organizations.create": ORGANIZATION_RESPONSE,
  "organizations.get": ORGANIZATION_RESPONSE,
  "organizations.update": ORGANIZATION_RESPONSE,
  "organizations.delete": ["request_id", "organization_id", "status_code"],
  "organizations.search": ["request_id", "organizations", "results_metadata", "status_code"],
  "organizations.members.create": MEMBER_RESPONSE,
  "organizations.members.get": MEMBER_RESPONSE,
  "organizations.members.update": MEMBER_RESPONSE,
  "organizations.members.delete": ["request_id", "member_id", "status_code"],
  "organizations.members.deleteTOTP": MEMBER_RESPONSE,
  "totps.create": ["request_id", "member_id", "totp_registration_id", "secret", "qr_code", "recovery_codes", "member", "organization", "status_code"],
  "totps.authenticate": ["request_id", "member_id", "member", "organization", "session_token", "session_jwt", "member_session", "status_code"],
  "totps.migrate": ["request_id", "member_id", "member", "organization", "totp_registration_id", "recovery_codes", "status_code"],
  "passwords.migrate": ["request_id", "member_id", "member_created", "member", "organization", "status_code"],
  "passwords.authenticate": [
    "request_id", "status_code", "member_id", "organization_id", "member", "organization",
    "member_authenticated", "intermediate_session_token", "intermediate_session_token_expires_at",
    "session_token", "session_jwt", "member_session", "mfa_required", "primary_required",
  ],
  "recoveryCodes.get": RECOVERY_CODES_RESPONSE,
  "recoveryCodes.rotate": RECOVERY_CODES_RESPONSE,
  "recoveryCodes.recover": [
    "request_id", "status_code", "member_id", "member", "organization", "session_token",
    "session_jwt", "member_session", "recovery_codes_remaining",
  ],
  "sessions.authenticate": ["request_id", "member_session", "session_token", "session_jwt", "member", "organization", "verdict", "status_code"],
  "sessions.get": ["request_id", "member_sessions", "status_code"],
  "sessions.revoke": ["request_id", "status_code"],
  "sessions.getJWKS": ["keys", "request_id", "status_code"],
};

function checkMemberAndOrganization(b) {
  checkMember(b.member);
  checkOrganization(b.organization);
  // Responses carry canonical ids, and the member belongs to the organization.
  if ("member_id" in b) assert.equal(b.member_id, b.member.member_id, "member_id: equals member.member_id");
  assert.equal(b.member.organization_id, b.organization.organization_id, "member.organization_id: equals organization.organization_id");
}

function checkSessionResult(b, ctx, { tokenMayBeEmpty }) {
  checkMemberSession(b.member_session);
  assert.equal(b.member_session.member_id, b.member.member_id, "member_session.member_id: the member's");
  assert.equal(b.member_session.organization_id, b.organization.organization_id, "member_session.organization_id: the organization's");
  assert.equal(b.member_session.organization_slug, b.organization.organization_slug, "member_session.organization_slug: the organization's current slug");
  str(b.session_token, "session_token");
  if (!(tokenMayBeEmpty && b.session_token === "")) matches(b.session_token, TOKEN, "session_token");
  checkJwt(b.session_jwt, { projectId: ctx.projectId, session: b.member_session });
}

function checkCodeList(codes, path) {
  strArray(codes, path);
  assert.equal(new Set(codes).size, codes.length, `${path}: codes must be distinct`);
}

const CHECKS = {
  "organizations.create": (b) => checkOrganization(b.organization),
  "organizations.get": (b) => checkOrganization(b.organization),
  "organizations.update": (b) => checkOrganization(b.organization),
  "organizations.delete": (b) => matches(b.organization_id, ID.organization, "organization_id"),
  "organizations.search": (b) => {
    assert.ok(Array.isArray(b.organizations), "organizations: expected an array");
    b.organizations.forEach((o, i) => checkOrganization(o, `organizations[${i}]`));
    keysExactly(b.results_metadata, ["total", "next_cursor"], "results_metadata");
    int(b.results_metadata.total, "results_metadata.total");
    if (b.results_metadata.next_cursor !== null) str(b.results_metadata.next_cursor, "results_metadata.next_cursor");
  },
  "organizations.members.create": checkMemberAndOrganization,
  "organizations.members.get": checkMemberAndOrganization,
  "organizations.members.update": checkMemberAndOrganization,
  "organizations.members.delete": (b) => matches(b.member_id, ID.member, "member_id"),
  "organizations.members.deleteTOTP": checkMemberAndOrganization,
  "totps.create": (b) => {
    checkMemberAndOrganization(b);
    matches(b.totp_registration_id, ID.totpRegistration, "totp_registration_id");
    assert.equal(b.member.totp_registration_id, b.totp_registration_id, "member.totp_registration_id: the new registration");
    matches(b.secret, TOTP_SECRET, "secret");
    const prefix = "data:image/png;base64,";
    assert.ok(typeof b.qr_code === "string" && b.qr_code.startsWith(prefix), `qr_code: must start with ${prefix}`);
    const b64 = b.qr_code.slice(prefix.length);
    matches(b64, BASE64, "qr_code payload");
    assert.deepEqual([...Buffer.from(b64, "base64").subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "qr_code: PNG signature");
    checkCodeList(b.recovery_codes, "recovery_codes");
    assert.equal(b.recovery_codes.length, 10, "recovery_codes: 10 per set");
    b.recovery_codes.forEach((c, i) => matches(c, RECOVERY_CODE, `recovery_codes[${i}]`));
  },
  "totps.authenticate": (b, ctx) => {
    checkMemberAndOrganization(b);
    checkSessionResult(b, ctx, { tokenMayBeEmpty: true });
    assert.ok(b.member_session.authentication_factors.some((f) => f.type === "totp"), "member_session: carries a totp factor");
  },
  "totps.migrate": (b) => {
    checkMemberAndOrganization(b);
    matches(b.totp_registration_id, ID.totpRegistration, "totp_registration_id");
    assert.equal(b.member.totp_registration_id, b.totp_registration_id, "member.totp_registration_id: the new registration");
    checkCodeList(b.recovery_codes, "recovery_codes");
  },
  "passwords.migrate": (b) => {
    checkMemberAndOrganization(b);
    bool(b.member_created, "member_created");
    matches(b.member.member_password_id, ID.memberPassword, "member.member_password_id");
  },
  "passwords.authenticate": (b, ctx) => {
    checkMemberAndOrganization(b);
    assert.equal(b.organization_id, b.organization.organization_id, "organization_id: equals organization.organization_id");
    bool(b.member_authenticated, "member_authenticated");
    assert.equal(b.primary_required, null, "primary_required: always null");
    if (b.member_authenticated) {
      assert.equal(b.intermediate_session_token, "", "intermediate_session_token: \"\" when MFA is not required");
      assert.equal(b.intermediate_session_token_expires_at, null, "intermediate_session_token_expires_at: null when MFA is not required");
      assert.equal(b.mfa_required, null, "mfa_required: null when MFA is not required");
      checkSessionResult(b, ctx, { tokenMayBeEmpty: true });
    } else {
      matches(b.intermediate_session_token, TOKEN, "intermediate_session_token");
      timestamp(b.intermediate_session_token_expires_at, "intermediate_session_token_expires_at");
      assert.equal(b.session_token, "", "session_token: \"\" when MFA is required");
      assert.equal(b.session_jwt, "", "session_jwt: \"\" when MFA is required");
      assert.equal(b.member_session, null, "member_session: null when MFA is required");
      checkMfaRequired(b.mfa_required);
      assert.equal(b.mfa_required.member_options.totp_registration_id, b.member.totp_registration_id, "mfa_required.member_options.totp_registration_id: the member's");
    }
  },
  "recoveryCodes.get": (b) => {
    checkMemberAndOrganization(b);
    checkCodeList(b.recovery_codes, "recovery_codes");
  },
  "recoveryCodes.rotate": (b) => {
    checkMemberAndOrganization(b);
    checkCodeList(b.recovery_codes, "recovery_codes");
    assert.equal(b.recovery_codes.length, 10, "recovery_codes: 10 per set");
    b.recovery_codes.forEach((c, i) => matches(c, RECOVERY_CODE, `recovery_codes[${i}]`));
  },
  "recoveryCodes.recover": (b, ctx) => {
    checkMemberAndOrganization(b);
    checkSessionResult(b, ctx, { tokenMayBeEmpty: true });
    int(b.recovery_codes_remaining, "recovery_codes_remaining");
    assert.ok(b.recovery_codes_remaining >= 0 && b.recovery_codes_remaining <= 20, "recovery_codes_remaining: out of range");
    assert.ok(
      b.member_session.authentication_factors.some((f) => f.type === "recovery_codes"),
      "member_session: always carries a recovery_codes factor on success",
    );
    if (b.organization.mfa_policy === "REQUIRED_FOR_ALL") {
      assert.equal(b.member.mfa_enrolled, true, "member.mfa_enrolled: set by a successful recover under REQUIRED_FOR_ALL");
    }
  },
  "sessions.authenticate": (b, ctx) => {
    checkMemberAndOrganization(b);
    checkSessionResult(b, ctx, { tokenMayBeEmpty: true });
    if (b.verdict !== null) {
      keysExactly(b.verdict, ["authorized", "granting_roles"], "verdict");
      assert.deepEqual(b.verdict, { authorized: true, granting_roles: ["stytch_admin"] }, "verdict");
    }
  },
  "sessions.get": (b) => {
    assert.ok(Array.isArray(b.member_sessions), "member_sessions: expected an array");
    b.member_sessions.forEach((s, i) => checkMemberSession(s, `member_sessions[${i}]`));
    const started = b.member_sessions.map((s) => Date.parse(s.started_at));
    assert.deepEqual(started, [...started].sort((x, y) => x - y), "member_sessions: oldest started_at first");
  },
  "sessions.revoke": () => {},
  "sessions.getJWKS": (b) => {
    assert.ok(Array.isArray(b.keys) && b.keys.length >= 1, "keys: expected a non-empty array");
    b.keys.forEach((k, i) => checkJwk(k, `keys[${i}]`));
    const kids = b.keys.map((k) => k.kid);
    assert.equal(new Set(kids).size, kids.length, "keys: each key has its own kid");
  },
};

// Checks a success body: the exact top-level keys of the endpoint, the
// transport fields every body carries (§2), then every nested object.
export function checkResponse(method, body, ctx) {
  const keys = RESPONSE_KEYS[method];
  assert.ok(keys, `no contract key list for ${method}`);
  assert.ok(!(isPlainObject(body) && "error" in body), `${method}: has a top-level "error" key`);
  keysExactly(body, keys, `${method} response`);
  assert.equal(body.status_code, 200, "status_code: success is always 200");
  matches(body.request_id, ID.request, "request_id");
  CHECKS[method](body, ctx);
}
