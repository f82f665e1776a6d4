// Package auth is sparekey's domain: projects, organizations, members, TOTP, recovery codes,
// passwords and sessions, with the rules of the Stytch B2B contract. It knows nothing of HTTP or
// SQL: the api package calls it, and a Store persists it.
package auth

import (
	"context"
	"crypto/rsa"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sparekey/sparekey/internal/password"
	"github.com/sparekey/sparekey/internal/secret"
)

// Config holds the rules a deployment may tune.
type Config struct {
	// CodeSymbols is the length of issued recovery codes: 12 (default) or 16.
	CodeSymbols int
	// Lock is the failed-attempt limiter: 10 failures lock a member for an hour by default.
	Lock LockPolicy
	// KeyCacheTTL bounds how long a replica trusts its cached copy of a project's signing keys,
	// so a key added by another replica is seen within it.
	KeyCacheTTL time.Duration
	// LowCodesThreshold is the low-code signal: a recover that leaves a member with at least one
	// and at most this many unused codes records recovery_codes.low (0 turns it off; running
	// out always records recovery_codes.exhausted).
	LowCodesThreshold int
	// CodeStorage is how recovery codes are kept: CodeStorageEncrypted or CodeStorageStrict.
	CodeStorage string
	// EventRetention is how long audit events are kept (PruneEvents); 0 keeps them for ever.
	EventRetention time.Duration
}

// MinEventRetention is the shortest EventRetention: a typo such as 5m must not empty the trail.
const MinEventRetention = 24 * time.Hour

// Recovery-code storage policies.
const (
	// CodeStorageEncrypted keeps, beside each code's keyed hash, the set sealed under the
	// keyring, so GET can show the unused codes (the contract's behaviour).
	CodeStorageEncrypted = "encrypted"
	// CodeStorageStrict keeps keyed hashes only (NIST SP 800-63B-4's look-up secrets): codes are
	// shown once, in the response that issues them, and GET answers
	// ErrRecoveryCodesNotRetrievable.
	CodeStorageStrict = "strict"
)

// DefaultConfig returns the contract's defaults.
func DefaultConfig() Config {
	return Config{
		CodeSymbols: secret.CodeSymbols,
		Lock:        LockPolicy{Threshold: 10, Duration: time.Hour},
		KeyCacheTTL: time.Minute,

		LowCodesThreshold: 3,
		CodeStorage:       CodeStorageEncrypted,
	}
}

// Validate reports a configuration that cannot work, naming the setting.
func (c Config) Validate() error {
	if c.CodeSymbols != secret.CodeSymbols && c.CodeSymbols != secret.LongCodeSymbols {
		return fmt.Errorf("recovery code length must be %d or %d symbols, not %d", secret.CodeSymbols, secret.LongCodeSymbols, c.CodeSymbols)
	}
	if c.Lock.Threshold < 1 {
		return fmt.Errorf("lock threshold must be at least 1, not %d", c.Lock.Threshold)
	}
	if c.Lock.Duration < time.Second {
		return fmt.Errorf("lock duration must be at least 1s, not %s", c.Lock.Duration)
	}
	if c.LowCodesThreshold < 0 || c.LowCodesThreshold > maxImportedCodes {
		return fmt.Errorf("low-codes threshold must be from 0 to %d, not %d", maxImportedCodes, c.LowCodesThreshold)
	}
	if c.EventRetention != 0 && c.EventRetention < MinEventRetention {
		return fmt.Errorf("event retention must be 0 (keep for ever) or at least %s, not %s", MinEventRetention, c.EventRetention)
	}
	if c.CodeStorage != CodeStorageEncrypted && c.CodeStorage != CodeStorageStrict {
		return fmt.Errorf("code storage must be %q or %q, not %q", CodeStorageEncrypted, CodeStorageStrict, c.CodeStorage)
	}
	return nil
}

// Fixed lifetimes of the contract.
const (
	istLifetime            = 10 * time.Minute
	defaultSessionDuration = 60 * time.Minute
	jwtLifetime            = 5 * time.Minute
	codesPerSet            = 10
)

// Service implements every operation of the API. It is safe for concurrent use.
type Service struct {
	store Store
	keys  *secret.Keyring
	cfg   Config
	clock func() time.Time
	decoy password.Hash

	mu       sync.Mutex
	projects map[string]*projectState
}

// NewService wires the domain. clock may be nil for the wall clock; tests inject their own.
func NewService(store Store, keys *secret.Keyring, cfg Config, clock func() time.Time) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clock == nil {
		clock = time.Now
	}
	return &Service{
		store:    store,
		keys:     keys,
		cfg:      cfg,
		clock:    clock,
		decoy:    password.NewDecoy(),
		projects: make(map[string]*projectState),
	}, nil
}

// now is the service's clock in whole UTC seconds: the contract's timestamps have no fractions,
// and storing what is shown keeps comparisons exact.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Second) }

// ID kinds of the contract (§4): <kind>-test-<uuid v4>.
const (
	kindProject      = "project"
	kindOrganization = "organization"
	kindMember       = "member"
	kindSession      = "member-session"
	kindTOTP         = "member-totp"
	kindPassword     = "member-password"
	kindRecoveryCode = "member-totp-recovery-code"
	kindEmail        = "email"
	kindJWK          = "jwk"
)

func newID(kind string) string { return kind + "-test-" + uuid.NewString() }

// projectState is what a replica caches of a project: immutable credentials and pepper, and the
// signing keys, reloaded after KeyCacheTTL or when a JWT names a kid it does not know. Which key
// signs and which keys verify and are published is derived from the loaded rows at the time of
// use, so an activation or a retirement takes effect on time, not a cache TTL late.
type projectState struct {
	Project
	pepper []byte

	mu       sync.Mutex
	loadedAt time.Time
	keys     []SigningKey // as loaded, newest first

	// The keys in force at viewAt, valid until viewUntil (the next activation or retirement
	// among keys; zero when none is due).
	viewAt, viewUntil time.Time
	signer            secret.SigningKey
	publicKeys        map[string]*rsa.PublicKey
	jwks              []secret.JWK
}

// CreateProject makes a project with its secret, pepper and first signing key, and returns the
// secret: it is shown this once and stored only as a digest.
func (s *Service) CreateProject(ctx context.Context) (Project, string, error) {
	now := s.now()
	p := Project{ID: newID(kindProject), CreatedAt: now}
	sec := "secret-test-" + secret.NewToken()
	p.SecretDigest = secret.Digest(sec)
	p.SealedPepper = s.keys.Seal(secret.NewPepper(), pepperAD(p.ID))
	key, err := s.newSigningKey(p.ID, now)
	if err != nil {
		return Project{}, "", err
	}
	if err := s.store.CreateProject(ctx, p, key); err != nil {
		return Project{}, "", err
	}
	return p, sec, nil
}

func (s *Service) newSigningKey(projectID string, now time.Time) (SigningKey, error) {
	kid := newID(kindJWK)
	k, err := secret.GenerateSigningKey(kid, now)
	if err != nil {
		return SigningKey{}, err
	}
	der, err := secret.MarshalPrivateKey(k.Private)
	if err != nil {
		return SigningKey{}, err
	}
	return SigningKey{
		KID:              kid,
		ProjectID:        projectID,
		SealedPrivateKey: s.keys.Seal(der, signingKeyAD(projectID, kid)),
		JWK:              k.JWK,
		CreatedAt:        now,
		ActivatesAt:      now,
	}, nil
}

// Associated data binds each sealed value to its owner, so a value copied onto another row of
// the database does not open there.
func pepperAD(projectID string) []byte { return []byte("pepper\x00" + projectID) }
func signingKeyAD(projectID, kid string) []byte {
	return []byte("signing-key\x00" + projectID + "\x00" + kid)
}
func totpSecretAD(memberID, regID string) []byte {
	return []byte("totp-secret\x00" + memberID + "\x00" + regID)
}
func codeSetAD(memberID, regID string) []byte {
	return []byte("recovery-codes\x00" + memberID + "\x00" + regID)
}
func passwordAD(memberID, passwordID string) []byte {
	return []byte("password\x00" + memberID + "\x00" + passwordID)
}

// HasProjects reports whether the database holds any project.
func (s *Service) HasProjects(ctx context.Context) (bool, error) {
	ps, err := s.store.Projects(ctx)
	return len(ps) > 0, err
}

// CheckMasterKey proves the keyring opens what the database holds, so a wrong master key stops
// the server at start instead of failing requests one by one. Data sealed under any key of the
// keyring passes (the primary or an older one, as during a master-key rotation). The peppers
// stand for the rest: master-key rotation re-seals them last (sealedColumns), so peppers under
// the new key mean a rotation walked every column.
func (s *Service) CheckMasterKey(ctx context.Context) error {
	ps, err := s.store.Projects(ctx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if _, err := s.keys.Open(p.SealedPepper, pepperAD(p.ID)); err != nil {
			id, _ := secret.SealedKeyID(p.SealedPepper)
			return fmt.Errorf("the master key cannot decrypt the data of project %s: it is sealed under master key %08x, which is not among the keys given (the master key is %08x): "+
				"give the key this database was created with, and during a master-key rotation the old keys too", p.ID, id, s.keys.PrimaryKeyID())
		}
	}
	return nil
}

// AuthenticateProject checks HTTP Basic credentials. Unknown projects and wrong secrets get the
// same answer, compared in constant time.
// Every other operation takes the id of a project authenticated this way.
func (s *Service) AuthenticateProject(ctx context.Context, projectID, projectSecret string) error {
	ps, err := s.project(ctx, projectID)
	if err != nil {
		if TypeOf(err) == ErrProjectNotFound.Type {
			return ErrUnauthorizedCredentials
		}
		return err
	}
	if !secret.EqualDigest(ps.SecretDigest, secret.Digest(projectSecret)) {
		return ErrUnauthorizedCredentials
	}
	return nil
}

// project returns the cached state of a project, loading it on first use. Credentials and
// pepper never change, so the cache needs no invalidation.
func (s *Service) project(ctx context.Context, projectID string) (*projectState, error) {
	s.mu.Lock()
	ps, ok := s.projects[projectID]
	s.mu.Unlock()
	if ok {
		return ps, nil
	}
	p, err := s.store.Project(ctx, projectID)
	if err != nil {
		return nil, err
	}
	pepper, err := s.keys.Open(p.SealedPepper, pepperAD(p.ID))
	if err != nil {
		return nil, fmt.Errorf("open pepper of %s: %w", p.ID, err)
	}
	ps = &projectState{Project: p, pepper: pepper}
	s.mu.Lock()
	if cached, ok := s.projects[projectID]; ok {
		ps = cached
	} else {
		s.projects[projectID] = ps
	}
	s.mu.Unlock()
	return ps, nil
}

// loadKeys loads the project's signing keys when the cache is empty, older than the TTL, or
// force is set (an unknown kid may be a key another replica just added), then derives the keys
// in force now: the signer, and the keys that verify and are published.
func (s *Service) loadKeys(ctx context.Context, ps *projectState, force bool) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	clock := s.clock()
	reload := ps.keys == nil || clock.Sub(ps.loadedAt) >= s.cfg.KeyCacheTTL
	if force && clock.Sub(ps.loadedAt) >= time.Second { // an unknown kid should not let a caller hammer the database
		reload = true
	}
	if reload {
		keys, err := s.store.SigningKeys(ctx, ps.Project.ID)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return fmt.Errorf("project %s has no signing key", ps.Project.ID)
		}
		newestFirst(keys)
		ps.keys, ps.loadedAt = keys, clock
		ps.publicKeys = nil // derive afresh from the new rows
	}
	return s.deriveKeys(ps, s.now())
}

// deriveKeys sets the signer, public keys and JWKS of ps to those in force at now, unless they
// already are. ps.mu is held.
func (s *Service) deriveKeys(ps *projectState, now time.Time) error {
	if ps.publicKeys != nil && !now.Before(ps.viewAt) && (ps.viewUntil.IsZero() || now.Before(ps.viewUntil)) {
		return nil
	}
	v := keysInForce(ps.keys, now)
	if v.signer == nil {
		return fmt.Errorf("project %s has no signing key in force at %s", ps.Project.ID, now.Format(time.RFC3339))
	}
	public := make(map[string]*rsa.PublicKey, len(v.live))
	jwks := make([]secret.JWK, 0, len(v.live))
	for _, k := range v.live {
		pub, err := k.JWK.PublicKey()
		if err != nil {
			return fmt.Errorf("signing key %s: %w", k.KID, err)
		}
		public[k.KID] = pub
		jwks = append(jwks, k.JWK)
	}
	if ps.signer.KID != v.signer.KID {
		der, err := s.keys.Open(v.signer.SealedPrivateKey, signingKeyAD(ps.Project.ID, v.signer.KID))
		if err != nil {
			return fmt.Errorf("open signing key %s: %w", v.signer.KID, err)
		}
		priv, err := secret.ParsePrivateKey(der)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", v.signer.KID, err)
		}
		ps.signer = secret.SigningKey{KID: v.signer.KID, Private: priv, JWK: v.signer.JWK}
	}
	ps.publicKeys, ps.jwks, ps.viewAt, ps.viewUntil = public, jwks, now, v.until
	return nil
}

// JWKS returns the public keys of a project. It needs no credentials.
func (s *Service) JWKS(ctx context.Context, projectID string) ([]secret.JWK, error) {
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return nil, err
	}
	if err := s.loadKeys(ctx, ps, false); err != nil {
		return nil, err
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]secret.JWK(nil), ps.jwks...), nil
}
