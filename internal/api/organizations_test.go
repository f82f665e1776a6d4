package api_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const orgsPath = "/v1/b2b/organizations"

// TestOrganizationsCreate: POST /v1/b2b/organizations (§6.2, §5.1).
func TestOrganizationsCreate(t *testing.T) {
	s := sharedServer(t)
	taken := s.createOrg(t, map[string]any{"organization_external_id": fmt.Sprintf("taken-ext-%d", s.next())})
	takenExt := s.get(t, orgsPath+"/"+taken.ID).ok(t).str(t, "organization.organization_external_id")
	body := func(extra map[string]any) map[string]any {
		b := map[string]any{"organization_name": fmt.Sprintf("Create %d", s.next())}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}

	for _, tc := range []struct {
		name       string
		body       map[string]any
		wantStatus int
		wantType   string
	}{
		{"no name", map[string]any{}, 400, "organization_name_missing"},
		{"empty name", body(map[string]any{"organization_name": ""}), 400, "organization_name_missing"},
		{"null name", body(map[string]any{"organization_name": nil}), 400, "organization_name_missing"},
		{"missing name beats a bad slug", map[string]any{"organization_slug": "!"}, 400, "organization_name_missing"},
		{"name a number", body(map[string]any{"organization_name": 7}), 400, "bad_request"},
		{"trusted_metadata an array", body(map[string]any{"trusted_metadata": []any{}}), 400, "bad_request"},
		{"allowed_mfa_methods a string", body(map[string]any{"allowed_mfa_methods": "totp"}), 400, "bad_request"},
		{"allowed_oauth_tenants holding a string", body(map[string]any{"allowed_oauth_tenants": map[string]any{"slack": "T1"}}), 400, "bad_request"},
		{"role assignments an object", body(map[string]any{"rbac_email_implicit_role_assignments": map[string]any{}}), 400, "bad_request"},
		{"name of 129 characters", body(map[string]any{"organization_name": strings.Repeat("n", 129)}), 400, "invalid_organization_name"},
		{"slug of one character", body(map[string]any{"organization_slug": "a"}), 400, "invalid_organization_slug"},
		{"slug with a space", body(map[string]any{"organization_slug": "a b"}), 400, "invalid_organization_slug"},
		{"slug with a non-ASCII letter", body(map[string]any{"organization_slug": "zürich"}), 400, "invalid_organization_slug"},
		{"slug of 129 characters", body(map[string]any{"organization_slug": strings.Repeat("s", 129)}), 400, "invalid_organization_slug"},
		{"empty slug", body(map[string]any{"organization_slug": ""}), 400, "invalid_organization_slug"},
		{"slug taken", body(map[string]any{"organization_slug": taken.Slug}), 400, "organization_slug_already_used"},
		{"external id with a space", body(map[string]any{"organization_external_id": "a b"}), 400, "invalid_organization_external_id"},
		{"external id of 129 characters", body(map[string]any{"organization_external_id": strings.Repeat("e", 129)}), 400, "invalid_organization_external_id"},
		{"external id taken", body(map[string]any{"organization_external_id": takenExt}), 400, "organization_external_id_already_used"},
		{"mfa_policy unknown", body(map[string]any{"mfa_policy": "SOMETIMES"}), 400, "invalid_organization_mfa_policy"},
		{"mfa_policy lowercase", body(map[string]any{"mfa_policy": "optional"}), 400, "invalid_organization_mfa_policy"},
		{"allowed_mfa_methods item unknown", body(map[string]any{"allowed_mfa_methods": []string{"totp", "email"}}), 400, "invalid_organization_allowed_mfa_methods"},
		{"RESTRICTED without allowed methods", body(map[string]any{"mfa_methods": "RESTRICTED"}), 400, "allowed_mfa_methods_required_for_restricted"},
		{"RESTRICTED with [] allowed", body(map[string]any{"mfa_methods": "RESTRICTED", "allowed_mfa_methods": []string{}}), 400, "allowed_mfa_methods_required_for_restricted"},
		{"role assignment of an unknown role", body(map[string]any{"rbac_email_implicit_role_assignments": []any{map[string]any{"domain": "x.com", "role_id": "owner"}}}), 400, "invalid_rbac_role_id"},
		{"mfa_methods unknown", body(map[string]any{"mfa_methods": "SOME"}), 400, "invalid_request_value"},
		{"auth_methods unknown", body(map[string]any{"auth_methods": "NOT_ALLOWED"}), 400, "invalid_request_value"},
		{"allowed_auth_methods item unknown", body(map[string]any{"allowed_auth_methods": []string{"password", "fax"}}), 400, "invalid_request_value"},
		{"sso_jit_provisioning unknown", body(map[string]any{"sso_jit_provisioning": "MAYBE"}), 400, "invalid_request_value"},
		{"email_invites unknown", body(map[string]any{"email_invites": "YES"}), 400, "invalid_request_value"},
		{"first-party apps type unknown", body(map[string]any{"first_party_connected_apps_allowed_type": "X"}), 400, "invalid_request_value"},
		{"third-party apps type unknown", body(map[string]any{"third_party_connected_apps_allowed_type": "X"}), 400, "invalid_request_value"},
		{"email_jit_provisioning ALL_ALLOWED", body(map[string]any{"email_jit_provisioning": "ALL_ALLOWED"}), 400, "invalid_request_value"},
		{"oauth_tenant_jit_provisioning ALL_ALLOWED", body(map[string]any{"oauth_tenant_jit_provisioning": "ALL_ALLOWED"}), 400, "invalid_request_value"},
		{"logo URL not http(s)", body(map[string]any{"organization_logo_url": "ftp://example.com/logo.png"}), 400, "invalid_request_value"},
		{"logo URL relative", body(map[string]any{"organization_logo_url": "/logo.png"}), 400, "invalid_request_value"},
		{"oauth tenant provider unknown", body(map[string]any{"allowed_oauth_tenants": map[string]any{"google": []string{"x"}}}), 400, "invalid_request_value"},
		{"sso_default_connection_id set", body(map[string]any{"sso_default_connection_id": "sso-connection-test-1"}), 400, "invalid_request_value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.post(t, orgsPath, tc.body).fails(t, tc.wantStatus, tc.wantType)
			if name, _ := tc.body["organization_name"].(string); name != "" {
				s.post(t, orgsPath+"/search", map[string]any{"query": map[string]any{"operator": "AND", "operands": []any{
					map[string]any{"filter_name": "organization_name_fuzzy", "filter_value": name},
				}}}).ok(t).want(t, "results_metadata.total", 0)
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		name := fmt.Sprintf("Defaults %d", s.next())
		now := s.Clock.Now()
		r := s.post(t, orgsPath, map[string]any{"organization_name": name}).ok(t)
		if len(r.Body) != 3 {
			t.Errorf("create answers %d keys, want request_id, organization, status_code", len(r.Body))
		}
		o := r.at("organization").(map[string]any)
		if !idPattern("organization").MatchString(o["organization_id"].(string)) {
			t.Errorf("organization_id %v", o["organization_id"])
		}
		want := map[string]any{
			"organization_id": o["organization_id"], "organization_name": name, "organization_slug": strings.ToLower(strings.ReplaceAll(name, " ", "-")),
			"organization_logo_url": "", "organization_external_id": "", "trusted_metadata": map[string]any{},
			"mfa_policy": "OPTIONAL", "mfa_methods": "ALL_ALLOWED", "allowed_mfa_methods": []any{},
			"auth_methods": "ALL_ALLOWED", "allowed_auth_methods": []any{},
			"sso_jit_provisioning": "ALL_ALLOWED", "sso_jit_provisioning_allowed_connections": []any{},
			"email_invites": "ALL_ALLOWED", "email_jit_provisioning": "NOT_ALLOWED", "oauth_tenant_jit_provisioning": "NOT_ALLOWED",
			"first_party_connected_apps_allowed_type": "ALL_ALLOWED", "third_party_connected_apps_allowed_type": "ALL_ALLOWED",
			"allowed_first_party_connected_apps": []any{}, "allowed_third_party_connected_apps": []any{},
			"email_allowed_domains": []any{}, "claimed_email_domains": []any{}, "rbac_email_implicit_role_assignments": []any{},
			"allowed_oauth_tenants": map[string]any{}, "sso_active_connections": []any{}, "custom_roles": []any{},
			"sso_default_connection_id": nil, "scim_active_connection": nil,
			"created_at": ts(now), "updated_at": ts(now),
		}
		if got, w := canon(o), canon(want); got != w {
			t.Errorf("organization\n got %s\nwant %s", got, w)
		}
	})
	t.Run("every writable field", func(t *testing.T) {
		n := s.next()
		fields := map[string]any{
			"organization_name": fmt.Sprintf("Everything %d", n), "organization_slug": fmt.Sprintf("every.thing_%d~x", n),
			"organization_logo_url": "https://example.com/logo.png", "organization_external_id": fmt.Sprintf("ext|%d.x_y-z", n),
			"trusted_metadata": map[string]any{"plan": "pro", "seats": 5},
			"mfa_policy":       "REQUIRED_FOR_ALL", "mfa_methods": "RESTRICTED", "allowed_mfa_methods": []string{"totp", "sms_otp"},
			"auth_methods": "RESTRICTED", "allowed_auth_methods": []string{"password", "sso", "magic_link", "email_otp", "google_oauth", "microsoft_oauth", "slack_oauth", "github_oauth", "hubspot_oauth"},
			"sso_jit_provisioning": "NOT_ALLOWED", "sso_jit_provisioning_allowed_connections": []string{"c1"},
			"email_invites": "RESTRICTED", "email_jit_provisioning": "RESTRICTED", "oauth_tenant_jit_provisioning": "RESTRICTED",
			"first_party_connected_apps_allowed_type": "NOT_ALLOWED", "third_party_connected_apps_allowed_type": "RESTRICTED",
			"allowed_first_party_connected_apps": []string{"app1"}, "allowed_third_party_connected_apps": []string{"app2"},
			"email_allowed_domains": []string{"example.com"}, "claimed_email_domains": []string{"example.org"},
			"rbac_email_implicit_role_assignments": []any{map[string]any{"domain": "example.com", "role_id": "stytch_admin"}},
			"allowed_oauth_tenants":                map[string]any{"slack": []string{"T1"}, "hubspot": []string{}, "github": []string{"g"}},
			"sso_default_connection_id":            "",
		}
		r := s.post(t, orgsPath, fields).ok(t)
		for k, v := range fields {
			if k == "sso_default_connection_id" {
				r.want(t, "organization."+k, nil) // "" means none
				continue
			}
			r.want(t, "organization."+k, v)
		}
		got := s.get(t, orgsPath+"/"+r.str(t, "organization.organization_id")).ok(t)
		got.want(t, "organization", r.at("organization"))
	})
	t.Run("derived slugs", func(t *testing.T) {
		n := s.next()
		for _, tc := range []struct {
			name string
			slug *regexp.Regexp
		}{
			{fmt.Sprintf("Acme Corp! %d", n), regexp.MustCompile(fmt.Sprintf(`^acme-corp-%d$`, n))},
			{fmt.Sprintf("Acme Corp! %d", n), regexp.MustCompile(fmt.Sprintf(`^acme-corp-%d-[a-z]{6}$`, n))}, // taken
			{fmt.Sprintf("  Zürich & Genève — %d ", n), regexp.MustCompile(fmt.Sprintf(`^z-rich-gen-ve-%d$`, n))},
			{fmt.Sprintf("v1.2_beta~%d", n), regexp.MustCompile(fmt.Sprintf(`^v1\.2_beta~%d$`, n))},
			{"A", regexp.MustCompile(`^a-[a-z]{6}$`)}, // shorter than 2
		} {
			slug := s.post(t, orgsPath, map[string]any{"organization_name": tc.name}).ok(t).str(t, "organization.organization_slug")
			if !tc.slug.MatchString(slug) {
				t.Errorf("name %q → slug %q, want %s", tc.name, slug, tc.slug)
			}
		}
	})
	t.Run("128 characters are characters, not bytes", func(t *testing.T) {
		s.post(t, orgsPath, map[string]any{"organization_name": strings.Repeat("é", 128), "organization_slug": fmt.Sprintf("long-%d", s.next())}).ok(t)
	})
}

// TestOrganizationsGetUpdateDelete: GET, PUT and DELETE /v1/b2b/organizations/{organization_id}.
func TestOrganizationsGetUpdateDelete(t *testing.T) {
	s := sharedServer(t)
	ext := fmt.Sprintf("crud-%d", s.next())
	o := s.createOrg(t, map[string]any{
		"organization_external_id": ext, "organization_logo_url": "https://example.com/a.png",
		"trusted_metadata": map[string]any{"a": 1, "b": 2}, "email_allowed_domains": []string{"a.com", "b.com"},
	})
	other := s.createOrg(t, nil)
	p2 := s.secondProject(t)
	foreign := p2.createOrg(t, nil)
	path := orgsPath + "/" + o.ID
	original := s.get(t, path).ok(t)

	t.Run("get by id, slug and external id", func(t *testing.T) {
		for _, ref := range []string{o.ID, o.Slug, ext} {
			s.get(t, orgsPath+"/"+ref).ok(t).want(t, "organization", original.at("organization"))
		}
		s.get(t, orgsPath+"/nope").fails(t, 404, "organization_not_found")
		s.get(t, orgsPath+"/"+foreign.ID).fails(t, 404, "organization_not_found")
		s.get(t, orgsPath+"/"+foreign.Slug).fails(t, 404, "organization_not_found")
	})
	t.Run("update refusals change nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name       string
			path       string
			body       map[string]any
			wantStatus int
			wantType   string
		}{
			{"unknown organization", orgsPath + "/nope", map[string]any{"organization_name": "x"}, 404, "organization_not_found"},
			{"organization of another project", orgsPath + "/" + foreign.ID, map[string]any{"organization_name": "x"}, 404, "organization_not_found"},
			{"value rule beats an unknown organization", orgsPath + "/nope", map[string]any{"mfa_policy": "NEVER"}, 400, "invalid_organization_mfa_policy"},
			{"empty name", path, map[string]any{"organization_name": ""}, 400, "invalid_organization_name"},
			{"name a number", path, map[string]any{"organization_name": 1, "organization_slug": "fine-slug"}, 400, "bad_request"},
			{"slug of another organization", path, map[string]any{"organization_slug": other.Slug, "organization_name": "Renamed"}, 400, "organization_slug_already_used"},
			{"external id syntax", path, map[string]any{"organization_external_id": "a b"}, 400, "invalid_organization_external_id"},
			{"RESTRICTED with no allowed methods", path, map[string]any{"mfa_methods": "RESTRICTED", "organization_name": "Renamed"}, 400, "allowed_mfa_methods_required_for_restricted"},
			{"allowed methods emptied under RESTRICTED", orgsPath + "/" + restrictedOrg(t, s).ID, map[string]any{"allowed_mfa_methods": []string{}}, 400, "allowed_mfa_methods_required_for_restricted"},
			{"unknown role", path, map[string]any{"rbac_email_implicit_role_assignments": []any{map[string]any{"domain": "x.com", "role_id": "root"}}}, 400, "invalid_rbac_role_id"},
			{"enum out of range", path, map[string]any{"email_invites": "SOMETIMES"}, 400, "invalid_request_value"},
		} {
			t.Run(tc.name, func(t *testing.T) { s.put(t, tc.path, tc.body).fails(t, tc.wantStatus, tc.wantType) })
		}
		s.get(t, path).ok(t).want(t, "organization", original.at("organization"))
		s.get(t, orgsPath+"/"+foreign.ID, basicAuth(p2.ProjectID, p2.Secret)).ok(t).want(t, "organization.organization_name", foreign.Name)
	})
	t.Run("update", func(t *testing.T) {
		s.Clock.Advance(time.Minute)
		r := s.put(t, orgsPath+"/"+o.Slug, map[string]any{
			"organization_id": "ignored", "organization_name": "Renamed", "trusted_metadata": map[string]any{"c": 3},
			"email_allowed_domains": []string{"c.com"}, "mfa_policy": "REQUIRED_FOR_ALL",
		}).ok(t)
		want := original.at("organization").(map[string]any)
		want["organization_name"] = "Renamed"
		want["trusted_metadata"] = map[string]any{"c": 3}
		want["email_allowed_domains"] = []string{"c.com"}
		want["mfa_policy"] = "REQUIRED_FOR_ALL"
		want["updated_at"] = ts(s.Clock.Now())
		r.want(t, "organization", want)
		s.get(t, path).ok(t).want(t, "organization", want)

		s.put(t, path, map[string]any{}).ok(t).want(t, "organization", want) // nothing sent, nothing changed
		r = s.put(t, path, map[string]any{"organization_logo_url": "", "organization_external_id": ""}).ok(t)
		r.want(t, "organization.organization_logo_url", "").want(t, "organization.organization_external_id", "")
		s.get(t, orgsPath+"/"+ext).fails(t, 404, "organization_not_found")
		s.put(t, path, map[string]any{"organization_external_id": ext}).ok(t)
	})
	t.Run("mfa_policy change keeps sessions", func(t *testing.T) {
		x := s.createOrg(t, nil)
		m := s.newMember(t, x, nil)
		sess := m.session(t, nil)
		s.put(t, orgsPath+"/"+x.ID, map[string]any{"mfa_policy": "REQUIRED_FOR_ALL"}).ok(t)
		s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token}).ok(t)
	})
	t.Run("delete", func(t *testing.T) {
		x := s.createOrg(t, map[string]any{"mfa_policy": "REQUIRED_FOR_ALL"})
		m := s.enrolledMember(t, x, nil)
		sess := m.session(t, nil)
		ist := m.ist(t)
		r := s.delete(t, orgsPath+"/"+x.Slug).ok(t)
		r.want(t, "organization_id", x.ID)
		if len(r.Body) != 3 {
			t.Errorf("delete answers %s", r.Raw)
		}
		s.get(t, orgsPath+"/"+x.ID).fails(t, 404, "organization_not_found")
		s.get(t, orgsPath+"/"+x.ID+"/member?member_id="+m.ID).fails(t, 404, "organization_not_found")
		s.get(t, m.codesPath()).fails(t, 404, "organization_not_found")
		s.post(t, sessAuthPath, map[string]any{"session_token": sess.Token}).fails(t, 404, "session_not_found")
		s.post(t, sessAuthPath, map[string]any{"session_jwt": sess.JWT}).fails(t, 404, "session_not_found")
		s.post(t, sessRevokePath, map[string]any{"member_id": m.ID}).fails(t, 404, "member_not_found")
		s.post(t, sessRevokePath, map[string]any{"member_session_id": sess.ID}).fails(t, 404, "session_not_found")
		s.post(t, pwAuthPath, map[string]any{"organization_id": x.ID, "email_address": m.Email, "password": m.Password, "intermediate_session_token": ist}).fails(t, 404, "organization_not_found")
		s.delete(t, orgsPath+"/"+x.ID).fails(t, 404, "organization_not_found")
		// The slug is free again, and nothing of the old organization comes back with it.
		y := s.createOrg(t, map[string]any{"organization_slug": x.Slug})
		s.get(t, orgsPath+"/"+y.ID+"/member?email_address="+m.Email).fails(t, 404, "member_not_found")
	})
	t.Run("delete without a body", func(t *testing.T) {
		x := s.createOrg(t, nil)
		s.do(t, "DELETE", orgsPath+"/"+x.ID, nil).ok(t).want(t, "organization_id", x.ID)
		s.do(t, "DELETE", orgsPath+"/"+foreign.ID, nil).fails(t, 404, "organization_not_found")
	})
}

func restrictedOrg(t testing.TB, s *testServer) org {
	return s.createOrg(t, map[string]any{"mfa_methods": "RESTRICTED", "allowed_mfa_methods": []string{"totp"}})
}

// TestOrganizationsSearch: POST /v1/b2b/organizations/search (§6.2), in a project of its own so
// totals are exact.
func TestOrganizationsSearch(t *testing.T) {
	p := sharedServer(t).secondProject(t)
	mk := func(fields map[string]any) org {
		o := p.createOrg(t, fields)
		p.Clock.Advance(time.Second) // created_at orders the results
		return o
	}
	a := mk(map[string]any{"organization_name": "Alpha Widgets", "organization_slug": "alpha", "email_allowed_domains": []string{"alpha.com"}, "claimed_email_domains": []string{"alpha.io"}})
	b := mk(map[string]any{"organization_name": "Beta Gadgets", "organization_slug": "beta", "email_allowed_domains": []string{"beta.com", "shared.com"}})
	c := mk(map[string]any{"organization_name": "Gamma Widgets", "organization_slug": "gamma-w", "email_allowed_domains": []string{"shared.com"}, "claimed_email_domains": []string{"gamma.io"}})
	d := mk(map[string]any{"organization_name": "Delta", "organization_slug": "delta"})
	p.post(t, orgsPath+"/"+a.ID+"/members", map[string]any{"email_address": "ann@alpha.com"}).ok(t)
	p.post(t, orgsPath+"/"+b.ID+"/members", map[string]any{"email_address": "bob@beta.com"}).ok(t)
	p.post(t, orgsPath+"/"+c.ID+"/members", map[string]any{"email_address": "carol@corp.example"}).ok(t)
	all := []string{a.ID, b.ID, c.ID, d.ID}

	search := func(t *testing.T, body any) *response {
		t.Helper()
		return p.post(t, orgsPath+"/search", body)
	}
	ids := func(t *testing.T, r *response) []string {
		t.Helper()
		var out []string
		for i := range r.list(t, "organizations") {
			out = append(out, r.str(t, "organizations."+itoa(i)+".organization_id"))
		}
		return out
	}
	query := func(op string, operands ...any) map[string]any {
		return map[string]any{"query": map[string]any{"operator": op, "operands": operands}}
	}
	f := func(name string, value any) map[string]any {
		return map[string]any{"filter_name": name, "filter_value": value}
	}

	for _, tc := range []struct {
		name string
		body any
		want []string
	}{
		{"no body", nil, all},
		{"no query", map[string]any{}, all},
		{"no operands", query("AND"), all},
		{"organization_ids", query("AND", f("organization_ids", []string{c.ID, a.ID, "organization-test-nope"})), []string{a.ID, c.ID}},
		{"organization_slugs", query("AND", f("organization_slugs", []string{"beta", "nope"})), []string{b.ID}},
		{"organization_slug_fuzzy ignores case", query("AND", f("organization_slug_fuzzy", "ALP")), []string{a.ID}},
		{"organization_name_fuzzy", query("AND", f("organization_name_fuzzy", "widgets")), []string{a.ID, c.ID}},
		{"member_emails", query("AND", f("member_emails", []string{"BOB@beta.com", "nobody@x.com"})), []string{b.ID}},
		{"member_email_fuzzy", query("AND", f("member_email_fuzzy", "corp")), []string{c.ID}},
		{"allowed_domains", query("AND", f("allowed_domains", []string{"shared.com"})), []string{b.ID, c.ID}},
		{"claimed_email_domains", query("AND", f("claimed_email_domains", []string{"gamma.io", "alpha.io"})), []string{a.ID, c.ID}},
		{"allowed_domain_fuzzy", query("AND", f("allowed_domain_fuzzy", "alph")), []string{a.ID}},
		{"has_active_sso_connection true", query("AND", f("has_active_sso_connection", true)), nil},
		{"has_active_sso_connection false", query("AND", f("has_active_sso_connection", false)), all},
		{"sso_connection_id", query("AND", f("sso_connection_id", "sso-connection-test-1")), nil},
		{"AND", query("AND", f("organization_name_fuzzy", "widgets"), f("allowed_domains", []string{"shared.com"})), []string{c.ID}},
		{"OR", query("OR", f("organization_slugs", []string{"beta"}), f("member_emails", []string{"ann@alpha.com"})), []string{a.ID, b.ID}},
		{"OR with a match-nothing filter", query("OR", f("has_active_sso_connection", true), f("organization_slugs", []string{"delta"})), []string{d.ID}},
		{"AND with a match-all filter", query("AND", f("has_active_sso_connection", false), f("organization_slugs", []string{"delta"})), []string{d.ID}},
		{"empty cursor is absent", map[string]any{"cursor": ""}, all},
		{"limit 1000", map[string]any{"limit": 1000}, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := search(t, tc.body).ok(t)
			if got := ids(t, r); !slices.Equal(got, tc.want) {
				t.Errorf("organizations %v, want %v", got, tc.want)
			}
			r.want(t, "results_metadata", map[string]any{"total": len(tc.want), "next_cursor": nil})
		})
	}
	t.Run("paging", func(t *testing.T) {
		var got []string
		body := map[string]any{"limit": 1}
		for page := 0; ; page++ {
			r := search(t, body).ok(t).want(t, "results_metadata.total", 4)
			got = append(got, ids(t, r)...)
			next := r.at("results_metadata.next_cursor")
			if next == nil {
				break
			}
			if page > 4 {
				t.Fatal("paging does not end")
			}
			body["cursor"] = next
		}
		if !slices.Equal(got, all) {
			t.Errorf("pages %v, want %v", got, all)
		}
		r := search(t, map[string]any{"limit": 3}).ok(t)
		if n := r.str(t, "results_metadata.next_cursor"); n == "" {
			t.Fatal("no next_cursor before the last page")
		}
		last := search(t, map[string]any{"limit": 3, "cursor": r.at("results_metadata.next_cursor")}).ok(t)
		if got := ids(t, last); !slices.Equal(got, []string{d.ID}) {
			t.Errorf("last page %v", got)
		}
		last.want(t, "results_metadata", map[string]any{"total": 4, "next_cursor": nil})
		// Paging a filtered query.
		q := query("AND", f("organization_name_fuzzy", "widgets"))
		q["limit"] = 1
		first := search(t, q).ok(t).want(t, "results_metadata.total", 2)
		q["cursor"] = first.at("results_metadata.next_cursor")
		second := search(t, q).ok(t).want(t, "results_metadata.next_cursor", nil)
		if got := append(ids(t, first), ids(t, second)...); !slices.Equal(got, []string{a.ID, c.ID}) {
			t.Errorf("filtered pages %v", got)
		}
	})
	t.Run("same created_at: by id", func(t *testing.T) {
		q := p.secondProject(t)
		var made []string
		for range 4 {
			made = append(made, q.createOrg(t, nil).ID)
		}
		slices.Sort(made)
		r := q.post(t, orgsPath+"/search", map[string]any{}).ok(t)
		if got := ids(t, r); !slices.Equal(got, made) {
			t.Errorf("order %v, want %v", got, made)
		}
	})
	for _, tc := range []struct {
		name       string
		body       any
		wantStatus int
		wantType   string
	}{
		{"unknown filter", query("AND", f("organization_color", "red")), 400, "organization_search_filter_name_not_recognized"},
		{"member search filter", query("AND", f("member_is_breakglass", true)), 400, "organization_search_filter_name_not_recognized"},
		{"operator XOR", query("XOR", f("organization_slugs", []string{"beta"})), 400, "invalid_request_value"},
		{"operator lowercase", query("and", f("organization_slugs", []string{"beta"})), 400, "invalid_request_value"},
		{"list filter given a string", query("AND", f("organization_ids", a.ID)), 400, "invalid_request_value"},
		{"list filter holding a number", query("AND", f("organization_slugs", []any{1})), 400, "invalid_request_value"},
		{"fuzzy filter given a list", query("AND", f("organization_name_fuzzy", []string{"a"})), 400, "invalid_request_value"},
		{"bool filter given a string", query("AND", f("has_active_sso_connection", "true")), 400, "invalid_request_value"},
		{"limit 0", map[string]any{"limit": 0}, 400, "invalid_request_value"},
		{"limit 1001", map[string]any{"limit": 1001}, 400, "invalid_request_value"},
		{"limit 2.5", map[string]any{"limit": 2.5}, 400, "invalid_request_value"},
		{"limit -1", map[string]any{"limit": -1}, 400, "invalid_request_value"},
		{"cursor garbage", map[string]any{"cursor": "not a cursor!"}, 400, "invalid_request_value"},
		{"cursor of valid base64", map[string]any{"cursor": "eA"}, 400, "invalid_request_value"},
		{"limit quoted", map[string]any{"limit": "10"}, 400, "bad_request"},
		{"cursor a number", map[string]any{"cursor": 5}, 400, "bad_request"},
		{"query an array", map[string]any{"query": []any{}}, 400, "bad_request"},
		{"operands an object", map[string]any{"query": map[string]any{"operator": "AND", "operands": map[string]any{}}}, 400, "bad_request"},
		{"operator a number", map[string]any{"query": map[string]any{"operator": 1}}, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) { search(t, tc.body).fails(t, tc.wantStatus, tc.wantType) })
	}
}

// TestOrganizationAliases: an organization reference is tried as id, then slug, then external id
// (§2), and "" is no external id at all.
func TestOrganizationAliases(t *testing.T) {
	s := sharedServer(t)
	n := s.next()
	a := s.createOrg(t, map[string]any{"organization_slug": fmt.Sprintf("alias-%d", n)})
	// b's external id is a's slug; c's slug is a's id; d's external id is c's slug.
	b := s.createOrg(t, map[string]any{"organization_external_id": a.Slug})
	c := s.createOrg(t, map[string]any{"organization_slug": a.ID})
	d := s.createOrg(t, map[string]any{"organization_external_id": c.Slug + "x"})
	for _, tc := range []struct {
		name, ref string
		want      org
	}{
		{"an id beats a slug", a.ID, a},
		{"a slug beats an external id", a.Slug, a},
		{"external id", c.Slug + "x", d},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.get(t, orgsPath+"/"+tc.ref).ok(t).want(t, "organization.organization_id", tc.want.ID)
			s.get(t, "/v1/b2b/sessions?organization_id="+tc.ref+"&member_id=nope").fails(t, 404, "member_not_found")
		})
	}
	t.Run(`"" is no external id`, func(t *testing.T) {
		x := s.createOrg(t, map[string]any{"organization_external_id": ""})
		y := s.createOrg(t, map[string]any{"organization_external_id": ""})
		s.get(t, orgsPath+"/"+y.ID).ok(t).want(t, "organization.organization_external_id", "")
		z := s.createOrg(t, map[string]any{"organization_external_id": fmt.Sprintf("clear-%d", s.next())})
		s.put(t, orgsPath+"/"+z.ID, map[string]any{"organization_external_id": ""}).ok(t)
		s.put(t, orgsPath+"/"+x.ID, map[string]any{"organization_external_id": ""}).ok(t)
	})
	t.Run("re-sending its own slug and external id is no conflict", func(t *testing.T) {
		s.put(t, orgsPath+"/"+b.ID, map[string]any{"organization_slug": b.Slug, "organization_external_id": a.Slug}).ok(t)
	})
	t.Run("a null slug is derived", func(t *testing.T) {
		name := fmt.Sprintf("Null Slug %d", s.next())
		s.post(t, orgsPath, map[string]any{"organization_name": name, "organization_slug": nil}).ok(t).
			want(t, "organization.organization_slug", strings.ToLower(strings.ReplaceAll(name, " ", "-")))
	})
	t.Run("external ids are unique per project only", func(t *testing.T) {
		ext := fmt.Sprintf("shared-ext-%d", s.next())
		s.createOrg(t, map[string]any{"organization_external_id": ext})
		p2 := s.secondProject(t)
		p2.createOrg(t, map[string]any{"organization_external_id": ext, "organization_slug": "same-slug"})
		s.createOrg(t, map[string]any{"organization_slug": "same-slug"})
	})
}

// TestOrganizationsSearchEdges: inputs at the edges of what search accepts.
func TestOrganizationsSearchEdges(t *testing.T) {
	p := sharedServer(t).secondProject(t)
	uber := p.createOrg(t, map[string]any{"organization_name": "ÜBER Zürich GmbH", "organization_slug": "uber"})
	p.createOrg(t, map[string]any{"organization_name": "Plain", "organization_slug": "plain"})
	search := func(t *testing.T, body any) *response { return p.post(t, orgsPath+"/search", body) }
	fuzzy := func(v string) map[string]any {
		return map[string]any{"query": map[string]any{"operator": "AND", "operands": []any{map[string]any{"filter_name": "organization_name_fuzzy", "filter_value": v}}}}
	}

	t.Run("fuzzy name ignores case beyond ASCII", func(t *testing.T) {
		for _, v := range []string{"ÜBER", "über", "ZÜRICH", "zürich", "gmbh"} {
			r := search(t, fuzzy(v)).ok(t)
			if r.num(t, "results_metadata.total") != 1 || r.at("organizations.0.organization_id") != uber.ID {
				t.Errorf("organization_name_fuzzy %q found %v, want %q", v, r.at("results_metadata"), "ÜBER Zürich GmbH")
			}
		}
	})
	t.Run("a list filter of 40000 values", func(t *testing.T) {
		ids := make([]string, 40000)
		for i := range ids {
			ids[i] = fmt.Sprintf("o%d", i)
		}
		ids[39999] = uber.ID
		r := search(t, map[string]any{"query": map[string]any{"operator": "OR", "operands": []any{
			map[string]any{"filter_name": "organization_ids", "filter_value": ids},
		}}})
		if r.Status >= 500 {
			t.Fatalf("a large but valid filter broke the server: %s", r)
		}
		r.ok(t).want(t, "results_metadata.total", 1)
	})
	t.Run("many operands", func(t *testing.T) {
		var ops []any
		for i := range 1000 {
			ops = append(ops, map[string]any{"filter_name": "organization_slugs", "filter_value": []string{fmt.Sprintf("s%d", i), "uber"}})
		}
		search(t, map[string]any{"query": map[string]any{"operator": "AND", "operands": ops}}).ok(t).want(t, "results_metadata.total", 1)
	})
	t.Run("one organization's deeply nested metadata does not break domain filters", func(t *testing.T) {
		// 1500 levels is well within the body limit and what encoding/json accepts.
		deep := strings.Repeat(`{"a":`, 1500) + `1` + strings.Repeat(`}`, 1500)
		p.post(t, orgsPath, raw(`{"organization_name":"Deep","email_allowed_domains":["deep.example"],"trusted_metadata":`+deep+`}`)).ok(t)
		for _, f := range []map[string]any{
			{"filter_name": "allowed_domains", "filter_value": []string{"deep.example"}},
			{"filter_name": "claimed_email_domains", "filter_value": []string{"deep.example"}},
			{"filter_name": "allowed_domain_fuzzy", "filter_value": "deep"},
		} {
			r := search(t, map[string]any{"query": map[string]any{"operator": "AND", "operands": []any{f}}})
			if r.Status >= 500 {
				t.Errorf("%v: %s", f["filter_name"], r)
			}
		}
	})
	t.Run("an empty list matches nothing", func(t *testing.T) {
		search(t, map[string]any{"query": map[string]any{"operator": "OR", "operands": []any{
			map[string]any{"filter_name": "organization_slugs", "filter_value": []string{}},
		}}}).ok(t).want(t, "results_metadata.total", 0)
	})
}
