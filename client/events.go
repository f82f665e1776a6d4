package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// EventsClient reads sparekey's audit trail (sparekey's own API, beyond Stytch's).
type EventsClient struct{ c *Client }

// ListEventsParams filters the audit trail. Zero values are left out of the request.
type ListEventsParams struct {
	Types          []string  // event types, e.g. "recovery_code.used"; none = every type
	OrganizationID string    // canonical organization id
	MemberID       string    // canonical member id
	Since          time.Time // events at or after
	Until          time.Time // events before
	Limit          *int      // 1..1000; the server's default is 100
	Cursor         string    // NextCursor of the previous page
}

// Event is one audit event. Data never holds a code, token, secret or hash.
type Event struct {
	EventID        string         `json:"event_id"`
	Type           string         `json:"type"`
	Time           time.Time      `json:"time"`
	ProjectID      string         `json:"project_id"`
	OrganizationID string         `json:"organization_id"`
	MemberID       string         `json:"member_id"`
	RequestID      string         `json:"request_id"`
	ClientIP       string         `json:"client_ip"`
	UserAgent      string         `json:"user_agent"`
	Data           map[string]any `json:"data"`
}

// ListEventsResponse is one page of events, newest first.
type ListEventsResponse struct {
	RequestID  string  `json:"request_id"`
	Events     []Event `json:"events"`
	NextCursor *string `json:"next_cursor"` // nil on the last page
	StatusCode int     `json:"status_code"`
}

// List returns one page of the project's audit events.
func (e *EventsClient) List(ctx context.Context, p ListEventsParams) (*ListEventsResponse, error) {
	q := url.Values{}
	for _, t := range p.Types {
		q.Add("type", t)
	}
	if p.OrganizationID != "" {
		q.Set("organization_id", p.OrganizationID)
	}
	if p.MemberID != "" {
		q.Set("member_id", p.MemberID)
	}
	if !p.Since.IsZero() {
		q.Set("since", p.Since.UTC().Format(time.RFC3339))
	}
	if !p.Until.IsZero() {
		q.Set("until", p.Until.UTC().Format(time.RFC3339))
	}
	if p.Limit != nil {
		q.Set("limit", strconv.Itoa(*p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	return answer[ListEventsResponse](ctx, e.c, call{method: http.MethodGet, path: "/sparekey/v1/events", query: q})
}
