// Package client is the Go client of sparekey, the self-hostable server of the Stytch B2B
// recovery-codes API and the organization, member, TOTP, password and session endpoints around it.
// It imports only the standard library.
//
// A Client groups the endpoints by resource, one method per endpoint, with the API's parameters:
//
//	c, err := client.New("http://127.0.0.1:8080", projectID, secret)
//	codes, err := c.RecoveryCodes.Get(ctx, client.GetParams{OrganizationID: orgID, MemberID: memberID})
//
// # Optional parameters
//
// A request field is sent only when it is set, so an explicit zero can still be sent where the API
// gives it a meaning (false, 0, "" or an empty list on an update). Optional scalars are pointers
// (use [Int], [String] and [Bool]); optional lists and objects are sent when non-nil, so
// []string{} sends [] and nil sends nothing. Required fields are plain values and always sent.
// Session and token arguments the API treats as absent when empty (intermediate_session_token,
// session_token, session_jwt, telemetry_id, cursor) are plain strings left out when "".
//
// # Errors
//
// A method returns one of three kinds of error, told apart with errors.As:
//   - *[Error]: the server answered with a Stytch error envelope (status_code, error_type, ...).
//   - *[TransportError]: no complete answer arrived (connection refused, TLS, timeout, the context
//     ended). It wraps the cause, so errors.Is(err, context.DeadlineExceeded) and
//     errors.Is(err, context.Canceled) work.
//   - *[ResponseError]: an answer arrived but is not a JSON object of the expected shape (an HTML
//     page from a proxy, a body cut short).
//
// Local session-JWT checks ([SessionsClient.AuthenticateJWTLocal]) report a refused JWT with
// errors that match [ErrJWTInvalid].
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds each call unless [WithTimeout] says otherwise.
const DefaultTimeout = 30 * time.Second

// DefaultUserAgent is sent unless [WithUserAgent] says otherwise.
const DefaultUserAgent = "sparekey-go-client"

// maxResponseBytes caps what one response may hold. The largest legitimate answer, an
// organization search of 1000 organizations, is a few MiB.
const maxResponseBytes = 32 << 20

// Client calls one sparekey project. It is safe for concurrent use.
type Client struct {
	RecoveryCodes *RecoveryCodesClient
	Organizations *OrganizationsClient
	Members       *MembersClient
	TOTPs         *TOTPsClient
	Passwords     *PasswordsClient
	Sessions      *SessionsClient
	// Events reads sparekey's audit trail (not part of the Stytch API).
	Events *EventsClient
	// Webhooks manages the endpoints that receive the audit trail (not part of the Stytch API).
	Webhooks *WebhooksClient

	baseURL   string // scheme://host[:port], no trailing slash
	projectID string
	auth      string // the Basic Authorization header value
	http      *http.Client
	timeout   time.Duration
	userAgent string
	clock     func() time.Time

	jwtLeeway   time.Duration
	jwksMaxAge  time.Duration
	jwksBackoff time.Duration
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sets the http.Client requests go through (its transport, TLS configuration and
// proxy settings). Its own Timeout, if any, applies on top of [WithTimeout].
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("client: WithHTTPClient(nil)")
		}
		c.http = hc
		return nil
	}
}

// WithTimeout bounds each call, from sending the request to reading the whole answer. Zero means
// no bound beyond the caller's context. The default is [DefaultTimeout].
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 {
			return fmt.Errorf("client: negative timeout %s", d)
		}
		c.timeout = d
		return nil
	}
}

// WithUserAgent sets the User-Agent header. The server logs it and never changes behaviour on it.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// WithJWTLeeway tolerates clock skew between this host and the server when
// [SessionsClient.AuthenticateJWTLocal] checks exp and nbf. The default is 0.
func WithJWTLeeway(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 || d > 5*time.Minute {
			return fmt.Errorf("client: JWT leeway %s is outside 0..5m", d)
		}
		c.jwtLeeway = d
		return nil
	}
}

// WithJWKSMaxAge sets how long fetched signing keys are trusted before they are fetched again.
// The default is 10 minutes; a key retired on the server stays usable locally at most this long.
func WithJWKSMaxAge(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("client: JWKS max age %s must be positive", d)
		}
		c.jwksMaxAge = d
		return nil
	}
}

// WithClock replaces the wall clock used for local JWT checks and the JWKS cache; tests use it
// to move time without sleeping.
func WithClock(now func() time.Time) Option {
	return func(c *Client) error {
		if now == nil {
			return errors.New("client: WithClock(nil)")
		}
		c.clock = now
		return nil
	}
}

// New returns a client of the project projectID at baseURL, an absolute http or https URL such
// as "http://127.0.0.1:8080". sparekey serves /v1/... at the root of its listener, so the URL may
// not carry a path.
func New(baseURL, projectID, secret string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be an absolute http:// or https:// URL", baseURL)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client: base URL %q must be scheme://host[:port] only: sparekey serves /v1/... at the root", baseURL)
	}
	if projectID == "" {
		return nil, errors.New("client: project id is empty")
	}
	if secret == "" {
		return nil, errors.New("client: secret is empty")
	}
	c := &Client{
		baseURL:     u.Scheme + "://" + u.Host,
		projectID:   projectID,
		auth:        "Basic " + base64.StdEncoding.EncodeToString([]byte(projectID+":"+secret)),
		http:        http.DefaultClient,
		timeout:     DefaultTimeout,
		userAgent:   DefaultUserAgent,
		clock:       time.Now,
		jwksMaxAge:  defaultJWKSMaxAge,
		jwksBackoff: jwksRefreshCooldown,
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	c.RecoveryCodes = &RecoveryCodesClient{c: c}
	c.Organizations = &OrganizationsClient{c: c}
	c.Members = &MembersClient{c: c}
	c.TOTPs = &TOTPsClient{c: c}
	c.Passwords = &PasswordsClient{c: c}
	c.Sessions = &SessionsClient{c: c, jwks: newJWKSCache()}
	c.Events = &EventsClient{c: c}
	c.Webhooks = &WebhooksClient{c: c}
	return c, nil
}

// ProjectID returns the project the client calls.
func (c *Client) ProjectID() string { return c.projectID }

// Int returns a pointer to v, for optional integer parameters.
func Int(v int) *int { return &v }

// String returns a pointer to v, for optional string parameters.
func String(v string) *string { return &v }

// Bool returns a pointer to v, for optional boolean parameters.
func Bool(v bool) *bool { return &v }

// Error is an error answer of the API: the Stytch error envelope. Use errors.As to get it.
type Error struct {
	StatusCode   int            `json:"status_code"` // the HTTP status
	RequestID    string         `json:"request_id"`  // quote it when reporting a problem
	ErrorType    string         `json:"error_type"`  // e.g. "unable_to_authenticate_recovery_code"
	ErrorMessage string         `json:"error_message"`
	ErrorURL     string         `json:"error_url"`
	ErrorDetails map[string]any `json:"error_details,omitempty"` // sparekey never sends it
	// RetryAfter is the Retry-After header of a 429 (a member lock or a rate limit), else 0.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sparekey: HTTP %d", e.StatusCode)
	if e.ErrorType != "" {
		b.WriteString(" " + e.ErrorType)
	}
	if e.ErrorMessage != "" {
		b.WriteString(": " + e.ErrorMessage)
	}
	if e.RequestID != "" {
		b.WriteString(" (" + e.RequestID + ")")
	}
	return b.String()
}

// TransportError reports a call that got no complete answer: the request could not be sent, the
// connection failed, or the context ended (the call's own timeout included). Err is the cause.
type TransportError struct {
	Method string
	Path   string // the API path, without the query (which may hold identifiers)
	Err    error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("sparekey: %s %s: %v", e.Method, e.Path, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// ResponseError reports an answer that is not a JSON object of the expected shape: not JSON at
// all (for instance an HTML page from a proxy), cut short, too large, or a JSON value of the wrong
// type. Body holds the first KiB of what arrived; it may hold tokens, so do not log it blindly.
type ResponseError struct {
	Method      string
	Path        string
	StatusCode  int
	ContentType string
	Body        []byte
	Err         error
}

func (e *ResponseError) Error() string {
	ct := e.ContentType
	if ct == "" {
		ct = "no content type"
	}
	return fmt.Sprintf("sparekey: %s %s: HTTP %d answer (%s) is not a valid JSON response: %v", e.Method, e.Path, e.StatusCode, ct, e.Err)
}

func (e *ResponseError) Unwrap() error { return e.Err }

// ErrMissingParameter reports a required path or query parameter left empty; the call is not
// sent, since the server would answer with a misleading route_not_found.
var ErrMissingParameter = errors.New("sparekey: missing required parameter")

func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return fmt.Errorf("%w %s", ErrMissingParameter, pairs[i])
		}
	}
	return nil
}

// call is one API request.
type call struct {
	method  string
	path    string // already escaped
	query   url.Values
	body    any // JSON-encoded when non-nil
	headers http.Header
	noAuth  bool
}

// do sends the call and decodes a 200 answer into out, or returns one of the three error kinds.
// answer makes the call and returns its decoded answer.
func answer[T any](ctx context.Context, c *Client, k call) (*T, error) {
	var out T
	if err := c.do(ctx, k, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) do(ctx context.Context, k call, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	target := c.baseURL + k.path
	if len(k.query) > 0 {
		target += "?" + k.query.Encode()
	}
	var body io.Reader
	if k.body != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(k.body); err != nil {
			// Only a caller's custom claim or metadata value can fail to encode.
			return fmt.Errorf("sparekey: encode %s %s request: %w", k.method, k.path, err)
		}
		body = &buf
	}
	req, err := http.NewRequestWithContext(ctx, k.method, target, body)
	if err != nil {
		return &TransportError{Method: k.method, Path: k.path, Err: err}
	}
	if k.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if !k.noAuth {
		req.Header.Set("Authorization", c.auth)
	}
	for name, vs := range k.headers {
		for _, v := range vs {
			req.Header.Add(name, v)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &TransportError{Method: k.method, Path: k.path, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	bad := func(cause error) error {
		snippet := raw
		if len(snippet) > 1024 {
			snippet = snippet[:1024]
		}
		return &ResponseError{Method: k.method, Path: k.path, StatusCode: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: snippet, Err: cause}
	}
	if err != nil {
		if ctx.Err() != nil {
			return &TransportError{Method: k.method, Path: k.path, Err: context.Cause(ctx)}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return bad(fmt.Errorf("body cut short: %w", err))
		}
		return &TransportError{Method: k.method, Path: k.path, Err: err}
	}
	if len(raw) > maxResponseBytes {
		return bad(fmt.Errorf("body larger than %d bytes", maxResponseBytes))
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return bad(errors.New("body is not a JSON object"))
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		var e Error
		if err := strictUnmarshal(trimmed, &e); err != nil {
			return bad(err)
		}
		e.StatusCode = resp.StatusCode
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return &e
	}
	// Every success body carries "status_code": 200; a 200 without it is not sparekey's answer
	// (a captive portal, a misrouted proxy) and must not pass for an empty result.
	var envelope struct {
		StatusCode *int `json:"status_code"`
	}
	if err := strictUnmarshal(trimmed, &envelope); err != nil {
		return bad(err)
	}
	if envelope.StatusCode == nil || *envelope.StatusCode != http.StatusOK {
		return bad(errors.New(`success body without "status_code": 200`))
	}
	if err := strictUnmarshal(trimmed, out); err != nil {
		return bad(err)
	}
	return nil
}

// strictUnmarshal decodes exactly one JSON value, so a body cut short or followed by garbage is
// reported rather than half-read.
func strictUnmarshal(data []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("body cut short: %w", err)
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// pathEscape escapes one path segment; the server percent-decodes each segment once.
func pathEscape(s string) string { return url.PathEscape(s) }

// Authorization names a member session whose member must hold stytch_admin for an organization
// or member write to go through. It travels as the X-Stytch-Member-Session and
// X-Stytch-Member-SessionJWT headers; leave it empty to act with the project's credentials alone.
type Authorization struct {
	SessionToken string
	SessionJWT   string
}

func (a Authorization) headers() http.Header {
	h := http.Header{}
	if a.SessionToken != "" {
		h.Set("X-Stytch-Member-Session", a.SessionToken)
	}
	if a.SessionJWT != "" {
		h.Set("X-Stytch-Member-SessionJWT", a.SessionJWT)
	}
	return h
}
