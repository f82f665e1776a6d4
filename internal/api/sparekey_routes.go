package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
	"github.com/sparekey/sparekey/internal/webhook"
)

// sparekeyRoutes are sparekey's own API, beyond the Stytch contract. It lives under /sparekey/v1
// so it can never collide with a Stytch route, and takes the same project Basic auth.
func (s *Server) sparekeyRoutes() []route {
	return []route{
		{method: "GET", path: "/sparekey/v1/events", handler: s.listEvents},
		{method: "POST", path: "/sparekey/v1/webhooks", handler: s.createWebhook},
		{method: "GET", path: "/sparekey/v1/webhooks", handler: s.listWebhooks},
		{method: "DELETE", path: "/sparekey/v1/webhooks/{webhook_id}", handler: s.deleteWebhook},
		{method: "GET", path: "/sparekey/v1/webhooks/{webhook_id}/deliveries", handler: s.listWebhookDeliveries},
	}
}

type eventsResponse struct {
	envelope
	Events     []webhook.EventJSON `json:"events"`
	NextCursor *string             `json:"next_cursor"`
}

// listEvents reads the audit trail: GET /sparekey/v1/events?type=&organization_id=&member_id=
// &since=&until=&limit=&cursor= (type may repeat or hold a comma-separated list; since and until
// are RFC 3339). Newest first.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, projectID string) {
	q := r.URL.Query()
	in := auth.ListEventsInput{
		Types:          q["type"],
		OrganizationID: q.Get("organization_id"),
		MemberID:       q.Get("member_id"),
		Cursor:         q.Get("cursor"),
	}
	for _, bound := range []struct {
		name string
		dst  **time.Time
	}{{"since", &in.Since}, {"until", &in.Until}} {
		if v := q.Get(bound.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.fail(w, r, auth.ErrInvalidRequestValue)
				return
			}
			*bound.dst = &t
		}
	}
	if v := q.Get("limit"); v != "" {
		n := json.Number(v)
		in.Limit = &n
	}
	page, err := s.svc.ListEvents(r.Context(), projectID, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := &eventsResponse{Events: make([]webhook.EventJSON, 0, len(page.Events))}
	for _, e := range page.Events {
		out.Events = append(out.Events, webhook.NewEventJSON(e))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	s.ok(w, r, out)
}
