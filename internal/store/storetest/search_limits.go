package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sparekey/sparekey/internal/auth"
)

// Search inputs far larger than usual but valid: the API bounds a request body to 1 MiB, not
// the length of a list or the number of operands, so a store must answer them all, correctly,
// rather than run into its database's limits (bound parameters, expression depth, JSON depth).

// limitsSeed is two organizations that every filter tells apart; a has two members, two allowed
// and two claimed domains.
type limitsSeed struct {
	a, b         auth.Organization
	emailA       string
	emailB       string
	domA, domB   string
	claimA       string
	claimB       string
	fuzzyA       map[string]string // filter name → a substring only a matches
	fuzzyB       map[string]string
	listA, listB map[string]string // filter name → a list value only a (or b) matches
	secondA      map[string]string // filter name → a's second value of a list filter with sets
}

func (f *fixture) seedLimits(t *testing.T) limitsSeed {
	t.Helper()
	s := limitsSeed{
		emailA: "ann@alpha-" + short() + ".example", emailB: "bob@bravo-" + short() + ".example",
		domA: "alpha-" + short() + ".example", domB: "bravo-" + short() + ".example",
		claimA: "alpha-claimed-" + short() + ".example", claimB: "bravo-claimed-" + short() + ".example",
	}
	s.secondA = map[string]string{
		auth.FilterMemberEmails: "cat@" + s.domA, auth.FilterAllowedDomains: "second-" + s.domA, auth.FilterClaimedEmailDomains: "second-" + s.claimA,
	}
	s.a = f.createOrganization(t, func(o *auth.Organization) {
		o.Name, o.Slug = "Alpha "+short(), "alpha-"+short()
		o.EmailAllowedDomains = []string{s.domA, s.secondA[auth.FilterAllowedDomains]}
		o.ClaimedEmailDomains = []string{s.claimA, s.secondA[auth.FilterClaimedEmailDomains]}
	})
	s.b = f.createOrganization(t, func(o *auth.Organization) {
		o.Name, o.Slug = "Bravo "+short(), "bravo-"+short()
		o.EmailAllowedDomains, o.ClaimedEmailDomains = []string{s.domB}, []string{s.claimB}
	})
	f.createMember(t, s.a, func(m *auth.Member) { m.EmailAddress = s.emailA })
	f.createMember(t, s.a, func(m *auth.Member) { m.EmailAddress = s.secondA[auth.FilterMemberEmails] })
	f.createMember(t, s.b, func(m *auth.Member) { m.EmailAddress = s.emailB })
	s.listA = map[string]string{
		auth.FilterOrganizationIDs: s.a.ID, auth.FilterOrganizationSlugs: s.a.Slug, auth.FilterMemberEmails: s.emailA,
		auth.FilterAllowedDomains: s.domA, auth.FilterClaimedEmailDomains: s.claimA,
	}
	s.listB = map[string]string{
		auth.FilterOrganizationIDs: s.b.ID, auth.FilterOrganizationSlugs: s.b.Slug, auth.FilterMemberEmails: s.emailB,
		auth.FilterAllowedDomains: s.domB, auth.FilterClaimedEmailDomains: s.claimB,
	}
	s.fuzzyA = map[string]string{
		auth.FilterSlugFuzzy: "alpha-", auth.FilterNameFuzzy: auth.FoldCase("ALPHA "),
		auth.FilterMemberEmailFuzzy: "ann@", auth.FilterAllowedDomainFuzzy: s.domA[:10],
	}
	s.fuzzyB = map[string]string{
		auth.FilterSlugFuzzy: "bravo-", auth.FilterNameFuzzy: auth.FoldCase("BRAVO "),
		auth.FilterMemberEmailFuzzy: "bob@", auth.FilterAllowedDomainFuzzy: s.domB[:10],
	}
	return s
}

var listFilters = []string{auth.FilterOrganizationIDs, auth.FilterOrganizationSlugs, auth.FilterMemberEmails, auth.FilterAllowedDomains, auth.FilterClaimedEmailDomains}
var fuzzyFilters = []string{auth.FilterSlugFuzzy, auth.FilterNameFuzzy, auth.FilterMemberEmailFuzzy, auth.FilterAllowedDomainFuzzy}

// filler is n list values that match nothing, shaped like the filter's real values.
func filler(name string, n int) []string {
	out := make([]string, n)
	for i := range out {
		switch name {
		case auth.FilterOrganizationIDs:
			out[i] = newID("organization")
		case auth.FilterMemberEmails:
			out[i] = fmt.Sprintf("nobody-%d@example.com", i)
		default:
			out[i] = fmt.Sprintf("none-%d.example", i)
		}
	}
	return out
}

// searchExactly runs a search and checks that it finds exactly want, in order; with more than
// one, also the first page of one, since the count and the page are separate queries.
func (f *fixture) searchExactly(t *testing.T, what, operator string, filters []auth.OrganizationFilter, want ...auth.Organization) {
	t.Helper()
	q := auth.OrganizationQuery{Operator: operator, Filters: filters, Limit: 100}
	page, err := f.store.SearchOrganizations(f.ctx, f.project.ID, q)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if got, w := strings.Join(ids(page.Organizations), ","), strings.Join(ids(want), ","); got != w || page.Total != len(want) || page.More {
		t.Errorf("%s: got [%s] Total %d More %v, want [%s] %d false", what, got, page.Total, page.More, w, len(want))
	}
	if len(want) > 1 {
		q.Limit = 1
		page, err := f.store.SearchOrganizations(f.ctx, f.project.ID, q)
		if err != nil || len(page.Organizations) != 1 || page.Organizations[0].ID != want[0].ID || page.Total != len(want) || !page.More {
			t.Errorf("%s, limit 1: %v, Total %d More %v, want the first of %d", what, err, page.Total, page.More, len(want))
		}
	}
}

// deepMetadata is a JSON object nested depth levels deep.
func deepMetadata(depth int) map[string]any {
	m := map[string]any{"leaf": "bottom"}
	for range depth - 1 {
		m = map[string]any{"a": m}
	}
	return m
}

var searchLimitTests = []test{
	// Longer than SQLite's 32766 bound parameters, and no longer: under the race detector, which
	// the suite runs under in CI, a statement with a list this long takes seconds. Every list
	// filter binds its values the same way, so two of them (a column, a subquery) take the
	// longest lists, and the others lists of thousands.
	{"SearchOrganizations takes lists of 33000 values", func(t *testing.T, f *fixture) {
		const long, shorter = 33_000, 2_000
		s := f.seedLimits(t)
		for _, name := range listFilters {
			n := shorter
			if name == auth.FilterOrganizationIDs || name == auth.FilterMemberEmails {
				n = long
			}
			values := filler(name, n)
			values[n/2] = s.listA[name]
			f.searchExactly(t, fmt.Sprintf("%s: one match among %d", name, n), "OR", []auth.OrganizationFilter{{Name: name, Values: values}}, s.a)
			// Two lists at once, AND: b's value is in both, a's in one.
			n = shorter
			values, other := filler(name, n), filler(name, n)
			values[0], values[n-1], other[n/2] = s.listA[name], s.listB[name], s.listB[name]
			f.searchExactly(t, fmt.Sprintf("%s: AND of two lists of %d", name, n), "AND", []auth.OrganizationFilter{{Name: name, Values: values}, {Name: name, Values: other}}, s.b)
		}
	}},
	{"SearchOrganizations lists may hold values no row can hold", func(t *testing.T, f *fixture) {
		s := f.seedLimits(t)
		for _, name := range listFilters {
			odd := []string{"\x00", s.listA[name] + "\x00", "\xff\xfe", s.listA[name][:len(s.listA[name])-1] + "\xff", "", "%", "_", "' OR 1=1 --", strings.Repeat("x", 5000)}
			f.searchExactly(t, name+": odd values only", "OR", []auth.OrganizationFilter{{Name: name, Values: odd}})
			f.searchExactly(t, name+": odd values and one real", "OR", []auth.OrganizationFilter{{Name: name, Values: append(odd, s.listB[name])}}, s.b)
		}
	}},
	{"SearchOrganizations keeps each operand's meaning when it combines operands of one filter", func(t *testing.T, f *fixture) {
		s := f.seedLimits(t)
		list := func(name string, values ...string) auth.OrganizationFilter {
			return auth.OrganizationFilter{Name: name, Values: values}
		}
		for _, name := range listFilters {
			a, b := s.listA[name], s.listB[name]
			f.searchExactly(t, name+": AND of a and b", "AND", []auth.OrganizationFilter{list(name, a), list(name, b)})
			f.searchExactly(t, name+": OR of a and b", "OR", []auth.OrganizationFilter{list(name, a), list(name, b)}, s.inOrder(s.a, s.b)...)
			f.searchExactly(t, name+": AND of a-or-b and b", "AND", []auth.OrganizationFilter{list(name, a, b), list(name, "nothing", b)}, s.b)
			f.searchExactly(t, name+": AND with an empty list", "AND", []auth.OrganizationFilter{list(name, a, b), list(name)})
			f.searchExactly(t, name+": OR with an empty list", "OR", []auth.OrganizationFilter{list(name), list(name, b)}, s.b)
			if second, ok := s.secondA[name]; ok {
				// Each list may be met by a different member or domain of the organization.
				f.searchExactly(t, name+": AND met by two values of a", "AND", []auth.OrganizationFilter{list(name, a), list(name, b, second)}, s.a)
			}
		}
		for _, name := range fuzzyFilters {
			a, b := auth.OrganizationFilter{Name: name, Value: s.fuzzyA[name]}, auth.OrganizationFilter{Name: name, Value: s.fuzzyB[name]}
			f.searchExactly(t, name+": AND of a and b", "AND", []auth.OrganizationFilter{a, b})
			f.searchExactly(t, name+": OR of a and b", "OR", []auth.OrganizationFilter{a, b}, s.inOrder(s.a, s.b)...)
			f.searchExactly(t, name+": AND of a, twice", "AND", []auth.OrganizationFilter{a, a}, s.a)
			f.searchExactly(t, name+": OR of a, a value no row holds and b", "OR", []auth.OrganizationFilter{a, {Name: name, Value: "\xff"}, b}, s.inOrder(s.a, s.b)...)
			f.searchExactly(t, name+": AND of a and a value no row holds", "AND", []auth.OrganizationFilter{a, {Name: name, Value: "\xff"}})
		}
		// Filters of different names still combine with the operator.
		f.searchExactly(t, "ids of both AND a slug of b", "AND", []auth.OrganizationFilter{list(auth.FilterOrganizationIDs, s.a.ID, s.b.ID), {Name: auth.FilterSlugFuzzy, Value: "bravo-"}}, s.b)
		f.searchExactly(t, "ids of a OR a slug of b", "OR", []auth.OrganizationFilter{list(auth.FilterOrganizationIDs, s.a.ID), {Name: auth.FilterSlugFuzzy, Value: "bravo-"}}, s.inOrder(s.a, s.b)...)
		f.searchExactly(t, "a's id and email of b", "AND", []auth.OrganizationFilter{list(auth.FilterOrganizationIDs, s.a.ID), list(auth.FilterMemberEmails, s.emailB), list(auth.FilterOrganizationIDs, s.a.ID, s.b.ID)})
	}},
	{"SearchOrganizations combines thousands of operands with AND and with OR", func(t *testing.T, f *fixture) {
		s := f.seedLimits(t)
		const n = 1200 // past SQLite's expression depth of 1000, and far past what PostgreSQL plans as joins
		// operand i is a filter of kind i (cycling through every filter) that matches a, and
		// also b when both is set.
		fuzzyBoth := map[string]string{auth.FilterSlugFuzzy: "-", auth.FilterNameFuzzy: " ", auth.FilterMemberEmailFuzzy: "@", auth.FilterAllowedDomainFuzzy: ".example"}
		operand := func(i int, both bool) auth.OrganizationFilter {
			k := i % (len(listFilters) + len(fuzzyFilters))
			if k >= len(listFilters) {
				name := fuzzyFilters[k-len(listFilters)]
				if both {
					return auth.OrganizationFilter{Name: name, Value: fuzzyBoth[name]}
				}
				return auth.OrganizationFilter{Name: name, Value: s.fuzzyA[name]}
			}
			name := listFilters[k]
			values := []string{fmt.Sprintf("unmatched-%d", i), s.listA[name]}
			if both {
				values = append(values, s.listB[name])
			}
			return auth.OrganizationFilter{Name: name, Values: values}
		}
		var onlyA, both, none []auth.OrganizationFilter
		for i := range n {
			onlyA = append(onlyA, operand(i, false))
			both = append(both, operand(i, true))
			none = append(none, auth.OrganizationFilter{Name: listFilters[i%len(listFilters)], Values: []string{fmt.Sprintf("unmatched-%d", i)}})
		}
		f.searchExactly(t, "AND of operands that all match a", "AND", onlyA, s.a)
		f.searchExactly(t, "AND of operands that all match both", "AND", both, s.inOrder(s.a, s.b)...)
		f.searchExactly(t, "AND with one operand that fails a", "AND", append(onlyA[:n-1:n-1], auth.OrganizationFilter{Name: auth.FilterOrganizationIDs, Values: []string{s.b.ID}}))
		f.searchExactly(t, "AND ending with a match_none", "AND", append(both[:n-1:n-1], auth.OrganizationFilter{Name: auth.FilterMatchNone}))
		f.searchExactly(t, "OR of operands that match nothing", "OR", none)
		f.searchExactly(t, "OR of operands of which one, in the middle, matches both", "OR", append(append(none[:n/2:n/2], operand(1, true)), none[n/2:]...), s.inOrder(s.a, s.b)...)
		f.searchExactly(t, "OR ending with an operand for b", "OR", append(none[:n-1:n-1], auth.OrganizationFilter{Name: auth.FilterOrganizationSlugs, Values: []string{s.b.Slug}}), s.b)
		f.searchExactly(t, "OR of operands that match a", "OR", onlyA, s.a)
	}},
	{"an organization's deeply nested trusted_metadata breaks nothing", func(t *testing.T, f *fixture) {
		s := f.seedLimits(t)
		deep := f.createOrganization(t, func(o *auth.Organization) {
			o.Name, o.Slug = "Deep "+short(), "deep-"+short()
			o.TrustedMetadata = deepMetadata(1500)
			o.EmailAllowedDomains, o.ClaimedEmailDomains = []string{"deep.example", s.domA}, []string{"deep.example"}
		})
		got, err := f.store.Organization(f.ctx, f.project.ID, deep.ID)
		must(t, err, "Organization")
		wantEqual(t, got, deep, "Organization with deep metadata")

		for _, tc := range []struct {
			name   string
			filter auth.OrganizationFilter
			want   []auth.Organization
		}{
			{"allowed_domains of another organization", auth.OrganizationFilter{Name: auth.FilterAllowedDomains, Values: []string{s.domB}}, []auth.Organization{s.b}},
			{"allowed_domains of both", auth.OrganizationFilter{Name: auth.FilterAllowedDomains, Values: []string{s.domA}}, s.inOrder(s.a, deep)},
			{"claimed_email_domains", auth.OrganizationFilter{Name: auth.FilterClaimedEmailDomains, Values: []string{"deep.example", s.claimB}}, s.inOrder(s.b, deep)},
			{"allowed_domain_fuzzy", auth.OrganizationFilter{Name: auth.FilterAllowedDomainFuzzy, Value: "deep.ex"}, []auth.Organization{deep}},
			{"allowed_domain_fuzzy of every one", auth.OrganizationFilter{Name: auth.FilterAllowedDomainFuzzy, Value: ".example"}, s.inOrder(s.a, s.b, deep)},
			{"organization_name_fuzzy", auth.OrganizationFilter{Name: auth.FilterNameFuzzy, Value: "deep "}, []auth.Organization{deep}},
		} {
			f.searchExactly(t, tc.name, "AND", []auth.OrganizationFilter{tc.filter}, tc.want...)
		}
		page, err := f.store.SearchOrganizations(f.ctx, f.project.ID, auth.OrganizationQuery{Operator: "AND", Filters: []auth.OrganizationFilter{{Name: auth.FilterOrganizationIDs, Values: []string{deep.ID}}}, Limit: 10})
		must(t, err, "SearchOrganizations(the deep one)")
		wantEqual(t, page.Organizations, []auth.Organization{deep}, "search result with deep metadata")

		want := deep
		want.TrustedMetadata = deepMetadata(1499)
		want.EmailAllowedDomains = []string{"deeper.example"}
		want.UpdatedAt = f.now
		updated, err := f.store.UpdateOrganization(f.ctx, f.project.ID, deep.ID, func(o *auth.Organization) error {
			o.TrustedMetadata, o.EmailAllowedDomains, o.UpdatedAt = want.TrustedMetadata, want.EmailAllowedDomains, want.UpdatedAt
			return nil
		})
		must(t, err, "UpdateOrganization")
		wantEqual(t, updated, want, "UpdateOrganization result")
		got, err = f.store.Organization(f.ctx, f.project.ID, deep.Slug)
		must(t, err, "Organization after the update")
		wantEqual(t, got, want, "Organization after the update")
		f.searchExactly(t, "allowed_domains after the update", "AND", []auth.OrganizationFilter{{Name: auth.FilterAllowedDomains, Values: []string{"deeper.example", "deep.example"}}}, want)

		// The metadata is the organization's own: other reads and the cascade still work.
		m := f.createMember(t, deep)
		must(t, f.store.DeleteOrganization(f.ctx, f.project.ID, deep.ID), "DeleteOrganization")
		_, err = f.store.Member(f.ctx, f.project.ID, "", m.ID)
		wantErr(t, err, auth.ErrMemberNotFound, "the deep organization's member after the delete")
		f.searchExactly(t, "allowed_domain_fuzzy after the delete", "AND", []auth.OrganizationFilter{{Name: auth.FilterAllowedDomainFuzzy, Value: ".example"}}, s.inOrder(s.a, s.b)...)
	}},
}

// inOrder returns orgs in result order: created_at, then id.
func (s limitsSeed) inOrder(orgs ...auth.Organization) []auth.Organization {
	out := append([]auth.Organization(nil), orgs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].CreatedAt.Before(out[i].CreatedAt) || out[j].CreatedAt.Equal(out[i].CreatedAt) && out[j].ID < out[i].ID {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
