package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// OrganizationInput carries the writable organization fields of create and update (§6.2). A nil
// field is absent: on create it takes its default, on update it stays unchanged.
type OrganizationInput struct {
	Name                                 *string
	Slug                                 *string
	LogoURL                              *string
	ExternalID                           *string
	TrustedMetadata                      *map[string]any
	MFAPolicy                            *string
	MFAMethods                           *string
	AllowedMFAMethods                    *[]string
	AuthMethods                          *string
	AllowedAuthMethods                   *[]string
	SSOJITProvisioning                   *string
	SSOJITProvisioningAllowedConnections *[]string
	EmailInvites                         *string
	EmailJITProvisioning                 *string
	OAuthTenantJITProvisioning           *string
	FirstPartyConnectedAppsAllowedType   *string
	ThirdPartyConnectedAppsAllowedType   *string
	AllowedFirstPartyConnectedApps       *[]string
	AllowedThirdPartyConnectedApps       *[]string
	EmailAllowedDomains                  *[]string
	ClaimedEmailDomains                  *[]string
	RBACEmailImplicitRoleAssignments     *[]RoleAssignment
	AllowedOAuthTenants                  *map[string][]string
	SSODefaultConnectionID               *string
}

var allowedAuthMethods = []string{"sso", "magic_link", "email_otp", "password", "google_oauth", "microsoft_oauth", "slack_oauth", "github_oauth", "hubspot_oauth"}

// validate checks each field that is present against §5.1, in the table's order.
func (in *OrganizationInput) validate() error {
	if in.Name != nil && !validName(*in.Name) {
		return ErrInvalidOrganizationName
	}
	if in.Slug != nil && !slugPattern.MatchString(*in.Slug) {
		return ErrInvalidOrganizationSlug
	}
	if in.LogoURL != nil && !validLogoURL(*in.LogoURL) {
		return ErrInvalidRequestValue
	}
	if in.ExternalID != nil && *in.ExternalID != "" && !externalIDPattern.MatchString(*in.ExternalID) {
		return ErrInvalidOrganizationExtID
	}
	if in.MFAPolicy != nil && !oneOf(*in.MFAPolicy, MFAPolicyOptional, MFAPolicyRequiredForAll) {
		return ErrInvalidMFAPolicy
	}
	if in.MFAMethods != nil && !oneOf(*in.MFAMethods, AllAllowed, Restricted) {
		return ErrInvalidRequestValue
	}
	if in.AllowedMFAMethods != nil && !allOneOf(*in.AllowedMFAMethods, "sms_otp", "totp") {
		return ErrInvalidAllowedMFAMethods
	}
	if in.AuthMethods != nil && !oneOf(*in.AuthMethods, AllAllowed, Restricted) {
		return ErrInvalidRequestValue
	}
	if in.AllowedAuthMethods != nil && !allOneOf(*in.AllowedAuthMethods, allowedAuthMethods...) {
		return ErrInvalidRequestValue
	}
	for _, v := range []*string{in.SSOJITProvisioning, in.EmailInvites, in.FirstPartyConnectedAppsAllowedType, in.ThirdPartyConnectedAppsAllowedType} {
		if v != nil && !oneOf(*v, AllAllowed, Restricted, NotAllowed) {
			return ErrInvalidRequestValue
		}
	}
	for _, v := range []*string{in.EmailJITProvisioning, in.OAuthTenantJITProvisioning} {
		if v != nil && !oneOf(*v, Restricted, NotAllowed) {
			return ErrInvalidRequestValue
		}
	}
	if in.RBACEmailImplicitRoleAssignments != nil {
		for _, a := range *in.RBACEmailImplicitRoleAssignments {
			if !knownRole(a.RoleID) {
				return ErrInvalidRoleID
			}
			if a.Domain == "" {
				return ErrInvalidRequestValue
			}
		}
	}
	if in.AllowedOAuthTenants != nil {
		for k := range *in.AllowedOAuthTenants {
			if !oneOf(k, "slack", "hubspot", "github") {
				return ErrInvalidRequestValue
			}
		}
	}
	if in.SSODefaultConnectionID != nil && *in.SSODefaultConnectionID != "" {
		return ErrInvalidRequestValue // sparekey has no SSO connection to point at
	}
	return nil
}

// apply writes the present fields onto o.
func (in *OrganizationInput) apply(o *Organization) {
	setString(&o.Name, in.Name)
	setString(&o.Slug, in.Slug)
	setString(&o.LogoURL, in.LogoURL)
	setString(&o.ExternalID, in.ExternalID)
	if in.TrustedMetadata != nil {
		o.TrustedMetadata = nonNilMap(*in.TrustedMetadata)
	}
	setString(&o.MFAPolicy, in.MFAPolicy)
	setString(&o.MFAMethods, in.MFAMethods)
	setList(&o.AllowedMFAMethods, in.AllowedMFAMethods)
	setString(&o.AuthMethods, in.AuthMethods)
	setList(&o.AllowedAuthMethods, in.AllowedAuthMethods)
	setString(&o.SSOJITProvisioning, in.SSOJITProvisioning)
	setList(&o.SSOJITProvisioningAllowedConnections, in.SSOJITProvisioningAllowedConnections)
	setString(&o.EmailInvites, in.EmailInvites)
	setString(&o.EmailJITProvisioning, in.EmailJITProvisioning)
	setString(&o.OAuthTenantJITProvisioning, in.OAuthTenantJITProvisioning)
	setString(&o.FirstPartyConnectedAppsAllowedType, in.FirstPartyConnectedAppsAllowedType)
	setString(&o.ThirdPartyConnectedAppsAllowedType, in.ThirdPartyConnectedAppsAllowedType)
	setList(&o.AllowedFirstPartyConnectedApps, in.AllowedFirstPartyConnectedApps)
	setList(&o.AllowedThirdPartyConnectedApps, in.AllowedThirdPartyConnectedApps)
	// Domains are case-insensitive: they are kept folded, so search compares them exactly.
	setFoldedList(&o.EmailAllowedDomains, in.EmailAllowedDomains)
	setFoldedList(&o.ClaimedEmailDomains, in.ClaimedEmailDomains)
	if in.RBACEmailImplicitRoleAssignments != nil {
		o.RBACEmailImplicitRoleAssignments = append([]RoleAssignment{}, *in.RBACEmailImplicitRoleAssignments...)
	}
	if in.AllowedOAuthTenants != nil {
		tenants := make(map[string][]string, len(*in.AllowedOAuthTenants))
		for k, v := range *in.AllowedOAuthTenants {
			tenants[k] = append([]string{}, v...)
		}
		o.AllowedOAuthTenants = tenants
	}
}

func setString(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func setList(dst *[]string, v *[]string) {
	if v != nil {
		*dst = append([]string{}, *v...)
	}
}

func setFoldedList(dst *[]string, v *[]string) {
	if v != nil {
		out := make([]string, len(*v))
		for i, s := range *v {
			out[i] = FoldCase(s)
		}
		*dst = out
	}
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// checkMFAMethods enforces that a RESTRICTED organization allows at least one method, on the
// organization as it will be after the write.
func checkMFAMethods(o *Organization) error {
	if o.MFAMethods == Restricted && len(o.AllowedMFAMethods) == 0 {
		return ErrAllowedMFAMethodsRequired
	}
	return nil
}

// defaultOrganization is an organization with every §5.1 default.
func defaultOrganization(projectID string, now time.Time) Organization {
	return Organization{
		ID:        newID(kindOrganization),
		ProjectID: projectID,
		OrganizationSettings: OrganizationSettings{
			TrustedMetadata:                      map[string]any{},
			MFAPolicy:                            MFAPolicyOptional,
			MFAMethods:                           AllAllowed,
			AllowedMFAMethods:                    []string{},
			AuthMethods:                          AllAllowed,
			AllowedAuthMethods:                   []string{},
			SSOJITProvisioning:                   AllAllowed,
			SSOJITProvisioningAllowedConnections: []string{},
			EmailInvites:                         AllAllowed,
			EmailJITProvisioning:                 NotAllowed,
			OAuthTenantJITProvisioning:           NotAllowed,
			FirstPartyConnectedAppsAllowedType:   AllAllowed,
			ThirdPartyConnectedAppsAllowedType:   AllAllowed,
			AllowedFirstPartyConnectedApps:       []string{},
			AllowedThirdPartyConnectedApps:       []string{},
			EmailAllowedDomains:                  []string{},
			ClaimedEmailDomains:                  []string{},
			RBACEmailImplicitRoleAssignments:     []RoleAssignment{},
			AllowedOAuthTenants:                  map[string][]string{},
		},
		CreatedAt: now,
		UpdatedAt: now,
	}
}

// CreateOrganization creates an organization; a slug is derived from the name when none is sent.
func (s *Service) CreateOrganization(ctx context.Context, projectID string, in OrganizationInput) (Organization, error) {
	if in.Name == nil || *in.Name == "" {
		return Organization{}, ErrOrganizationNameMissing
	}
	if err := in.validate(); err != nil {
		return Organization{}, err
	}
	o := defaultOrganization(projectID, s.now())
	in.apply(&o)
	if err := checkMFAMethods(&o); err != nil {
		return Organization{}, err
	}
	if in.Slug != nil {
		return o, s.store.CreateOrganization(ctx, o)
	}
	// A derived slug that is taken (or too short) gets a random suffix; retry a few times in
	// case two creations race for the same one.
	base := deriveSlug(o.Name)
	o.Slug = base
	for attempt := 0; ; attempt++ {
		if len(o.Slug) >= 2 {
			err := s.store.CreateOrganization(ctx, o)
			if !isType(err, ErrOrganizationSlugUsed) || attempt >= 5 {
				return o, err
			}
		}
		o.Slug = withSuffix(base)
	}
}

// deriveSlug turns a name into a slug: lowercase, every run of characters a slug cannot hold
// becomes one '-', and the ends are trimmed.
func deriveSlug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '~' || r == '-') {
			b.WriteRune(r)
			dash = r == '-'
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}

// withSuffix appends '-' and six random lowercase letters, keeping the slug within 128.
func withSuffix(base string) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	if len(base) > 121 {
		base = base[:121]
	}
	r := make([]byte, 6)
	if _, err := rand.Read(r); err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	for i := range r {
		r[i] = letters[int(r[i])%len(letters)]
	}
	if base == "" {
		return string(r)
	}
	return base + "-" + string(r)
}

// GetOrganization returns an organization by id, slug or external id.
func (s *Service) GetOrganization(ctx context.Context, projectID, ref string) (Organization, error) {
	if ref == "" {
		return Organization{}, ErrOrganizationNotFound
	}
	return s.store.Organization(ctx, projectID, ref)
}

// UpdateOrganization changes the present fields. A member session sent in the headers must be
// an admin's of this organization.
func (s *Service) UpdateOrganization(ctx context.Context, projectID, ref string, in OrganizationInput, actor Actor) (Organization, error) {
	if err := in.validate(); err != nil {
		return Organization{}, err
	}
	org, err := s.GetOrganization(ctx, projectID, ref)
	if err != nil {
		return Organization{}, err
	}
	if err := s.authorizeActor(ctx, projectID, org.ID, actor); err != nil {
		return Organization{}, err
	}
	now := s.now()
	return s.store.UpdateOrganization(ctx, projectID, org.ID, func(o *Organization) error {
		in.apply(o)
		if err := checkMFAMethods(o); err != nil {
			return err
		}
		o.UpdatedAt = now
		return nil
	})
}

// DeleteOrganization removes an organization and everything in it; it returns the canonical id.
func (s *Service) DeleteOrganization(ctx context.Context, projectID, ref string, actor Actor) (string, error) {
	org, err := s.GetOrganization(ctx, projectID, ref)
	if err != nil {
		return "", err
	}
	if err := s.authorizeActor(ctx, projectID, org.ID, actor); err != nil {
		return "", err
	}
	return org.ID, s.store.DeleteOrganization(ctx, projectID, org.ID)
}

// SearchInput is an organization search request.
type SearchInput struct {
	Cursor string
	Limit  *json.Number
	Query  *SearchQuery
}

// SearchQuery combines filters with AND or OR.
type SearchQuery struct {
	Operator string
	Operands []SearchOperand
}

// SearchOperand is one filter; FilterValue is the decoded JSON value (string, []any or bool).
type SearchOperand struct {
	FilterName  string
	FilterValue any
}

// SearchResult is one page of organizations and where the next one starts ("" on the last page).
type SearchResult struct {
	Organizations []Organization
	Total         int
	NextCursor    string
}

const (
	defaultSearchLimit = 100
	maxSearchLimit     = 1000
)

// SearchOrganizations pages through the organizations matching a query, by created_at then id.
func (s *Service) SearchOrganizations(ctx context.Context, projectID string, in SearchInput) (SearchResult, error) {
	q := OrganizationQuery{Operator: "AND", Limit: defaultSearchLimit}
	if in.Limit != nil {
		n, err := in.Limit.Int64()
		if err != nil || n < 1 || n > maxSearchLimit {
			return SearchResult{}, ErrInvalidRequestValue
		}
		q.Limit = int(n)
	}
	if in.Cursor != "" {
		c, ok := decodeCursor(in.Cursor)
		if !ok {
			return SearchResult{}, ErrInvalidRequestValue
		}
		q.After = &c
	}
	if in.Query != nil {
		switch in.Query.Operator {
		case "AND", "OR":
			q.Operator = in.Query.Operator
		case "":
		default:
			return SearchResult{}, ErrInvalidRequestValue
		}
		for _, op := range in.Query.Operands {
			f, err := searchFilter(op)
			if err != nil {
				return SearchResult{}, err
			}
			q.Filters = append(q.Filters, f)
		}
	}
	page, err := s.store.SearchOrganizations(ctx, projectID, q)
	if err != nil {
		return SearchResult{}, err
	}
	res := SearchResult{Organizations: page.Organizations, Total: page.Total}
	if page.More && len(page.Organizations) > 0 {
		last := page.Organizations[len(page.Organizations)-1]
		res.NextCursor = encodeCursor(OrganizationCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return res, nil
}

// searchFilter checks one operand's name and value type (§6.2's filter table).
func searchFilter(op SearchOperand) (OrganizationFilter, error) {
	switch op.FilterName {
	case FilterOrganizationIDs, FilterOrganizationSlugs, FilterMemberEmails, FilterAllowedDomains, FilterClaimedEmailDomains:
		items, ok := op.FilterValue.([]any)
		if !ok {
			return OrganizationFilter{}, ErrInvalidRequestValue
		}
		values := make([]string, 0, len(items))
		for _, it := range items {
			s, ok := it.(string)
			if !ok {
				return OrganizationFilter{}, ErrInvalidRequestValue
			}
			if op.FilterName == FilterMemberEmails || op.FilterName == FilterAllowedDomains || op.FilterName == FilterClaimedEmailDomains {
				s = strings.ToLower(s)
			}
			values = append(values, s)
		}
		return OrganizationFilter{Name: op.FilterName, Values: values}, nil
	case FilterSlugFuzzy, FilterNameFuzzy, FilterMemberEmailFuzzy, FilterAllowedDomainFuzzy:
		v, ok := op.FilterValue.(string)
		if !ok {
			return OrganizationFilter{}, ErrInvalidRequestValue
		}
		return OrganizationFilter{Name: op.FilterName, Value: FoldCase(v)}, nil
	case "has_active_sso_connection":
		v, ok := op.FilterValue.(bool)
		if !ok {
			return OrganizationFilter{}, ErrInvalidRequestValue
		}
		if v {
			return OrganizationFilter{Name: FilterMatchNone}, nil
		}
		return OrganizationFilter{Name: FilterMatchAll}, nil
	case "sso_connection_id":
		if _, ok := op.FilterValue.(string); !ok {
			return OrganizationFilter{}, ErrInvalidRequestValue
		}
		return OrganizationFilter{Name: FilterMatchNone}, nil
	}
	return OrganizationFilter{}, ErrSearchFilterNotRecognized
}

// A cursor is opaque to callers: base64url of "<created_at unix>:<organization id>".
func encodeCursor(c OrganizationCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.Unix(), 10) + ":" + c.ID))
}

func decodeCursor(s string) (OrganizationCursor, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return OrganizationCursor{}, false
	}
	ts, id, ok := strings.Cut(string(raw), ":")
	if !ok || !strings.HasPrefix(id, kindOrganization+"-") || !cleanText(id) {
		return OrganizationCursor{}, false
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return OrganizationCursor{}, false
	}
	return OrganizationCursor{CreatedAt: time.Unix(unix, 0).UTC(), ID: id}, true
}
