// The official Stytch Node SDK (stytch 14.2.0) against a running sparekey.
//
// Every call goes through the SDK; the HTTP exchange underneath is recorded
// so each response can be held to /work/shared/CONTRACT.md: exact top-level
// keys, every nested object field by field (shapes.mjs), HTTP status equal to
// the body's status_code, and the §8 envelope on every refusal.
//
// Run through `go test ./compat/`, which builds sparekey, creates a project,
// starts the server and sets the three variables below.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes, randomInt, randomUUID } from "node:crypto";
import { B2BClient, StytchError } from "stytch";
import {
  CROCKFORD, ID, SECRET, TOKEN,
  checkErrorEnvelope, checkJwt, checkResponse, decodeJwt, timestamp,
} from "./shapes.mjs";

const REQUIRED_ENV = ["SPAREKEY_URL", "SPAREKEY_PROJECT_ID", "SPAREKEY_SECRET"];
const missingEnv = REQUIRED_ENV.filter((k) => !process.env[k]);
if (missingEnv.length > 0) {
  throw new Error(
    `lifecycle.test.mjs needs ${missingEnv.join(", ")}. It talks to a running sparekey: ` +
      `run "go test ./compat/" (which builds and starts one), or export ${REQUIRED_ENV.join(", ")} ` +
      `for a server you started with "sparekey project create --json" and "sparekey serve".`,
  );
}
const BASE_URL = process.env.SPAREKEY_URL;
const PROJECT_ID = process.env.SPAREKEY_PROJECT_ID;
const PROJECT_SECRET = process.env.SPAREKEY_SECRET;
const ctx = { projectId: PROJECT_ID };

// §9: custom_base_url throws unless it is https, so plain http has to go in
// through `env`; the SDK prints a warning about the custom env once per client.
const client = new B2BClient({ project_id: PROJECT_ID, secret: PROJECT_SECRET, env: BASE_URL });

// Openwall crypt_blowfish test vector (cost 5) for the password "U*U*U",
// verified with golang.org/x/crypto/bcrypt. Hardcoded so the suite needs no
// npm package besides stytch.
const PASSWORD = "U*U*U";
const PASSWORD_BCRYPT = "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a";

// §6.1 at the default setting: 12 symbols shown as xxxx-xxxx-xxxx.
const ISSUED_CODE = /^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/;

// --- recording the HTTP exchanges under the SDK -----------------------------

// The SDK calls the global fetch for every API request (jose fetches the JWKS
// with node:http instead), so wrapping it shows exactly what went over the
// wire without changing what the SDK sees.
const exchanges = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init = {}) => {
  const res = await realFetch(input, init);
  const text = await res.clone().text();
  exchanges.push({
    method: init.method ?? "GET",
    url: String(input),
    authorization: new Headers(init.headers).get("authorization"),
    requestBody: typeof init.body === "string" ? init.body : null,
    status: res.status,
    contentType: res.headers.get("content-type"),
    retryAfter: res.headers.get("retry-after"),
    text,
  });
  return res;
};
after(() => {
  globalThis.fetch = realFetch;
});

function describeExchange(ex) {
  if (!ex) return "  (no HTTP exchange was recorded)";
  const url = new URL(ex.url);
  return [
    `  request:  ${ex.method} ${url.pathname}${url.search}${ex.requestBody ? ` ${ex.requestBody}` : ""}`,
    `  response: HTTP ${ex.status} ${ex.text}`,
  ].join("\n");
}

// node:test prints the stack captured at construction, so the exchange is
// spliced into both the message and the stack.
function annotate(err, ex) {
  if (err === null || typeof err !== "object" || err.annotated) return err;
  const extra = `\n${describeExchange(ex)}`;
  err.message += extra;
  if (typeof err.stack === "string") {
    const nl = err.stack.indexOf("\n");
    err.stack = nl < 0 ? err.stack + extra : err.stack.slice(0, nl) + extra + err.stack.slice(nl);
  }
  Object.defineProperty(err, "annotated", { value: true });
  return err;
}

function withExchange(ex, fn) {
  try {
    return fn();
  } catch (err) {
    throw annotate(err, ex);
  }
}

function sdkMethod(via, name) {
  const path = name.split(".");
  const fn = path.pop();
  const owner = path.reduce((o, p) => o?.[p], via);
  assert.equal(typeof owner?.[fn], "function", `the SDK has no method ${name}`);
  return owner[fn].bind(owner);
}

function onlyExchange(start, name) {
  const made = exchanges.slice(start);
  withExchange(made.at(-1), () =>
    assert.equal(made.length, 1, `${name}: the SDK should make exactly one HTTP request, it made ${made.length}`),
  );
  return made[0];
}

// Calls an SDK method that must succeed and holds its response to the contract.
async function api(name, args, { via = client } = {}) {
  const start = exchanges.length;
  let body;
  try {
    body = await sdkMethod(via, name)(args);
  } catch (err) {
    const ex = exchanges[start];
    const why = err instanceof StytchError ? `HTTP ${ex?.status} ${err.error_type}` : String(err);
    throw annotate(new assert.AssertionError({ message: `${name}: expected success, got ${why}` }), ex);
  }
  const ex = onlyExchange(start, name);
  withExchange(ex, () => {
    assert.equal(ex.status, 200, `${name}: success is always HTTP 200`);
    assert.match(ex.contentType ?? "", /^application\/json\b/i, `${name}: Content-Type`);
    assert.deepEqual(body, parseBody(ex, name), `${name}: the SDK returns the parsed body unchanged`);
    checkResponse(name, body, ctx);
  });
  return body;
}

function parseBody(ex, name) {
  let body;
  try {
    body = JSON.parse(ex.text);
  } catch {
    assert.fail(`${name}: the response body is not JSON (§2: every response is a JSON object)`);
  }
  assert.ok(body !== null && typeof body === "object" && !Array.isArray(body), `${name}: the response body is not a JSON object`);
  return body;
}

// §8: error_message never contains a code, token, password or secret.
function sensitiveValues(ex) {
  const values = [];
  if (ex.authorization?.startsWith("Basic ")) {
    const [, secret] = Buffer.from(ex.authorization.slice(6), "base64").toString("utf8").split(/:(.*)/s);
    values.push(secret);
  }
  let sent = {};
  try {
    sent = JSON.parse(ex.requestBody ?? "{}");
  } catch {
    // The SDK always sends JSON; a body it did not write is not ours to judge.
  }
  for (const k of ["recovery_code", "code", "password", "hash", "secret", "intermediate_session_token", "session_token", "session_jwt"]) {
    values.push(sent?.[k]);
  }
  return values.filter((v) => typeof v === "string" && v.length >= 4);
}

// Calls an SDK method that must be refused with exactly this status and
// error_type, and checks how the SDK surfaces the refusal.
async function refused(name, args, status, errorType, { via = client } = {}) {
  const start = exchanges.length;
  let err = null;
  try {
    await sdkMethod(via, name)(args);
  } catch (e) {
    err = e;
  }
  const ex = onlyExchange(start, name);
  return withExchange(ex, () => {
    const body = parseBody(ex, name);
    assert.deepEqual(
      { status: ex.status, error_type: body.error_type },
      { status, error_type: errorType },
      `${name}: expected ${status} ${errorType}`,
    );
    // Node throws StytchError for any status >= 400. It copies the envelope
    // fields onto itself and keeps the whole body as JSON in its message.
    assert.ok(err instanceof StytchError, `${name}: the SDK should throw StytchError, it threw ${err?.constructor?.name ?? "nothing"}`);
    assert.equal(err.status_code, status, "StytchError.status_code");
    assert.equal(err.error_type, errorType, "StytchError.error_type");
    assert.equal(err.request_id, body.request_id, "StytchError.request_id");
    assert.equal(err.error_message, body.error_message, "StytchError.error_message");
    assert.equal(err.error_url, body.error_url, "StytchError.error_url");
    assert.deepEqual(JSON.parse(err.message), body, "StytchError.message: the body as JSON");
    checkErrorEnvelope(body, ex.status);
    assert.match(ex.contentType ?? "", /^application\/json\b/i, `${name}: Content-Type of the error`);
    if (status === 429) {
      assert.match(ex.retryAfter ?? "", /^[1-9]\d*$/, "429: Retry-After must be a positive number of seconds");
    }
    for (const v of sensitiveValues(ex)) {
      assert.ok(!body.error_message.includes(v), `error_message leaks a value from the request: ${JSON.stringify(v)}`);
    }
    return { err, body, ex };
  });
}

// --- test helpers -----------------------------------------------------------

const tag = () => randomBytes(4).toString("hex");

// A well-formed recovery code from a CSPRNG; 9 live codes among 2^60 make a hit
// impossible in practice.
function randomCode() {
  const sym = () => CROCKFORD[randomInt(CROCKFORD.length)];
  const group = () => Array.from({ length: 4 }, sym).join("");
  return `${group()}-${group()}-${group()}`;
}

function base32Decode(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of s.replace(/=+$/, "").toUpperCase()) {
    const v = alphabet.indexOf(ch);
    assert.ok(v >= 0, `not base32: ${ch}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const bytes = bits.match(/.{8}/g) ?? [];
  return Buffer.from(bytes.map((b) => parseInt(b, 2)));
}

// §6.4: RFC 6238, HMAC-SHA1, 6 digits, 30-second step.
function totpNow(secret) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30)));
  const mac = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

function secondsFromNow(ts) {
  return (Date.parse(ts) - Date.now()) / 1000;
}

function assertAbout(actual, expected, tolerance, what) {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: expected about ${expected}, got ${actual}`);
}

function factorPairs(session) {
  return session.authentication_factors.map((f) => [f.type, f.delivery_method]);
}

// An organization under REQUIRED_FOR_ALL with one member who has a bcrypt
// password and a TOTP registration, hence a fresh set of 10 recovery codes.
async function enrolledMember(label) {
  const t = tag();
  const { organization } = await api("organizations.create", {
    organization_name: `${label} ${t}`,
    organization_external_id: `org-ext-${t}`,
    mfa_policy: "REQUIRED_FOR_ALL",
  });
  const orgId = organization.organization_id;
  const email = `member.${t}@example.com`;
  const memberExternalId = `member-ext-${t}`;
  const { member } = await api("organizations.members.create", {
    organization_id: orgId,
    email_address: email,
    external_id: memberExternalId,
  });
  await api("passwords.migrate", { organization_id: orgId, email_address: email, hash: PASSWORD_BCRYPT, hash_type: "bcrypt" });
  const totp = await api("totps.create", { organization_id: orgId, member_id: member.member_id });
  return {
    organization,
    orgId,
    memberId: member.member_id,
    memberExternalId,
    email,
    codes: totp.recovery_codes,
    registrationId: totp.totp_registration_id,
    totpSecret: totp.secret,
  };
}

// §6.5: under REQUIRED_FOR_ALL a correct password yields an intermediate
// session token (IST), never a session.
async function freshIST(fx) {
  const res = await api("passwords.authenticate", { organization_id: fx.orgId, email_address: fx.email, password: PASSWORD });
  assert.equal(res.member_authenticated, false, "passwords.authenticate: MFA is required, so no session");
  return res.intermediate_session_token;
}

async function recoverArgs(fx, recovery_code, extra = {}) {
  return {
    organization_id: fx.orgId,
    member_id: fx.memberId,
    recovery_code,
    intermediate_session_token: await freshIST(fx),
    ...extra,
  };
}

// The life cycle is one story: a step that fails leaves the later ones
// without their premise, so they are skipped rather than failed again.
function storySteps() {
  let broken = null;
  return (name, fn) =>
    it(name, async (t) => {
      if (broken) {
        t.skip(`an earlier step failed: ${broken}`);
        return;
      }
      try {
        await fn(t);
      } catch (err) {
        broken = name;
        throw annotate(err, exchanges.at(-1));
      }
    });
}

// --- the recovery-code life cycle -------------------------------------------

describe("recovery-code life cycle through the Node SDK", () => {
  const step = storySteps();
  const s = {};

  step("the harness hands over project credentials in the §4 formats", () => {
    assert.match(PROJECT_ID, ID.project);
    assert.match(PROJECT_SECRET, SECRET);
  });

  step("organizations.create with mfa_policy REQUIRED_FOR_ALL fills every other field with its §5.1 default", async () => {
    s.tag = tag();
    const { organization: o } = await api("organizations.create", {
      organization_name: `Lifecycle Org ${s.tag}`,
      mfa_policy: "REQUIRED_FOR_ALL",
    });
    assert.equal(o.organization_name, `Lifecycle Org ${s.tag}`);
    assert.equal(o.mfa_policy, "REQUIRED_FOR_ALL");
    // Derived slug: lowercased, each run of other characters turned into "-".
    assert.equal(o.organization_slug, `lifecycle-org-${s.tag}`);
    const defaults = {
      organization_logo_url: "",
      organization_external_id: "",
      trusted_metadata: {},
      mfa_methods: "ALL_ALLOWED",
      allowed_mfa_methods: [],
      auth_methods: "ALL_ALLOWED",
      allowed_auth_methods: [],
      sso_jit_provisioning: "ALL_ALLOWED",
      email_invites: "ALL_ALLOWED",
      first_party_connected_apps_allowed_type: "ALL_ALLOWED",
      third_party_connected_apps_allowed_type: "ALL_ALLOWED",
      email_jit_provisioning: "NOT_ALLOWED",
      oauth_tenant_jit_provisioning: "NOT_ALLOWED",
      sso_jit_provisioning_allowed_connections: [],
      email_allowed_domains: [],
      claimed_email_domains: [],
      allowed_first_party_connected_apps: [],
      allowed_third_party_connected_apps: [],
      rbac_email_implicit_role_assignments: [],
      allowed_oauth_tenants: {},
      sso_active_connections: [],
      custom_roles: [],
      sso_default_connection_id: null,
      scim_active_connection: null,
    };
    assert.deepEqual(Object.fromEntries(Object.keys(defaults).map((k) => [k, o[k]])), defaults);
    assertAbout(secondsFromNow(o.created_at), 0, 60, "organization.created_at is now");
    s.org = o;
    s.orgId = o.organization_id;
  });

  step("organizations.members.create stores the address lowercase and starts from the §5.2 defaults", async () => {
    s.email = `Lifecycle.${s.tag}@Example.COM`;
    const res = await api("organizations.members.create", {
      organization_id: s.orgId,
      email_address: s.email,
      name: "Lifecycle Member",
      external_id: `member-ext-${s.tag}`,
    });
    const m = res.member;
    assert.equal(m.organization_id, s.orgId);
    assert.equal(m.email_address, s.email.toLowerCase());
    assert.equal(m.name, "Lifecycle Member");
    assert.equal(m.external_id, `member-ext-${s.tag}`);
    assert.deepEqual(
      {
        status: m.status, email_address_verified: m.email_address_verified, mfa_phone_number_verified: m.mfa_phone_number_verified,
        retired_email_addresses: m.retired_email_addresses, is_breakglass: m.is_breakglass, is_admin: m.is_admin, roles: m.roles,
        mfa_enrolled: m.mfa_enrolled, mfa_phone_number: m.mfa_phone_number, default_mfa_method: m.default_mfa_method,
        totp_registration_id: m.totp_registration_id, member_password_id: m.member_password_id, is_locked: m.is_locked,
        lock_created_at: m.lock_created_at, lock_expires_at: m.lock_expires_at,
        trusted_metadata: m.trusted_metadata, untrusted_metadata: m.untrusted_metadata,
      },
      {
        status: "active", email_address_verified: false, mfa_phone_number_verified: false,
        retired_email_addresses: [], is_breakglass: false, is_admin: false,
        roles: [{ role_id: "stytch_member", sources: [{ type: "direct_assignment", details: {} }] }],
        mfa_enrolled: false, mfa_phone_number: "", default_mfa_method: "",
        totp_registration_id: "", member_password_id: "", is_locked: false,
        lock_created_at: null, lock_expires_at: null,
        trusted_metadata: {}, untrusted_metadata: {},
      },
    );
    s.memberId = m.member_id;
    s.email = m.email_address;
  });

  step("passwords.migrate sets a bcrypt password on the existing member", async () => {
    const res = await api("passwords.migrate", {
      organization_id: s.orgId,
      email_address: s.email,
      hash: PASSWORD_BCRYPT,
      hash_type: "bcrypt",
    });
    assert.equal(res.member_created, false, "an existing address only gets its password set");
    assert.equal(res.member_id, s.memberId);
  });

  step("totps.create issues 10 distinct lowercase Crockford codes", async () => {
    const res = await api("totps.create", { organization_id: s.orgId, member_id: s.memberId });
    assert.equal(res.member_id, s.memberId);
    assert.equal(res.recovery_codes.length, 10);
    for (const code of res.recovery_codes) assert.match(code, ISSUED_CODE);
    assert.equal(new Set(res.recovery_codes).size, 10, "no duplicates within a set");
    assert.equal(res.member.totp_registration_id, res.totp_registration_id);
    s.codes = res.recovery_codes;
    s.registrationId = res.totp_registration_id;
    s.totpSecret = res.secret;
  });

  step("passwords.authenticate stops at MFA with an IST naming the TOTP registration", async () => {
    const res = await api("passwords.authenticate", { organization_id: s.orgId, email_address: s.email, password: PASSWORD });
    assert.equal(res.member_authenticated, false);
    assert.match(res.intermediate_session_token, TOKEN);
    assert.notEqual(res.intermediate_session_token, "");
    assert.deepEqual(res.mfa_required, {
      member_options: { mfa_phone_number: "", totp_registration_id: s.registrationId },
      secondary_auth_initiated: null,
    });
    // An IST is valid for 10 minutes.
    assertAbout(secondsFromNow(res.intermediate_session_token_expires_at), 600, 5, "intermediate_session_token_expires_at");
    s.ist = res.intermediate_session_token;
  });

  step("recoveryCodes.recover with the IST and the first code opens a session: password, then recovery_codes", async () => {
    const res = await api("recoveryCodes.recover", {
      organization_id: s.orgId,
      member_id: s.memberId,
      recovery_code: s.codes[0],
      intermediate_session_token: s.ist,
    });
    assert.equal(res.member_id, s.memberId);
    assert.equal(res.recovery_codes_remaining, 9);
    // An IST becomes a new session, so a new token comes back.
    assert.match(res.session_token, TOKEN);
    assert.deepEqual(factorPairs(res.member_session), [["password", "knowledge"], ["recovery_codes", "recovery_code"]]);
    const codeId = res.member_session.authentication_factors[1].recovery_code_factor.totp_recovery_code_id;
    assert.match(codeId, ID.totpRecoveryCode);
    assert.equal(res.member.mfa_enrolled, true, "REQUIRED_FOR_ALL: a successful recover enrolls the member");
    assert.equal(res.member.is_locked, false);
    assert.deepEqual(res.member_session.roles, ["stytch_member"]);
    assert.deepEqual(res.member_session.custom_claims, {});
    // Created from an IST without session_duration_minutes: 60 minutes.
    assertAbout(secondsFromNow(res.member_session.expires_at), 3600, 5, "member_session.expires_at");
    s.session = res.member_session;
    s.sessionToken = res.session_token;
    s.jwt = res.session_jwt;
    s.firstCodeId = codeId;
  });

  step("sessions.authenticateJwtLocal accepts the JWT using only the JWKS", async () => {
    const local = await client.sessions.authenticateJwtLocal({ session_jwt: s.jwt });
    // The SDK rebuilds a member session from the claims; it rewrites
    // expires_at through Date#toISOString, hence the milliseconds.
    assert.deepEqual(local, {
      member_session_id: s.session.member_session_id,
      member_id: s.memberId,
      organization_id: s.orgId,
      authentication_factors: s.session.authentication_factors,
      started_at: s.session.started_at,
      last_accessed_at: s.session.last_accessed_at,
      expires_at: new Date(s.session.expires_at).toISOString(),
      custom_claims: {},
      roles: ["stytch_member"],
      organization_slug: s.org.organization_slug,
    });
  });

  step("sessions.authenticateJwt verifies locally and does not fall back to the API", async () => {
    // authenticateJwt silently retries remotely when local verification
    // fails, so only the absence of an API call proves the JWT is locally valid.
    const start = exchanges.length;
    const res = await client.sessions.authenticateJwt({ session_jwt: s.jwt });
    assert.equal(exchanges.length, start, "local verification failed and the SDK fell back to POST /v1/b2b/sessions/authenticate");
    assert.equal(res.session_jwt, s.jwt);
    assert.equal(res.member_session.member_session_id, s.session.member_session_id);
  });

  step("sessions.authenticate with the session_token echoes the token and mints a fresh JWT", async () => {
    const res = await api("sessions.authenticate", { session_token: s.sessionToken });
    assert.equal(res.session_token, s.sessionToken);
    assert.equal(res.member_session.member_session_id, s.session.member_session_id);
    assert.deepEqual(res.member_session.authentication_factors, s.session.authentication_factors);
    assert.equal(res.verdict, null, "no authorization_check, no verdict");
    await client.sessions.authenticateJwtLocal({ session_jwt: res.session_jwt });
  });

  step("sessions.authenticate with the session_jwt returns an empty session_token", async () => {
    const res = await api("sessions.authenticate", { session_jwt: s.jwt });
    // §3 rule 7: the server keeps only digests of session tokens.
    assert.equal(res.session_token, "");
    assert.equal(res.member_session.member_session_id, s.session.member_session_id);
  });

  step("sessions.authenticateJwt with max_token_age_seconds 0 goes to the API", async () => {
    const start = exchanges.length;
    const res = await client.sessions.authenticateJwt({ session_jwt: s.jwt, max_token_age_seconds: 0 });
    const ex = onlyExchange(start, "sessions.authenticateJwt");
    withExchange(ex, () => {
      assert.equal(new URL(ex.url).pathname, "/v1/b2b/sessions/authenticate");
      assert.equal(ex.status, 200);
      checkResponse("sessions.authenticate", res, ctx);
      assert.equal(res.session_token, "");
    });
  });

  step("sessions.get lists the one live session", async () => {
    const res = await api("sessions.get", { organization_id: s.orgId, member_id: s.memberId });
    assert.deepEqual(res.member_sessions.map((x) => x.member_session_id), [s.session.member_session_id]);
  });

  step("sessions.getJWKS lists the key that signed the JWT", async () => {
    const res = await api("sessions.getJWKS", { project_id: PROJECT_ID });
    const { header } = decodeJwt(s.jwt);
    assert.ok(res.keys.some((k) => k.kid === header.kid), `kid ${header.kid} is not in the JWKS`);
  });

  step("recoveryCodes.get returns exactly the 9 unused codes in issue order", async () => {
    const res = await api("recoveryCodes.get", { organization_id: s.orgId, member_id: s.memberId });
    assert.equal(res.member_id, s.memberId);
    assert.deepEqual(res.recovery_codes, s.codes.slice(1));
  });

  step("the used code is refused with 401 unable_to_authenticate_recovery_code", async () => {
    s.ist2 = await freshIST(s);
    await refused(
      "recoveryCodes.recover",
      { organization_id: s.orgId, member_id: s.memberId, recovery_code: s.codes[0], intermediate_session_token: s.ist2 },
      401,
      "unable_to_authenticate_recovery_code",
    );
  });

  step("a refused code leaves the IST usable; the next code succeeds and resets the failure counter", async () => {
    const res = await api("recoveryCodes.recover", {
      organization_id: s.orgId,
      member_id: s.memberId,
      recovery_code: s.codes[1],
      intermediate_session_token: s.ist2,
    });
    assert.equal(res.recovery_codes_remaining, 8);
    const codeId = res.member_session.authentication_factors.find((f) => f.type === "recovery_codes").recovery_code_factor.totp_recovery_code_id;
    assert.notEqual(codeId, s.firstCodeId, "one totp_recovery_code_id per recovery code");
    assert.notEqual(res.member_session.member_session_id, s.session.member_session_id, "an IST makes a new session");
  });

  step("an IST is consumed by success: 404 intermediate_session_not_found", async () => {
    await refused(
      "recoveryCodes.recover",
      { organization_id: s.orgId, member_id: s.memberId, recovery_code: s.codes[2], intermediate_session_token: s.ist2 },
      404,
      "intermediate_session_not_found",
    );
  });

  step("recoveryCodes.rotate replaces the whole set with 10 new codes", async () => {
    const res = await api("recoveryCodes.rotate", { organization_id: s.orgId, member_id: s.memberId });
    assert.equal(res.member_id, s.memberId);
    assert.equal(res.recovery_codes.length, 10);
    for (const code of res.recovery_codes) assert.match(code, ISSUED_CODE);
    assert.equal(new Set(res.recovery_codes).size, 10);
    assert.deepEqual(res.recovery_codes.filter((c) => s.codes.includes(c)), [], "no old code survives a rotation");
    const got = await api("recoveryCodes.get", { organization_id: s.orgId, member_id: s.memberId });
    assert.deepEqual(got.recovery_codes, res.recovery_codes);
    s.newCodes = res.recovery_codes;
  });

  step("every old code, used or unused, is refused after the rotation (401)", async () => {
    // Ten consecutive failures would lock the member (§6.0.3), so a good new
    // code after each half resets the counter.
    let used = 0;
    for (const half of [s.codes.slice(0, 5), s.codes.slice(5)]) {
      for (const old of half) {
        await refused("recoveryCodes.recover", await recoverArgs(s, old), 401, "unable_to_authenticate_recovery_code");
      }
      const res = await api("recoveryCodes.recover", await recoverArgs(s, s.newCodes[used++]));
      assert.equal(res.recovery_codes_remaining, 10 - used);
    }
    s.newCodesUsed = used;
  });

  step("nine wrong codes are 401; the tenth locks the member with 429 user_lock_limit_reached", async () => {
    for (let i = 1; i <= 9; i++) {
      await refused("recoveryCodes.recover", await recoverArgs(s, randomCode()), 401, "unable_to_authenticate_recovery_code");
    }
    const { ex } = await refused("recoveryCodes.recover", await recoverArgs(s, randomCode()), 429, "user_lock_limit_reached");
    withExchange(ex, () => {
      const retryAfter = Number(ex.retryAfter);
      assert.ok(retryAfter > 3590 && retryAfter <= 3600, `Retry-After: the seconds until lock_expires_at (60 minutes), got ${ex.retryAfter}`);
    });
  });

  step("while locked even a valid code is refused with 429, and the code is not spent", async () => {
    // Password authenticate is not blocked by the lock, so a fresh IST is available.
    const valid = s.newCodes[s.newCodesUsed];
    await refused("recoveryCodes.recover", await recoverArgs(s, valid), 429, "user_lock_limit_reached");
    await refused(
      "totps.authenticate",
      { organization_id: s.orgId, member_id: s.memberId, code: totpNow(s.totpSecret), intermediate_session_token: await freshIST(s) },
      429,
      "user_lock_limit_reached",
    );
    const got = await api("recoveryCodes.get", { organization_id: s.orgId, member_id: s.memberId });
    assert.deepEqual(got.recovery_codes, s.newCodes.slice(s.newCodesUsed), "a locked recover does not look at the code");
  });

  step("organizations.members.get shows is_locked with both lock timestamps", async () => {
    const res = await api("organizations.members.get", { organization_id: s.orgId, member_id: s.memberId });
    const m = res.member;
    assert.equal(m.is_locked, true);
    timestamp(m.lock_created_at, "member.lock_created_at");
    timestamp(m.lock_expires_at, "member.lock_expires_at");
    assertAbout(secondsFromNow(m.lock_created_at), 0, 60, "member.lock_created_at is now");
    assert.equal((Date.parse(m.lock_expires_at) - Date.parse(m.lock_created_at)) / 1000, 3600, "the lock lasts 60 minutes by default");
  });
});

// --- recover: input forms and refusals --------------------------------------

describe("recoveryCodes.recover input rules (§6.1, §6.0.1)", () => {
  let fx;
  before(async () => {
    fx = await enrolledMember("Input Org");
  });

  it("accepts an uppercase code with spaces instead of hyphens", async () => {
    const res = await api("recoveryCodes.recover", await recoverArgs(fx, fx.codes[0].toUpperCase().replaceAll("-", " ")));
    assert.equal(res.recovery_codes_remaining, 9);
  });

  it("folds Unicode dashes, trailing punctuation and the look-alikes O, I, L", async () => {
    const code = fx.codes[1];
    const mangled = `${code.toUpperCase().replace(/0/g, "O").replace(/1/g, "I").replaceAll("-", "\u2013")}.`;
    const res = await api("recoveryCodes.recover", await recoverArgs(fx, mangled));
    assert.equal(res.recovery_codes_remaining, 8);
    const got = await api("recoveryCodes.get", { organization_id: fx.orgId, member_id: fx.memberId });
    assert.deepEqual(got.recovery_codes, fx.codes.slice(2));
  });

  it("refuses a TOTP-shaped 6-digit string with 400 totp_code_used_as_recovery_code", async () => {
    await refused("recoveryCodes.recover", await recoverArgs(fx, "123456"), 400, "totp_code_used_as_recovery_code");
  });

  it("refuses garbage with 400 invalid_recovery_code", async () => {
    for (const garbage of ["garbage", "abcd-efgh-jk*m", "abcd-efgh-jkmnp", "abcd-efgh-jkm\u00e9"]) {
      await refused("recoveryCodes.recover", await recoverArgs(fx, garbage), 400, "invalid_recovery_code");
    }
  });

  it("refuses a recover without any session argument with 400 invalid_session_missing_primary_factor", async () => {
    await refused(
      "recoveryCodes.recover",
      { organization_id: fx.orgId, member_id: fx.memberId, recovery_code: fx.codes[2] },
      400,
      "invalid_session_missing_primary_factor",
    );
  });

  it("refuses two session arguments with 400 too_many_session_arguments", async () => {
    const a = await recoverArgs(fx, fx.codes[2]);
    const { session_token } = await api("recoveryCodes.recover", await recoverArgs(fx, fx.codes[3]));
    await refused("recoveryCodes.recover", { ...a, session_token }, 400, "too_many_session_arguments");
  });

  it("refuses an unknown member with 404 member_not_found and an unknown organization with 404 organization_not_found", async () => {
    const args = await recoverArgs(fx, fx.codes[4]);
    await refused("recoveryCodes.recover", { ...args, member_id: `member-test-${randomUUID()}` }, 404, "member_not_found");
    await refused("recoveryCodes.recover", { ...args, organization_id: `organization-test-${randomUUID()}` }, 404, "organization_not_found");
    await refused("recoveryCodes.get", { organization_id: fx.orgId, member_id: `member-test-${randomUUID()}` }, 404, "member_not_found");
  });

  it("refuses an IST of another member of the organization with 400 member_session_member_id_mismatch", async () => {
    const otherEmail = `other.${tag()}@example.com`;
    await api("passwords.migrate", { organization_id: fx.orgId, email_address: otherEmail, hash: PASSWORD_BCRYPT, hash_type: "bcrypt" });
    const res = await api("passwords.authenticate", { organization_id: fx.orgId, email_address: otherEmail, password: PASSWORD });
    assert.equal(res.member_authenticated, false);
    await refused(
      "recoveryCodes.recover",
      { organization_id: fx.orgId, member_id: fx.memberId, recovery_code: fx.codes[4], intermediate_session_token: res.intermediate_session_token },
      400,
      "member_session_member_id_mismatch",
    );
  });

  it("refuses a wrong project secret with 401 unauthorized_credentials", async () => {
    const wrong = new B2BClient({ project_id: PROJECT_ID, secret: `secret-test-${randomBytes(24).toString("base64url")}`, env: BASE_URL });
    await refused("recoveryCodes.get", { organization_id: fx.orgId, member_id: fx.memberId }, 401, "unauthorized_credentials", { via: wrong });
    await refused(
      "recoveryCodes.recover",
      { organization_id: fx.orgId, member_id: fx.memberId, recovery_code: fx.codes[4], intermediate_session_token: await freshIST(fx) },
      401,
      "unauthorized_credentials",
      { via: wrong },
    );
  });

  it("refuses a wrong password with 401 unauthorized_credentials", async () => {
    await refused(
      "passwords.authenticate",
      { organization_id: fx.orgId, email_address: fx.email, password: `${PASSWORD}-wrong` },
      401,
      "unauthorized_credentials",
    );
  });

  it("takes the organization slug and the member external_id and answers with canonical ids", async () => {
    const res = await api(
      "recoveryCodes.recover",
      await recoverArgs(fx, fx.codes[4], { organization_id: fx.organization.organization_slug, member_id: fx.memberExternalId }),
    );
    assert.equal(res.member_id, fx.memberId);
    assert.equal(res.member.organization_id, fx.orgId);
    assert.equal(res.organization.organization_id, fx.orgId);
    assert.equal(res.member_session.organization_id, fx.orgId);
    assert.equal(res.member_session.member_id, fx.memberId);
    const got = await api("recoveryCodes.get", { organization_id: fx.organization.organization_external_id, member_id: fx.memberExternalId });
    assert.equal(got.member_id, fx.memberId);
    assert.equal(got.organization.organization_id, fx.orgId);
  });

  it("stores session_custom_claims on the new session and in the JWT", async () => {
    const res = await api("recoveryCodes.recover", await recoverArgs(fx, fx.codes[5], { session_custom_claims: { team: "blue", tier: { level: 2 } } }));
    assert.deepEqual(res.member_session.custom_claims, { team: "blue", tier: { level: 2 } });
    const { custom } = checkJwt(res.session_jwt, { projectId: PROJECT_ID, session: res.member_session });
    assert.deepEqual(custom, { team: "blue", tier: { level: 2 } });
    const local = await client.sessions.authenticateJwtLocal({ session_jwt: res.session_jwt });
    assert.deepEqual(local.custom_claims, { team: "blue", tier: { level: 2 } });
  });
});

describe("syntax refusals are not failed attempts (§6.0.3)", () => {
  it("ten 400s of code syntax, then a wrong code is still 401, not 429", async () => {
    const fx = await enrolledMember("Counter Org");
    for (let i = 0; i < 5; i++) {
      await refused("recoveryCodes.recover", await recoverArgs(fx, "000000"), 400, "totp_code_used_as_recovery_code");
      await refused("recoveryCodes.recover", await recoverArgs(fx, "not a code"), 400, "invalid_recovery_code");
    }
    await refused("recoveryCodes.recover", await recoverArgs(fx, randomCode()), 401, "unable_to_authenticate_recovery_code");
    const { member } = await api("organizations.members.get", { organization_id: fx.orgId, member_id: fx.memberId });
    assert.equal(member.is_locked, false);
  });
});

// --- TOTP, sessions and the directory endpoints around the codes ------------

describe("TOTP endpoints", () => {
  it("totps.authenticate with the IST adds a totp factor and makes TOTP the default method", async () => {
    const fx = await enrolledMember("Totp Org");
    const res = await api("totps.authenticate", {
      organization_id: fx.orgId,
      member_id: fx.memberId,
      code: totpNow(fx.totpSecret),
      intermediate_session_token: await freshIST(fx),
    });
    assert.deepEqual(factorPairs(res.member_session), [["password", "knowledge"], ["totp", "authenticator_app"]]);
    assert.equal(res.member_session.authentication_factors[1].authenticator_app_factor.totp_id, fx.registrationId);
    assert.match(res.session_token, TOKEN);
    assert.equal(res.member.mfa_enrolled, true);
    assert.equal(res.member.default_mfa_method, "totp", "default_mfa_method becomes totp when it was empty");
  });

  it("totps.authenticate refuses a recovery code with 400 recovery_code_used_as_totp_code", async () => {
    const fx = await enrolledMember("Totp Org");
    await refused(
      "totps.authenticate",
      { organization_id: fx.orgId, member_id: fx.memberId, code: fx.codes[0], intermediate_session_token: await freshIST(fx) },
      400,
      "recovery_code_used_as_totp_code",
    );
  });

  it("totps.create refuses a second registration with 400 active_totp_exists", async () => {
    const fx = await enrolledMember("Totp Org");
    await refused("totps.create", { organization_id: fx.orgId, member_id: fx.memberId }, 400, "active_totp_exists");
  });

  it("totps.migrate imports a secret and codes; the imported codes recover", async () => {
    const t = tag();
    const { organization } = await api("organizations.create", { organization_name: `Migrate Org ${t}`, mfa_policy: "REQUIRED_FOR_ALL" });
    const email = `migrated.${t}@example.com`;
    const migrated = await api("passwords.migrate", {
      organization_id: organization.organization_id,
      email_address: email,
      hash: PASSWORD_BCRYPT,
      hash_type: "bcrypt",
    });
    assert.equal(migrated.member_created, true, "a new address creates the member");
    const fx = { orgId: organization.organization_id, memberId: migrated.member_id, email };
    const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    const res = await api("totps.migrate", {
      organization_id: fx.orgId,
      member_id: fx.memberId,
      secret,
      recovery_codes: [" ABCD-EFGH-JKMN ", "pqrs-tvwx-yz23", "uuuu-2345-6789"],
    });
    // Imported codes are shown as imported, trimmed and lowercased.
    const shown = ["abcd-efgh-jkmn", "pqrs-tvwx-yz23", "uuuu-2345-6789"];
    assert.deepEqual(res.recovery_codes, shown);
    assert.deepEqual((await api("recoveryCodes.get", { organization_id: fx.orgId, member_id: fx.memberId })).recovery_codes, shown);
    // "u" passes the syntax check so that imported codes holding it still match.
    const rec = await api("recoveryCodes.recover", await recoverArgs(fx, "UUUU 2345 6789"));
    assert.equal(rec.recovery_codes_remaining, 2);
    const auth = await api("totps.authenticate", {
      organization_id: fx.orgId,
      member_id: fx.memberId,
      code: totpNow(secret),
      session_token: rec.session_token,
    });
    // A session_token keeps its session and comes back unchanged.
    assert.equal(auth.session_token, rec.session_token);
    assert.equal(auth.member_session.member_session_id, rec.member_session.member_session_id);
    assert.deepEqual(factorPairs(auth.member_session), [["password", "knowledge"], ["recovery_codes", "recovery_code"], ["totp", "authenticator_app"]]);
  });
});

describe("sessions.revoke", () => {
  it("ends the session for the API while issued JWTs still verify locally until exp", async () => {
    const fx = await enrolledMember("Revoke Org");
    const rec = await api("recoveryCodes.recover", await recoverArgs(fx, fx.codes[0]));
    await api("sessions.revoke", { member_session_id: rec.member_session.member_session_id });
    await refused("sessions.authenticate", { session_token: rec.session_token }, 404, "session_not_found");
    await refused("sessions.authenticate", { session_jwt: rec.session_jwt }, 404, "session_not_found");
    const local = await client.sessions.authenticateJwtLocal({ session_jwt: rec.session_jwt });
    assert.equal(local.member_session_id, rec.member_session.member_session_id);
    const listed = await api("sessions.get", { organization_id: fx.orgId, member_id: fx.memberId });
    assert.deepEqual(listed.member_sessions, []);
  });
});

describe("organizations", () => {
  it("get by id, slug and external id; update; search; delete", async () => {
    const fx = await enrolledMember("Directory Org");
    const o = fx.organization;
    for (const alias of [o.organization_id, o.organization_slug, o.organization_external_id]) {
      const res = await api("organizations.get", { organization_id: alias });
      assert.equal(res.organization.organization_id, o.organization_id, `organizations.get by ${alias}`);
    }

    const renamed = await api("organizations.update", {
      organization_id: o.organization_id,
      organization_name: `Renamed ${o.organization_name}`,
      trusted_metadata: { tier: "gold" },
    });
    assert.equal(renamed.organization.organization_name, `Renamed ${o.organization_name}`);
    assert.deepEqual(renamed.organization.trusted_metadata, { tier: "gold" });
    const replaced = await api("organizations.update", { organization_id: o.organization_id, trusted_metadata: { region: "eu" } });
    assert.deepEqual(replaced.organization.trusted_metadata, { region: "eu" }, "trusted_metadata is replaced as a whole");
    assert.equal(replaced.organization.organization_name, `Renamed ${o.organization_name}`, "an absent field is unchanged");
    assert.equal(replaced.organization.mfa_policy, "REQUIRED_FOR_ALL");

    const found = await api("organizations.search", {
      query: { operator: "AND", operands: [{ filter_name: "organization_ids", filter_value: [o.organization_id] }] },
    });
    assert.deepEqual(found.organizations.map((x) => x.organization_id), [o.organization_id]);
    assert.deepEqual(found.results_metadata, { total: 1, next_cursor: null });

    const rec = await api("recoveryCodes.recover", await recoverArgs(fx, fx.codes[0]));
    const del = await api("organizations.delete", { organization_id: o.organization_slug });
    assert.equal(del.organization_id, o.organization_id, "responses carry canonical ids");
    await refused("organizations.get", { organization_id: o.organization_id }, 404, "organization_not_found");
    await refused("recoveryCodes.get", { organization_id: o.organization_id, member_id: fx.memberId }, 404, "organization_not_found");
    await refused("sessions.authenticate", { session_token: rec.session_token }, 404, "session_not_found");
  });
});

describe("organizations.members", () => {
  it("get by email, update, deleteTOTP removes the codes, delete", async () => {
    const fx = await enrolledMember("Members Org");
    const byEmail = await api("organizations.members.get", { organization_id: fx.orgId, email_address: fx.email.toUpperCase() });
    assert.equal(byEmail.member_id, fx.memberId, "email_address lookup is case-insensitive");

    const updated = await api("organizations.members.update", { organization_id: fx.orgId, member_id: fx.memberId, name: "Renamed Member" });
    assert.equal(updated.member.name, "Renamed Member");

    const noTotp = await api("organizations.members.deleteTOTP", { organization_id: fx.orgId, member_id: fx.memberId });
    assert.equal(noTotp.member.totp_registration_id, "");
    await refused("recoveryCodes.get", { organization_id: fx.orgId, member_id: fx.memberId }, 400, "no_active_recovery_code_backed_factor");
    await refused("recoveryCodes.rotate", { organization_id: fx.orgId, member_id: fx.memberId }, 400, "no_active_recovery_code_backed_factor");
    await refused("organizations.members.deleteTOTP", { organization_id: fx.orgId, member_id: fx.memberId }, 404, "totp_not_found");

    const deleted = await api("organizations.members.delete", { organization_id: fx.orgId, member_id: fx.memberId });
    assert.equal(deleted.member_id, fx.memberId);
    await refused("organizations.members.get", { organization_id: fx.orgId, member_id: fx.memberId }, 404, "member_not_found");
    await refused("passwords.authenticate", { organization_id: fx.orgId, email_address: fx.email, password: PASSWORD }, 401, "unauthorized_credentials");
  });
});
