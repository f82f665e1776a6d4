package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sparekey/sparekey/internal/auth"
)

// member is one seeded member as the bench knows it.
type member struct {
	org   string
	id    string
	email string   // HTTP seeding only: passwords authenticate needs it
	codes []string // unused codes, oldest first; nil for members the bench does not track
}

// maxTracked bounds the members whose codes the bench keeps (and recovers, rotates): codes of
// a million members would cost hundreds of megabytes and no phase spends a fraction of them.
// Tracked members are spread evenly over the seeding order, so over the whole key space.
const maxTracked = 50_000

// population is the seeded members and the roles the phases give them: any member is read, a
// tracked tenth are rotated (their codes change under the bench, so they never recover) and
// the other tracked members recover and take wrong codes.
type population struct {
	mu         sync.Mutex
	stride     int
	tracked    int
	members    []member
	recoverSet []int
	rotateSet  []int
}

func newPopulation(planned int) *population {
	return &population{stride: max(1, (planned+maxTracked-1)/maxTracked), members: make([]member, 0, planned)}
}

// add records a seeded member and gives it a role. Safe for concurrent use.
func (p *population) add(org, id, email string, codes []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := len(p.members)
	m := member{org: org, id: id, email: email}
	if i%p.stride == 0 {
		// The second tracked member is the first rotated one, so even a tiny run has one.
		if p.tracked%10 == 1 {
			p.rotateSet = append(p.rotateSet, i)
		} else {
			p.recoverSet = append(p.recoverSet, i)
			m.codes = append([]string(nil), codes...)
		}
		p.tracked++
	}
	p.members = append(p.members, m)
}

// seeder puts members into the database and issues intermediate sessions for them.
type seeder interface {
	method() string
	createOrganizations(ctx context.Context, n int) ([]string, error)
	enroll(ctx context.Context, pop *population, orgs []string, n int, progress func(done int)) error
	// issueISTs returns a fresh intermediate session token for each member index.
	issueISTs(ctx context.Context, pop *population, members []int) ([]string, error)
}

func memberEmail(runID string, i int) string {
	return fmt.Sprintf("member%d.%s@bench.example.com", i, runID)
}

// bulkSeeder loads through auth.Service.BulkEnroll: the bench owns the database and the store
// implements auth.BulkLoader. Organizations go through the service one by one (there are a
// hundred times fewer of them).
type bulkSeeder struct {
	svc       *auth.Service
	projectID string
	runID     string
}

func (s *bulkSeeder) method() string { return "bulk" }

func (s *bulkSeeder) createOrganizations(ctx context.Context, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		name, slug, policy := fmt.Sprintf("Bench Org %d", i), fmt.Sprintf("bench-%s-%d", s.runID, i), auth.MFAPolicyRequiredForAll
		o, err := s.svc.CreateOrganization(ctx, s.projectID, auth.OrganizationInput{Name: &name, Slug: &slug, MFAPolicy: &policy})
		if err != nil {
			return nil, fmt.Errorf("create organization %d: %w", i, err)
		}
		ids[i] = o.ID
	}
	return ids, nil
}

func (s *bulkSeeder) enroll(ctx context.Context, pop *population, orgs []string, n int, progress func(int)) error {
	perOrg := (n + len(orgs) - 1) / len(orgs)
	members := func(yield func(auth.BulkMember) bool) {
		for i := range n {
			if !yield(auth.BulkMember{OrganizationID: orgs[i/perOrg], EmailAddress: memberEmail(s.runID, i)}) {
				return
			}
		}
	}
	done := 0
	return s.svc.BulkEnroll(ctx, s.projectID, iter.Seq[auth.BulkMember](members), func(e auth.BulkEnrolled) error {
		pop.add(e.OrganizationID, e.MemberID, "", e.RecoveryCodes)
		done++
		progress(done)
		return nil
	})
}

func (s *bulkSeeder) issueISTs(ctx context.Context, pop *population, members []int) ([]string, error) {
	refs := make([]auth.MemberRef, len(members))
	for i, mi := range members {
		m := &pop.members[mi]
		refs[i] = auth.MemberRef{OrganizationID: m.org, MemberID: m.id}
	}
	var out []string
	for start := 0; start < len(refs); start += 5000 {
		tokens, err := s.svc.BulkIntermediateSessions(ctx, s.projectID, refs[start:min(start+5000, len(refs))])
		if err != nil {
			return nil, err
		}
		out = append(out, tokens...)
	}
	return out, nil
}

// apiClient makes the JSON calls of seeding and preparation (not of the timed phases).
type apiClient struct {
	client        *http.Client
	base          string
	authorization string
}

func (c *apiClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.authorization)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		if len(b) > 300 {
			b = b[:300]
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

// httpSeeder seeds through the public API, for a server whose database the bench cannot
// reach: members with a password (passwords/migrate with a bcrypt hash at the minimum cost,
// so authenticating them is cheap) and a TOTP registration with ten codes (totp/migrate: TOTP
// create would also render a QR image nobody looks at).
type httpSeeder struct {
	api         *apiClient
	concurrency int
	runID       string
	password    string
	hash        string
}

func newHTTPSeeder(api *apiClient, concurrency int, runID string) (*httpSeeder, error) {
	password := "bench password " + runID
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	return &httpSeeder{api: api, concurrency: concurrency, runID: runID, password: password, hash: string(hash)}, nil
}

func (s *httpSeeder) method() string { return "http" }

func (s *httpSeeder) createOrganizations(ctx context.Context, n int) ([]string, error) {
	ids := make([]string, n)
	err := parallel(ctx, n, s.concurrency, func(ctx context.Context, i int) error {
		var out struct {
			Organization struct {
				ID string `json:"organization_id"`
			} `json:"organization"`
		}
		err := s.api.call(ctx, "POST", "/v1/b2b/organizations", map[string]any{
			"organization_name": fmt.Sprintf("Bench Org %d", i),
			"organization_slug": fmt.Sprintf("bench-%s-%d", s.runID, i),
			"mfa_policy":        auth.MFAPolicyRequiredForAll,
		}, &out)
		ids[i] = out.Organization.ID
		return err
	})
	return ids, err
}

func (s *httpSeeder) enroll(ctx context.Context, pop *population, orgs []string, n int, progress func(int)) error {
	perOrg := (n + len(orgs) - 1) / len(orgs)
	var done atomic.Int64
	return parallel(ctx, n, s.concurrency, func(ctx context.Context, i int) error {
		org, email := orgs[i/perOrg], memberEmail(s.runID, i)
		var m struct {
			MemberID string `json:"member_id"`
		}
		if err := s.api.call(ctx, "POST", "/v1/b2b/passwords/migrate", map[string]any{
			"organization_id": org, "email_address": email, "hash_type": "bcrypt", "hash": s.hash,
		}, &m); err != nil {
			return err
		}
		var t struct {
			RecoveryCodes []string `json:"recovery_codes"`
		}
		if err := s.api.call(ctx, "POST", "/v1/b2b/totp/migrate", map[string]any{
			"organization_id": org, "member_id": m.MemberID, "secret": newTOTPSecret(),
		}, &t); err != nil {
			return err
		}
		pop.add(org, m.MemberID, email, t.RecoveryCodes)
		progress(int(done.Add(1)))
		return nil
	})
}

func (s *httpSeeder) issueISTs(ctx context.Context, pop *population, members []int) ([]string, error) {
	tokens := make([]string, len(members))
	err := parallel(ctx, len(members), s.concurrency, func(ctx context.Context, i int) error {
		m := &pop.members[members[i]]
		var out struct {
			IST string `json:"intermediate_session_token"`
		}
		if err := s.api.call(ctx, "POST", "/v1/b2b/passwords/authenticate", map[string]any{
			"organization_id": m.org, "email_address": m.email, "password": s.password,
		}, &out); err != nil {
			return err
		}
		if out.IST == "" {
			return fmt.Errorf("passwords authenticate gave member %s no intermediate session: is MFA required in its organization?", m.id)
		}
		tokens[i] = out.IST
		return nil
	})
	return tokens, err
}

func newTOTPSecret() string {
	b := make([]byte, 20)
	rand.Read(b)
	return base32.StdEncoding.EncodeToString(b)
}

// seedMembers creates the organizations and members and reports the seed figures.
func seedMembers(ctx context.Context, s seeder, pop *population, members, perOrg int, progress io.Writer) (Seed, error) {
	start := time.Now()
	norgs := (members + perOrg - 1) / perOrg
	fmt.Fprintf(progress, "seeding %d organizations by %s\n", norgs, s.method())
	orgs, err := s.createOrganizations(ctx, norgs)
	if err != nil {
		return Seed{}, err
	}
	fmt.Fprintf(progress, "  seeded %d organizations in %.1fs\n", norgs, time.Since(start).Seconds())
	fmt.Fprintf(progress, "seeding %d members with TOTP and 10 codes each by %s\n", members, s.method())
	var mu sync.Mutex // HTTP seeding reports from many goroutines
	last := time.Now()
	err = s.enroll(ctx, pop, orgs, members, func(done int) {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(last) >= 2*time.Second || done == members {
			el := now.Sub(start).Seconds()
			rate := float64(done) / el
			fmt.Fprintf(progress, "  seeded %d/%d members, %.0f/s, %.0fs left\n", done, members, rate, float64(members-done)/rate)
			last = now
		}
	})
	if err != nil {
		return Seed{}, err
	}
	el := time.Since(start).Seconds()
	return Seed{Method: s.method(), Members: len(pop.members), Organizations: norgs, Seconds: round3(el), MembersPerSecond: round3(float64(len(pop.members)) / el)}, nil
}
