package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/sparekey/sparekey/internal/auth"
)

// statusOf is the one table from domain error codes to HTTP statuses.
var statusOf = map[auth.Code]int{
	auth.EInvalid:         http.StatusBadRequest,
	auth.EUnauthenticated: http.StatusUnauthorized,
	auth.EForbidden:       http.StatusForbidden,
	auth.ENotFound:        http.StatusNotFound,
	auth.ELocked:          http.StatusTooManyRequests,
}

// maxBody is the largest request body accepted (§2).
const maxBody = 1 << 20

// envelope carries the two fields every response body has.
type envelope struct {
	RequestID  string `json:"request_id"`
	StatusCode int    `json:"status_code"`
}

func (e *envelope) stamp(id string, status int) { e.RequestID, e.StatusCode = id, status }

type stamper interface{ stamp(id string, status int) }

// ok writes a success body: always HTTP 200 with status_code 200.
func (s *Server) ok(w http.ResponseWriter, r *http.Request, body stamper) {
	body.stamp(requestID(r), http.StatusOK)
	noteSuccess(r, body)
	s.writeJSON(w, http.StatusOK, body)
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, body any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		s.log.Error("encode response", "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"status_code":500,"error_type":"internal_server_error","error_message":"Something went wrong on the server.","error_url":"https://stytch.com/docs/api-reference/b2b/api/errors/500#internal_server_error","request_id":""}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorBody is the Stytch error envelope (§8). It never has a key named "error".
type errorBody struct {
	StatusCode   int    `json:"status_code"`
	RequestID    string `json:"request_id"`
	ErrorType    string `json:"error_type"`
	ErrorMessage string `json:"error_message"`
	ErrorURL     string `json:"error_url"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, typ, msg string) {
	noteError(r, typ)
	s.writeJSON(w, status, errorBody{
		StatusCode:   status,
		RequestID:    requestID(r),
		ErrorType:    typ,
		ErrorMessage: msg,
		ErrorURL:     "https://stytch.com/docs/api-reference/b2b/api/errors/" + strconv.Itoa(status) + "#" + typ,
	})
}

// fail writes the envelope of a domain error. Anything else is a fault of ours: the caller gets
// a generic 500 and the details go to the log, under the request id the caller can quote.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *auth.Error
	if errors.As(err, &e) {
		if status, ok := statusOf[e.Code]; ok {
			if e.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
			}
			s.writeError(w, r, status, e.Type, e.Message)
			return
		}
	}
	s.log.Error("internal error", "request_id", requestID(r), "err", err)
	s.writeError(w, r, http.StatusInternalServerError, auth.ErrInternal.Type, auth.ErrInternal.Message)
}

// decode reads a JSON object body into dst: at most 1 MiB, valid UTF-8, an object, fields of the
// right JSON types. An empty body is {}. Unknown fields are ignored. On failure it writes the
// bad_request envelope and returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.fail(w, r, auth.ErrBadRequest)
		return false
	}
	// Only JSON's own whitespace may surround the object: a no-break space is not JSON.
	body = bytes.Trim(body, " \t\r\n")
	if len(body) == 0 {
		return true
	}
	if !utf8.Valid(body) || body[0] != '{' || hasEscapedNUL(body) {
		s.fail(w, r, auth.ErrBadRequest)
		return false
	}
	// The v2 decoder matches member names exactly (encoding/json would let "Member_ID" set
	// member_id, so an unknown field could override a known one), rejects duplicate names and
	// trailing data, and ignores unknown members.
	if err := jsonv2.Unmarshal(body, dst); err != nil {
		s.fail(w, r, auth.ErrBadRequest)
		return false
	}
	return true
}

// hasEscapedNUL reports a \u0000 escape in a JSON text. NUL is valid UTF-8 but no text column of
// PostgreSQL can hold it, and no Stytch field needs it, so it is refused like invalid UTF-8 on
// every backend alike.
func hasEscapedNUL(body []byte) bool {
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(`\u0000`))
		if j < 0 {
			return false
		}
		at := i + j
		slashes := 0
		for k := at; k >= 0 && body[k] == '\\'; k-- {
			slashes++
		}
		if slashes%2 == 1 { // an odd run of backslashes ends in an escape, not a literal backslash
			return true
		}
		i = at + 1
	}
}

// number is a JSON number literal kept as text, so the domain can tell 60 from 60.5 and apply
// its own range error. A quoted number is the wrong JSON type.
type number json.Number

func (n *number) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || !(b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		return errWrongType
	}
	*n = number(b)
	return nil
}

var errWrongType = errors.New("wrong JSON type")

func (n *number) arg() *json.Number {
	if n == nil {
		return nil
	}
	v := json.Number(*n)
	return &v
}

// actor reads the member-session headers.
func actor(r *http.Request) auth.Actor {
	return auth.Actor{
		SessionToken: r.Header.Get("X-Stytch-Member-Session"),
		SessionJWT:   r.Header.Get("X-Stytch-Member-SessionJWT"),
	}
}
