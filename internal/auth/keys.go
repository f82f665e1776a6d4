package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sparekey/sparekey/internal/secret"
)

// Key rotation without downtime: a project's session-JWT signing keys (§7), and the master key
// that seals every secret the database holds.

// Signing-key rotation bounds. A new key is published at once and signs only after a publish
// delay, so that every replica (each reloads its cached keys within Config.KeyCacheTTL) and
// every SDK that refetches the JWKS lists it before any JWT names it. A replaced key verifies
// for a grace after its successor activates: the last JWTs it signed live jwtLifetime, and as
// much again covers clocks that disagree and clients that refresh late.
const (
	MinSigningKeyPublishDelay     = time.Minute // the default KeyCacheTTL
	DefaultSigningKeyPublishDelay = 2 * time.Minute
	MinSigningKeyGrace            = 2 * jwtLifetime
	DefaultSigningKeyGrace        = 15 * time.Minute
)

// SigningKeyState is where a signing key stands in its life at a given time.
type SigningKeyState string

const (
	// SigningKeyPending: published and verifying, not signing before its ActivatesAt.
	SigningKeyPending SigningKeyState = "pending"
	// SigningKeySigning: the key new JWTs are signed with.
	SigningKeySigning SigningKeyState = "signing"
	// SigningKeyVerifying: replaced by a newer key; verifies and is published until RetiresAt.
	SigningKeyVerifying SigningKeyState = "verifying"
	// SigningKeyRetired: neither verifies nor is published; JWTs naming it are refused.
	SigningKeyRetired SigningKeyState = "retired"
)

// SigningKeyStatus is a signing key and its state at the time it was listed.
type SigningKeyStatus struct {
	SigningKey
	State SigningKeyState
}

// keyView is what a replica does with a project's keys at one instant.
type keyView struct {
	signer *SigningKey       // the newest active, unretired key; nil when there is none
	live   []SigningKey      // the unretired keys, newest first: they verify and are published
	until  time.Time         // the view holds until the next activation or retirement; zero: none due
	states []SigningKeyState // states[i] is the state of the i-th key at now
}

// newestFirst orders a project's keys as they replaced each other: by creation, then, for keys
// made in the same second (the store's resolution), by activation and by retirement (a key not
// replaced is the newest). The kid, random, only makes the order total.
func newestFirst(keys []SigningKey) {
	retires := func(k SigningKey) time.Time {
		if k.RetiresAt.IsZero() {
			return time.Unix(1<<62, 0)
		}
		return k.RetiresAt
	}
	slices.SortStableFunc(keys, func(a, b SigningKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		if c := b.ActivatesAt.Compare(a.ActivatesAt); c != 0 {
			return c
		}
		if c := retires(b).Compare(retires(a)); c != 0 {
			return c
		}
		return strings.Compare(b.KID, a.KID)
	})
}

// keysInForce derives, from a project's keys newest first (newestFirst), which key signs at now (the newest
// whose ActivatesAt has come and that has not retired) and which verify (every unretired key,
// pending ones included: a replica whose clock runs ahead may already sign with one).
func keysInForce(keys []SigningKey, now time.Time) keyView {
	var v keyView
	due := func(t time.Time) {
		if t.After(now) && (v.until.IsZero() || t.Before(v.until)) {
			v.until = t
		}
	}
	for i := range keys {
		k := &keys[i]
		due(k.ActivatesAt)
		due(k.RetiresAt)
		live := k.RetiresAt.IsZero() || now.Before(k.RetiresAt)
		active := !k.ActivatesAt.After(now)
		state := SigningKeyRetired
		switch {
		case !live:
		case !active:
			state = SigningKeyPending
		case v.signer == nil:
			state = SigningKeySigning
			v.signer = k
		default:
			state = SigningKeyVerifying
		}
		if live {
			v.live = append(v.live, *k)
		}
		v.states = append(v.states, state)
	}
	return v
}

// SigningKeys lists a project's signing keys, newest first, each with its state now.
func (s *Service) SigningKeys(ctx context.Context, projectID string) ([]SigningKeyStatus, error) {
	if _, err := s.store.Project(ctx, projectID); err != nil {
		return nil, err
	}
	keys, err := s.store.SigningKeys(ctx, projectID)
	if err != nil {
		return nil, err
	}
	newestFirst(keys)
	v := keysInForce(keys, s.now())
	out := make([]SigningKeyStatus, len(keys))
	for i, k := range keys {
		out[i] = SigningKeyStatus{SigningKey: k, State: v.states[i]}
	}
	return out, nil
}

// RotateSigningKey adds a new signing key to the project. It is published (and verifies) at
// once and signs from now + publishDelay; the project's keys that have not been replaced yet
// retire grace after that. Keys that retired before now are deleted. Bounds on the durations
// (MinSigningKeyPublishDelay, MinSigningKeyGrace) are the caller's to enforce, so tests may
// rotate in seconds; negative ones are refused.
func (s *Service) RotateSigningKey(ctx context.Context, projectID string, publishDelay, grace time.Duration) (SigningKey, error) {
	if publishDelay < 0 || grace < 0 {
		return SigningKey{}, fmt.Errorf("signing-key publish delay and grace must not be negative, not %s and %s", publishDelay, grace)
	}
	now := s.now()
	key, err := s.newSigningKey(projectID, now)
	if err != nil {
		return SigningKey{}, err
	}
	key.ActivatesAt = now.Add(publishDelay).Truncate(time.Second)
	key.RetiresAt = time.Time{}
	retireAt := key.ActivatesAt.Add(grace).Truncate(time.Second)
	if err := s.store.AddSigningKey(ctx, key, retireAt); err != nil {
		return SigningKey{}, err
	}
	// This replica reloads at once; the others within their KeyCacheTTL, before the key signs.
	s.mu.Lock()
	ps := s.projects[projectID]
	s.mu.Unlock()
	if ps != nil {
		ps.mu.Lock()
		ps.keys = nil
		ps.mu.Unlock()
	}
	return key, nil
}

// SealedColumn names a database column of values sealed under the master keyring, as
// table.column. Master-key rotation walks every one.
type SealedColumn string

// The sealed columns. A new one is a constant here, a line in sealedColumns, and a line in each
// store's table of sealed columns (internal/store/*/keys.go); the stores' tests fail while a
// column whose name starts with "sealed" is missing from either.
const (
	SealedProjectPepper SealedColumn = "projects.sealed_pepper"
	SealedSigningKey    SealedColumn = "signing_keys.sealed_private_key"
	SealedTOTPSecret    SealedColumn = "totp_registrations.sealed_secret"
	SealedRecoveryCodes SealedColumn = "totp_registrations.sealed_codes"
	SealedPassword      SealedColumn = "passwords.sealed"
	SealedWebhookSecret SealedColumn = "webhooks.sealed_secret"
)

// sealedColumns is every sealed column with the associated data its values are sealed with
// (from the row's owner and id, as the store reports them), in the order master-key rotation
// walks them. The peppers come last: a pepper under the new key then means every other value
// was walked, which is what CheckMasterKey, on a server started with the new key alone, sees.
var sealedColumns = []struct {
	column SealedColumn
	ad     func(owner, id string) []byte
}{
	{SealedSigningKey, signingKeyAD},                                       // owner: project id, id: kid
	{SealedTOTPSecret, totpSecretAD},                                       // owner: member id, id: registration id
	{SealedRecoveryCodes, codeSetAD},                                       // owner: member id, id: registration id
	{SealedPassword, passwordAD},                                           // owner: member id, id: password id
	{SealedWebhookSecret, webhookSecretAD},                                 // owner: project id, id: webhook id
	{SealedProjectPepper, func(p, _ string) []byte { return pepperAD(p) }}, // owner: project id
}

// SealedColumns lists every sealed column, in the order master-key rotation walks them.
func SealedColumns() []SealedColumn {
	out := make([]SealedColumn, len(sealedColumns))
	for i, c := range sealedColumns {
		out[i] = c.column
	}
	return out
}

// SealedValue is one sealed value as master-key rotation pages through a column.
type SealedValue struct {
	Row    string // the row's key: the column's paging order, and what a replacement names
	Owner  string // the project or member id the associated data binds the value to
	ID     string // the record's own id in the associated data ("" for a pepper)
	Sealed []byte
}

// SealedReplacement is a re-sealed value for ReplaceSealedValues: New replaces Old in the row
// only if the row still holds Old.
type SealedReplacement struct {
	Row      string
	Old, New []byte
}

// ResealOptions tunes Reseal.
type ResealOptions struct {
	BatchSize int           // values per page and per write transaction (default 100)
	Pause     time.Duration // between batches, to leave the database to the traffic
	// Progress, when set, is called after every batch and once more when a column is done.
	Progress func(ResealProgress)
}

// ResealProgress is where a walk of one column stands.
type ResealProgress struct {
	Column SealedColumn
	Total  int // values in the column when its walk began (concurrent inserts may make Done exceed it)
	Done   int // values walked
	// Resealed counts the values this walk moved to the primary key; Changed those another
	// writer changed between read and write (left as that writer made them).
	Resealed, Changed int
	Finished          bool
}

const defaultResealBatch = 100

// Reseal re-seals, under the keyring's primary key and with the same associated data, every
// value of every sealed column that is sealed under another key of the keyring, in batches,
// while servers keep using the database. A value is replaced only if its row still holds what
// was read (a concurrent write is never overwritten). Values already under the primary key are
// skipped unopened, so an interrupted Reseal is finished by running it again. A value that the
// keyring cannot open stops it, naming the row and its key id.
func (s *Service) Reseal(ctx context.Context, opts ResealOptions) error {
	batch := opts.BatchSize
	if batch <= 0 {
		batch = defaultResealBatch
	}
	primary := s.keys.PrimaryKeyID()
	for _, c := range sealedColumns {
		total, err := s.store.CountSealedValues(ctx, c.column)
		if err != nil {
			return err
		}
		p := ResealProgress{Column: c.column, Total: total}
		for after := ""; ; {
			page, err := s.store.SealedValues(ctx, c.column, after, batch)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			var rs []SealedReplacement
			for _, v := range page {
				after = v.Row
				if id, ok := secret.SealedKeyID(v.Sealed); ok && id == primary {
					continue
				}
				ad := c.ad(v.Owner, v.ID)
				pt, err := s.keys.Open(v.Sealed, ad)
				if err != nil {
					return unopenable(c.column, v)
				}
				rs = append(rs, SealedReplacement{Row: v.Row, Old: v.Sealed, New: s.keys.Seal(pt, ad)})
				clear(pt)
			}
			if len(rs) > 0 {
				n, err := s.store.ReplaceSealedValues(ctx, c.column, rs)
				if err != nil {
					return err
				}
				p.Resealed += n
				p.Changed += len(rs) - n
			}
			p.Done += len(page)
			if opts.Progress != nil {
				opts.Progress(p)
			}
			if len(page) < batch {
				break
			}
			if opts.Pause > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(opts.Pause):
				}
			}
		}
		p.Finished = true
		if opts.Progress != nil {
			opts.Progress(p)
		}
	}
	return nil
}

func unopenable(column SealedColumn, v SealedValue) error {
	id, _ := secret.SealedKeyID(v.Sealed)
	return fmt.Errorf("%s of row %s is sealed under master key %08x, and the keys given do not open it (that key is missing, or the value was altered)", column, v.Row, id)
}

// SealedReport is what one sealed column holds, by sealing key.
type SealedReport struct {
	Column SealedColumn
	Values int
	ByKey  map[uint32]int // values per id of the master key that sealed them
	// Unopenable counts values the keyring cannot open with their associated data.
	Unopenable int
}

// Stale counts the values not sealed under primary.
func (r SealedReport) Stale(primary uint32) int { return r.Values - r.ByKey[primary] }

// CheckSealed reads every value of every sealed column and reports, per column, which master
// keys sealed them and how many the keyring cannot open. It changes nothing: after Reseal,
// every value should be under the primary key and open.
func (s *Service) CheckSealed(ctx context.Context, batchSize int) ([]SealedReport, error) {
	if batchSize <= 0 {
		batchSize = defaultResealBatch
	}
	out := make([]SealedReport, 0, len(sealedColumns))
	for _, c := range sealedColumns {
		r := SealedReport{Column: c.column, ByKey: map[uint32]int{}}
		for after := ""; ; {
			page, err := s.store.SealedValues(ctx, c.column, after, batchSize)
			if err != nil {
				return nil, err
			}
			for _, v := range page {
				after = v.Row
				id, _ := secret.SealedKeyID(v.Sealed)
				r.Values++
				r.ByKey[id]++
				if pt, err := s.keys.Open(v.Sealed, c.ad(v.Owner, v.ID)); err != nil {
					r.Unopenable++
				} else {
					clear(pt)
				}
			}
			if len(page) < batchSize {
				break
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// MasterKeyID is the id of the master key new values are sealed under: the first four bytes of
// every sealed value, in hex, name their key.
func (s *Service) MasterKeyID() uint32 { return s.keys.PrimaryKeyID() }
