// Package webhook delivers the audit events of each project to its webhooks: signed HTTP POSTs
// in the Standard Webhooks format (https://www.standardwebhooks.com), sent from the outbox the
// store writes in the transaction of each event.
//
// One Dispatcher runs per sparekey process. It claims due deliveries with a lease (on PostgreSQL
// FOR UPDATE SKIP LOCKED, so replicas share the work and never hold the same delivery at once),
// POSTs each one, and records the outcome: delivered on a 2xx answer, otherwise a retry after an
// exponential back-off, until the give-up time has passed, when the delivery is marked failed.
// A lease that outlives its process (a crash) ends by itself and the delivery is claimed again:
// delivery is at least once.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Sign returns the webhook-signature value of a message: "v1," and the standard base64 of
// HMAC-SHA256(key, msgID + "." + timestamp + "." + body), where key is the secret's bytes (the
// base64 after "whsec_"), timestamp the webhook-timestamp value in Unix seconds and body the
// exact bytes sent.
func Sign(key []byte, msgID string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
