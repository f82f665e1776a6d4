package auth

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"sync"

	"github.com/sparekey/sparekey/internal/secret"
	"github.com/sparekey/sparekey/internal/totp"
)

// BulkLoader is an optional Store capability: loading many prepared rows in a few large
// transactions. Seeding a million members one API call (one transaction) at a time takes
// hours; benchmarks and imports need minutes. It is not part of Store because a backend may
// lack it: callers find it with a type assertion (Service.CanBulkLoad).
//
// The rows arrive fully built by the Service with the same sealing and MACs as the API path;
// the store only writes them, checking what its constraints check.
type BulkLoader interface {
	// LoadEnrolledMembers stores new members of the project, each with its TOTP registration
	// and recovery codes, in one transaction: all of the batch or none of it. Every member's
	// organization must exist in the project (else ErrOrganizationNotFound); a duplicate
	// address is ErrDuplicateMemberEmail.
	LoadEnrolledMembers(ctx context.Context, projectID string, batch []EnrolledMember) error
	// LoadIntermediateSessions stores new intermediate sessions in one transaction.
	LoadIntermediateSessions(ctx context.Context, ists []IntermediateSession) error
}

// EnrolledMember is a member as TOTP create leaves it: the member, its registration (secret and
// code set sealed) and its codes (MACs).
type EnrolledMember struct {
	Member       Member
	Registration TOTPRegistration
	Codes        []RecoveryCode
}

// ErrNoBulkLoader means the service's store does not implement BulkLoader.
var ErrNoBulkLoader = errors.New("auth: this store cannot bulk load")

// BulkMember names a member for BulkEnroll to create.
type BulkMember struct {
	OrganizationID string // canonical id of an organization of the project
	EmailAddress   string // unique in the organization
}

// BulkEnrolled is a member BulkEnroll created, with what a caller needs to act as it: the
// TOTP secret and the recovery codes in their display form, exactly as TOTP create returns them.
type BulkEnrolled struct {
	OrganizationID string
	MemberID       string
	RegistrationID string
	TOTPSecret     string
	RecoveryCodes  []string
}

// bulkBatch is the number of members per LoadEnrolledMembers transaction: large enough that a
// commit (and its fsync) is rare, small enough to keep a batch's rows (~1.5 KB a member) in memory.
const bulkBatch = 5000

// CanBulkLoad reports whether the store implements BulkLoader.
func (s *Service) CanBulkLoad() bool {
	_, ok := s.store.(BulkLoader)
	return ok
}

// BulkEnroll creates members, each with a TOTP registration and ten recovery codes exactly as
// TOTP create makes them (secret, code set sealed under the keyring, codes MACed under the
// project's pepper), minus the QR image, and loads them through the store's BulkLoader in
// large transactions. each is called once per member after its batch committed, from one
// goroutine, in no particular order (batches are built in parallel); an error it returns stops
// the load. Building (crypto/rand, HMAC, AES-GCM) runs on the spare CPUs while the store writes
// the previous batch. A load that stops early leaves the batches already committed in place.
//
// It skips the per-member checks of the API path that cannot fail for new members of an
// existing organization (MFA-method restriction, an existing registration); organizations are
// checked once each, addresses are normalised as member create does.
func (s *Service) BulkEnroll(ctx context.Context, projectID string, members iter.Seq[BulkMember], each func(BulkEnrolled) error) error {
	loader, ok := s.store.(BulkLoader)
	if !ok {
		return ErrNoBulkLoader
	}
	ps, err := s.project(ctx, projectID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	type built struct {
		rows []EnrolledMember
		out  []BulkEnrolled
	}
	inputs := make(chan []BulkMember, 2)
	outputs := make(chan built, 2)
	var builders sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)-1) {
		builders.Add(1)
		go func() {
			defer builders.Done()
			for in := range inputs {
				b := built{rows: make([]EnrolledMember, 0, len(in)), out: make([]BulkEnrolled, 0, len(in))}
				for _, bm := range in {
					row, out, err := s.enrolledMember(ps, bm)
					if err != nil {
						cancel(err)
						break
					}
					b.rows, b.out = append(b.rows, row), append(b.out, out)
				}
				select {
				case outputs <- b:
				case <-ctx.Done():
				}
			}
		}()
	}
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		for b := range outputs {
			if ctx.Err() != nil {
				continue // drain so the builders can finish
			}
			if err := loader.LoadEnrolledMembers(ctx, projectID, b.rows); err != nil {
				cancel(err)
				continue
			}
			for _, o := range b.out {
				if err := each(o); err != nil {
					cancel(err)
					break
				}
			}
		}
	}()

	orgs := map[string]bool{}
	batch := make([]BulkMember, 0, bulkBatch)
	send := func() {
		select {
		case inputs <- batch:
		case <-ctx.Done():
		}
		batch = make([]BulkMember, 0, bulkBatch)
	}
	for bm := range members {
		if ctx.Err() != nil {
			break
		}
		if !orgs[bm.OrganizationID] {
			o, err := s.store.Organization(ctx, projectID, bm.OrganizationID)
			if err == nil && o.ID != bm.OrganizationID {
				err = ErrOrganizationNotFound // a slug or external id: canonical ids only
			}
			if err != nil {
				cancel(err)
				break
			}
			orgs[bm.OrganizationID] = true
		}
		if batch = append(batch, bm); len(batch) == bulkBatch {
			send()
		}
	}
	if len(batch) > 0 && ctx.Err() == nil {
		send()
	}
	close(inputs)
	builders.Wait()
	close(outputs)
	<-loaded
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// enrolledMember builds one member with its registration and codes. The registration part
// mirrors Service.enroll, which TOTP create and migrate use.
func (s *Service) enrolledMember(ps *projectState, bm BulkMember) (EnrolledMember, BulkEnrolled, error) {
	email, ok := normalizeEmail(bm.EmailAddress)
	if !ok {
		return EnrolledMember{}, BulkEnrolled{}, ErrInvalidEmail
	}
	m := s.newMember(ps.Project.ID, bm.OrganizationID)
	m.EmailAddress = email
	sec, err := totp.NewSecret()
	if err != nil {
		return EnrolledMember{}, BulkEnrolled{}, err
	}
	shown, err := secret.NewRecoveryCodes(codesPerSet, s.cfg.CodeSymbols)
	if err != nil {
		return EnrolledMember{}, BulkEnrolled{}, err
	}
	reg := TOTPRegistration{ID: newID(kindTOTP), MemberID: m.ID, CreatedAt: m.CreatedAt}
	reg.SealedSecret = s.keys.Seal([]byte(sec), totpSecretAD(m.ID, reg.ID))
	var codes []RecoveryCode
	reg.SealedCodes, codes = s.codeSet(ps, m.ID, reg.ID, shown)
	m.TOTPRegistrationID = reg.ID
	return EnrolledMember{Member: m, Registration: reg, Codes: codes},
		BulkEnrolled{OrganizationID: m.OrganizationID, MemberID: m.ID, RegistrationID: reg.ID, TOTPSecret: sec, RecoveryCodes: shown},
		nil
}

// BulkIntermediateSessions issues one intermediate session per member, as passwords
// authenticate issues it when MFA is required (a password factor, valid 10 minutes), and returns
// the tokens in order. It checks no password: it is for loading fixtures (a benchmark's supply
// of fresh intermediate sessions) into a database the caller owns. The references must be
// canonical ids; the store refuses unknown members.
func (s *Service) BulkIntermediateSessions(ctx context.Context, projectID string, members []MemberRef) ([]string, error) {
	loader, ok := s.store.(BulkLoader)
	if !ok {
		return nil, ErrNoBulkLoader
	}
	now := s.now()
	factor := Factor{Type: FactorPassword, DeliveryMethod: DeliveryKnowledge, CreatedAt: now, UpdatedAt: now, LastAuthenticatedAt: now}
	tokens := make([]string, len(members))
	ists := make([]IntermediateSession, len(members))
	for i, ref := range members {
		tokens[i] = secret.NewToken()
		ists[i] = IntermediateSession{
			TokenDigest:    secret.Digest(tokens[i]),
			ProjectID:      projectID,
			OrganizationID: ref.OrganizationID,
			MemberID:       ref.MemberID,
			Factors:        []Factor{factor},
			CreatedAt:      now,
			ExpiresAt:      now.Add(istLifetime),
		}
	}
	if err := loader.LoadIntermediateSessions(ctx, ists); err != nil {
		return nil, err
	}
	return tokens, nil
}
