package storetest

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sparekey/sparekey/internal/auth"
)

// searchSeed is five organizations built so every filter tells them apart, with delta and
// epsilon created in the same second so their ids decide their order, and a decoy in another
// project that matches every filter.
type searchSeed struct {
	a, b, c, delta, epsilon auth.Organization
	tie                     [2]auth.Organization // delta and epsilon in id order
	all                     []auth.Organization  // in result order: created_at, then id
	decoy                   auth.Organization
}

func (f *fixture) seedSearch(t *testing.T) searchSeed {
	t.Helper()
	org := func(name, slug string, age time.Duration, allowed, claimed []string, emails ...string) auth.Organization {
		o := f.createOrganization(t, func(o *auth.Organization) {
			o.Name, o.Slug = name, slug
			o.EmailAllowedDomains, o.ClaimedEmailDomains = allowed, claimed
			o.CreatedAt, o.UpdatedAt = f.now.Add(-age), f.now.Add(-age)
		})
		for _, e := range emails {
			f.createMember(t, o, func(m *auth.Member) { m.EmailAddress = e })
		}
		return o
	}
	var s searchSeed
	// Created out of order so that insertion order cannot pass for created_at order.
	s.c = org("GAMMA Labs ÜBERWELT", "Gamma-ACME", 3*time.Hour, nil, []string{"gamma.dev"}, "carol@gamma.dev")
	s.a = org("Acme Corporation", "acme-corp", 5*time.Hour, []string{"acme.com"}, []string{"acme.com"}, "alice@acme.com")
	// The domain folds email domains before storing them and folds filter values alike
	// (auth.FoldCase), so the store compares them exactly.
	s.delta = org("Delta", "delta", 2*time.Hour, []string{auth.FoldCase("Delta.ORG")}, nil)
	s.b = org("Beta Industries", "beta", 4*time.Hour, []string{"beta.io", "acme.com"}, []string{"beta.io"}, "bob@beta.io", "eve@acme.com")
	s.epsilon = org("Epsilon acme", "epsilon", 2*time.Hour, []string{"sub.acme.com", auth.FoldCase("ÜBER.Example")}, []string{auth.FoldCase("ÜBER.Example")}, "dan@epsilon.net")
	s.tie = [2]auth.Organization{s.delta, s.epsilon}
	if s.epsilon.ID < s.delta.ID {
		s.tie = [2]auth.Organization{s.epsilon, s.delta}
	}
	s.all = []auth.Organization{s.a, s.b, s.c, s.tie[0], s.tie[1]}

	other := f.otherProject(t)
	s.decoy = f.createOrganization(t, inProject(other), func(o *auth.Organization) {
		o.Name, o.Slug = "Acme GAMMA Beta Delta Epsilon", "acme-corp"
		o.EmailAllowedDomains = []string{"acme.com", "beta.io", "delta.org", "sub.acme.com"}
		o.ClaimedEmailDomains = []string{"acme.com", "beta.io", "gamma.dev"}
		o.CreatedAt = f.now.Add(-6 * time.Hour)
	})
	for _, e := range []string{"alice@acme.com", "eve@acme.com", "carol@gamma.dev", "dan@epsilon.net"} {
		f.createMember(t, s.decoy, func(m *auth.Member) { m.EmailAddress = e })
	}
	return s
}

func ids(orgs []auth.Organization) []string {
	out := make([]string, len(orgs))
	for i, o := range orgs {
		out[i] = o.ID
	}
	return out
}

func names(s searchSeed, orgIDs []string) string {
	byID := map[string]string{s.a.ID: "a", s.b.ID: "b", s.c.ID: "c", s.delta.ID: "delta", s.epsilon.ID: "epsilon", s.decoy.ID: "decoy"}
	out := make([]string, len(orgIDs))
	for i, id := range orgIDs {
		if n, ok := byID[id]; ok {
			out[i] = n
		} else {
			out[i] = id
		}
	}
	return "[" + strings.Join(out, " ") + "]"
}

// inOrder returns the seed organizations among orgs in result order.
func (s searchSeed) inOrder(orgs ...auth.Organization) []auth.Organization {
	var out []auth.Organization
	for _, o := range s.all {
		for _, w := range orgs {
			if w.ID == o.ID {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

var searchTests = []test{
	{"SearchOrganizations applies every filter, AND and OR, inside the project", func(t *testing.T, f *fixture) {
		s := f.seedSearch(t)
		a, b, c, d, e := s.a, s.b, s.c, s.delta, s.epsilon
		list := func(name string, values ...string) auth.OrganizationFilter {
			return auth.OrganizationFilter{Name: name, Values: values}
		}
		fuzzy := func(name, value string) auth.OrganizationFilter {
			return auth.OrganizationFilter{Name: name, Value: value}
		}
		matchAll, matchNone := auth.OrganizationFilter{Name: auth.FilterMatchAll}, auth.OrganizationFilter{Name: auth.FilterMatchNone}

		for _, tc := range []struct {
			name     string
			operator string
			filters  []auth.OrganizationFilter
			want     []auth.Organization
		}{
			{"no filters match all", "AND", nil, s.all},
			{"no filters match all (OR)", "OR", nil, s.all},
			{"organization_ids", "AND", []auth.OrganizationFilter{list(auth.FilterOrganizationIDs, e.ID, b.ID, newID("organization"), s.decoy.ID)}, s.inOrder(b, e)},
			{"organization_ids empty", "AND", []auth.OrganizationFilter{list(auth.FilterOrganizationIDs)}, nil},
			{"organization_slugs", "AND", []auth.OrganizationFilter{list(auth.FilterOrganizationSlugs, "delta", "beta", "nope", "acme-corp")}, s.inOrder(a, b, d)},
			{"organization_slugs exact", "AND", []auth.OrganizationFilter{list(auth.FilterOrganizationSlugs, "Gamma-ACME", "delt")}, s.inOrder(c)},
			{"organization_slugs empty", "AND", []auth.OrganizationFilter{list(auth.FilterOrganizationSlugs)}, nil},
			{"organization_slug_fuzzy is a case-insensitive substring", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterSlugFuzzy, "acme")}, s.inOrder(a, c)},
			{"organization_slug_fuzzy no match", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterSlugFuzzy, "zeta")}, nil},
			{"organization_name_fuzzy is a case-insensitive substring", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterNameFuzzy, "acme")}, s.inOrder(a, e)},
			{"fuzzy values are text, not patterns", "OR", []auth.OrganizationFilter{fuzzy(auth.FilterNameFuzzy, "%"), fuzzy(auth.FilterSlugFuzzy, "_"), fuzzy(auth.FilterMemberEmailFuzzy, "%@%"), fuzzy(auth.FilterAllowedDomainFuzzy, "*")}, nil},
			{"organization_name_fuzzy upper-case name", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterNameFuzzy, "gamma l")}, s.inOrder(c)},
			{"organization_name_fuzzy folds non-ASCII case", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterNameFuzzy, auth.FoldCase("überwelt"))}, s.inOrder(c)},
			{"member_emails", "AND", []auth.OrganizationFilter{list(auth.FilterMemberEmails, "eve@acme.com", "carol@gamma.dev", "nobody@acme.com")}, s.inOrder(b, c)},
			{"member_emails empty", "AND", []auth.OrganizationFilter{list(auth.FilterMemberEmails)}, nil},
			{"member_email_fuzzy", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterMemberEmailFuzzy, "acme.com")}, s.inOrder(a, b)},
			{"member_email_fuzzy needs a member", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterMemberEmailFuzzy, "@")}, s.inOrder(a, b, c, e)},
			{"allowed_domains is exact", "AND", []auth.OrganizationFilter{list(auth.FilterAllowedDomains, "acme.com")}, s.inOrder(a, b)},
			{"allowed_domains any of", "AND", []auth.OrganizationFilter{list(auth.FilterAllowedDomains, "delta.org", "sub.acme.com")}, s.inOrder(d, e)},
			{"allowed_domains empty", "AND", []auth.OrganizationFilter{list(auth.FilterAllowedDomains)}, nil},
			{"allowed_domains folds non-ASCII case", "AND", []auth.OrganizationFilter{list(auth.FilterAllowedDomains, auth.FoldCase("ÜBER.example"))}, s.inOrder(e)},
			{"claimed_email_domains folds non-ASCII case", "AND", []auth.OrganizationFilter{list(auth.FilterClaimedEmailDomains, auth.FoldCase("über.EXAMPLE"))}, s.inOrder(e)},
			{"allowed_domain_fuzzy folds non-ASCII case", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterAllowedDomainFuzzy, auth.FoldCase("ÜBER"))}, s.inOrder(e)},
			{"allowed_domain_fuzzy folds ASCII case", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterAllowedDomainFuzzy, auth.FoldCase("TA.OR"))}, s.inOrder(d)},
			{"claimed_email_domains", "AND", []auth.OrganizationFilter{list(auth.FilterClaimedEmailDomains, "beta.io", "gamma.dev")}, s.inOrder(b, c)},
			{"claimed_email_domains is not allowed_domains", "AND", []auth.OrganizationFilter{list(auth.FilterClaimedEmailDomains, "delta.org")}, nil},
			{"claimed_email_domains empty", "AND", []auth.OrganizationFilter{list(auth.FilterClaimedEmailDomains)}, nil},
			{"allowed_domain_fuzzy", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterAllowedDomainFuzzy, "acme")}, s.inOrder(a, b, e)},
			{"allowed_domain_fuzzy ignores claimed domains", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterAllowedDomainFuzzy, "gamma")}, nil},
			{"match_all", "AND", []auth.OrganizationFilter{matchAll}, s.all},
			{"match_none", "AND", []auth.OrganizationFilter{matchNone}, nil},
			{"AND of two", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterNameFuzzy, "acme"), fuzzy(auth.FilterAllowedDomainFuzzy, "acme")}, s.inOrder(a, e)},
			{"AND of three", "AND", []auth.OrganizationFilter{fuzzy(auth.FilterAllowedDomainFuzzy, "acme"), list(auth.FilterMemberEmails, "bob@beta.io", "alice@acme.com"), fuzzy(auth.FilterSlugFuzzy, "bet")}, s.inOrder(b)},
			{"AND with match_all", "AND", []auth.OrganizationFilter{matchAll, list(auth.FilterOrganizationSlugs, "delta")}, s.inOrder(d)},
			{"AND with match_none", "AND", []auth.OrganizationFilter{matchNone, matchAll}, nil},
			{"AND with an empty list", "AND", []auth.OrganizationFilter{list(auth.FilterOrganizationIDs), matchAll}, nil},
			{"OR of two", "OR", []auth.OrganizationFilter{list(auth.FilterOrganizationIDs, d.ID), list(auth.FilterMemberEmails, "carol@gamma.dev")}, s.inOrder(c, d)},
			{"OR with match_none", "OR", []auth.OrganizationFilter{matchNone, list(auth.FilterOrganizationSlugs, "beta")}, s.inOrder(b)},
			{"OR with an empty list", "OR", []auth.OrganizationFilter{list(auth.FilterMemberEmails), fuzzy(auth.FilterNameFuzzy, "delta")}, s.inOrder(d)},
			{"OR with match_all", "OR", []auth.OrganizationFilter{matchAll, matchNone}, s.all},
			{"OR of overlapping filters lists each once", "OR", []auth.OrganizationFilter{fuzzy(auth.FilterAllowedDomainFuzzy, "acme"), list(auth.FilterAllowedDomains, "acme.com"), fuzzy(auth.FilterMemberEmailFuzzy, "acme")}, s.inOrder(a, b, e)},
		} {
			q := auth.OrganizationQuery{Operator: tc.operator, Filters: tc.filters, Limit: 100}
			page, err := f.store.SearchOrganizations(f.ctx, f.project.ID, q)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if got, want := ids(page.Organizations), ids(tc.want); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s: got %s, want %s", tc.name, names(s, got), names(s, want))
			}
			if page.Total != len(tc.want) || page.More {
				t.Errorf("%s: Total %d More %v, want %d false", tc.name, page.Total, page.More, len(tc.want))
			}
		}

		// Results are whole organizations.
		page, err := f.store.SearchOrganizations(f.ctx, f.project.ID, auth.OrganizationQuery{Operator: "AND", Limit: 100})
		must(t, err, "SearchOrganizations")
		wantEqual(t, page.Organizations, s.all, "SearchOrganizations results")
		page, err = f.store.SearchOrganizations(f.ctx, s.decoy.ProjectID, auth.OrganizationQuery{Operator: "AND", Limit: 100})
		must(t, err, "SearchOrganizations(other project)")
		wantEqual(t, page.Organizations, []auth.Organization{s.decoy}, "SearchOrganizations in the decoy's project")
		page, err = f.store.SearchOrganizations(f.ctx, newID("project"), auth.OrganizationQuery{Operator: "AND", Limit: 100})
		must(t, err, "SearchOrganizations(unknown project)")
		if len(page.Organizations) != 0 || page.Total != 0 || page.More {
			t.Errorf("SearchOrganizations(unknown project) = %d organizations, Total %d, More %v; want none", len(page.Organizations), page.Total, page.More)
		}
	}},
	{"SearchOrganizations pages by created_at then id, Total ignores the cursor", func(t *testing.T, f *fixture) {
		s := f.seedSearch(t)
		for _, tc := range []struct {
			name    string
			filters []auth.OrganizationFilter
			want    []auth.Organization
		}{
			{"all", nil, s.all},
			{"filtered", []auth.OrganizationFilter{{Name: auth.FilterAllowedDomainFuzzy, Value: "acme"}}, s.inOrder(s.a, s.b, s.epsilon)},
		} {
			for limit := 1; limit <= len(tc.want)+1; limit++ {
				var got []auth.Organization
				var after *auth.OrganizationCursor
				for pages := 1; ; pages++ {
					page, err := f.store.SearchOrganizations(f.ctx, f.project.ID, auth.OrganizationQuery{Operator: "AND", Filters: tc.filters, Limit: limit, After: after})
					must(t, err, "SearchOrganizations")
					what := fmt.Sprintf("%s, limit %d, page %d", tc.name, limit, pages)
					if page.Total != len(tc.want) {
						t.Errorf("%s: Total %d, want %d", what, page.Total, len(tc.want))
					}
					rest := len(tc.want) - len(got)
					if wantLen := min(limit, rest); len(page.Organizations) != wantLen {
						t.Fatalf("%s: %d organizations, want %d", what, len(page.Organizations), wantLen)
					}
					if wantMore := rest > limit; page.More != wantMore {
						t.Errorf("%s: More %v, want %v", what, page.More, wantMore)
					}
					got = append(got, page.Organizations...)
					if !page.More {
						break
					}
					last := page.Organizations[len(page.Organizations)-1]
					after = &auth.OrganizationCursor{CreatedAt: last.CreatedAt, ID: last.ID}
				}
				wantEqual(t, got, tc.want, fmt.Sprintf("%s, limit %d, all pages", tc.name, limit))
			}
		}

		// A cursor between the two organizations created in the same second.
		tie := &auth.OrganizationCursor{CreatedAt: s.tie[0].CreatedAt, ID: s.tie[0].ID}
		page, err := f.store.SearchOrganizations(f.ctx, f.project.ID, auth.OrganizationQuery{Operator: "AND", Limit: 10, After: tie})
		must(t, err, "SearchOrganizations(inside a tie)")
		if got := ids(page.Organizations); len(got) != 1 || got[0] != s.tie[1].ID || page.Total != 5 || page.More {
			t.Errorf("inside a tie: got %s Total %d More %v, want %s 5 false", names(s, got), page.Total, page.More, names(s, []string{s.tie[1].ID}))
		}
		// A cursor need not name an organization that exists.
		between := &auth.OrganizationCursor{CreatedAt: f.now.Add(-3*time.Hour - 30*time.Minute), ID: newID("organization")}
		page, err = f.store.SearchOrganizations(f.ctx, f.project.ID, auth.OrganizationQuery{Operator: "AND", Limit: 2, After: between})
		must(t, err, "SearchOrganizations(after a gap)")
		if got, want := ids(page.Organizations), ids([]auth.Organization{s.c, s.tie[0]}); strings.Join(got, ",") != strings.Join(want, ",") || page.Total != 5 || !page.More {
			t.Errorf("after a gap: got %s Total %d More %v, want %s 5 true", names(s, got), page.Total, page.More, names(s, want))
		}
		// Past the end.
		end := &auth.OrganizationCursor{CreatedAt: s.tie[1].CreatedAt, ID: s.tie[1].ID}
		page, err = f.store.SearchOrganizations(f.ctx, f.project.ID, auth.OrganizationQuery{Operator: "AND", Limit: 2, After: end})
		must(t, err, "SearchOrganizations(after the last)")
		if len(page.Organizations) != 0 || page.Total != 5 || page.More {
			t.Errorf("after the last: %d organizations Total %d More %v, want none 5 false", len(page.Organizations), page.Total, page.More)
		}
	}},
	{"SearchOrganizations orders many same-second organizations by id", func(t *testing.T, f *fixture) {
		var want []auth.Organization
		for range 12 {
			want = append(want, f.createOrganization(t, func(o *auth.Organization) { o.CreatedAt = f.now }))
		}
		sort.Slice(want, func(i, j int) bool { return want[i].ID < want[j].ID })
		var got []auth.Organization
		var after *auth.OrganizationCursor
		for {
			page, err := f.store.SearchOrganizations(f.ctx, f.project.ID, auth.OrganizationQuery{Operator: "OR", Limit: 5, After: after})
			must(t, err, "SearchOrganizations")
			got = append(got, page.Organizations...)
			if !page.More || len(page.Organizations) == 0 {
				break
			}
			last := page.Organizations[len(page.Organizations)-1]
			after = &auth.OrganizationCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if strings.Join(ids(got), ",") != strings.Join(ids(want), ",") {
			t.Errorf("paged same-second organizations:\n got %v\nwant %v", ids(got), ids(want))
		}
	}},
}
