package openctistandin

import (
	"context"
	"sort"

	graphql "github.com/graph-gophers/graphql-go"
)

// Object resolvers of User (and MeUser), Group, their connections, roles and
// confidence levels. Organizations and markings are not modelled: their
// fields answer empty, as on a platform where none were set up.

type userResolver struct {
	st *apiState
	d  userDoc
}

func (u *userResolver) ID() graphql.ID             { return graphql.ID(u.d.InternalID) }
func (u *userResolver) StandardID() string         { return u.d.StandardID }
func (u *userResolver) IndividualID() *string      { return nil }
func (u *userResolver) EntityType() string         { return entityUser }
func (u *userResolver) ParentTypes() []*string     { return strPtrs(u.d.ParentTypes) }
func (u *userResolver) UserEmail() string          { return u.d.UserEmail }
func (u *userResolver) Name() string               { return u.d.Name }
func (u *userResolver) Firstname() *string         { return u.d.Firstname }
func (u *userResolver) Lastname() *string          { return u.d.Lastname }
func (u *userResolver) Description() *string       { return u.d.Description }
func (u *userResolver) Language() *string          { return &u.d.Language }
func (u *userResolver) Theme() *string             { return &u.d.Theme }
func (u *userResolver) UnitSystem() *string        { return u.d.UnitSystem }
func (u *userResolver) External() *bool            { return &u.d.External }
func (u *userResolver) RestrictDelete() *bool      { f := false; return &f }
func (u *userResolver) AccountStatus() string      { return u.d.AccountStatus }
func (u *userResolver) UserServiceAccount() *bool  { return &u.d.UserServiceAccount }
func (u *userResolver) SubmenuShowIcons() *bool    { return &u.d.SubmenuShowIcons }
func (u *userResolver) SubmenuAutoCollapse() *bool { return &u.d.SubmenuAutoCollapse }
func (u *userResolver) MonochromeLabels() *bool    { return &u.d.MonochromeLabels }
func (u *userResolver) CreatedAt() dateTime        { return dateTime(u.d.CreatedAt) }
func (u *userResolver) UpdatedAt() dateTime        { return dateTime(u.d.UpdatedAt) }
func (u *userResolver) CapabilitiesInDraft() []*capabilityResolver {
	return []*capabilityResolver{}
}
func (u *userResolver) ObjectOrganization() *organizationConnectionResolver {
	return &organizationConnectionResolver{}
}
func (u *userResolver) AdministratedOrganizations() *[]*organizationResolver {
	return &[]*organizationResolver{}
}

// AccountLockAfterDate is the stored date, if any.
func (u *userResolver) AccountLockAfterDate() *dateTime {
	if u.d.AccountLockAfterDate == nil {
		return nil
	}
	return optDate(*u.d.AccountLockAfterDate)
}

// APIToken is readable by the user itself and by SETTINGS_SETACCESSES, as in OpenCTI.
func (u *userResolver) APIToken(ctx context.Context) (string, error) {
	caller, err := requireUser(ctx)
	if err != nil {
		return "", err
	}
	if caller.doc.InternalID != u.d.InternalID && !caller.can(capSetAccesses) {
		return "", errForbidden()
	}
	return u.d.APIToken, nil
}

// APITokens are a 7.x user's tokens (id and name, never the token or its
// hash), readable by the same callers as a 6.x api_token.
func (u *userResolver) APITokens(ctx context.Context) ([]*apiTokenResolver, error) {
	caller, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	if caller.doc.InternalID != u.d.InternalID && !caller.can(capSetAccesses) {
		return nil, errForbidden()
	}
	out := make([]*apiTokenResolver, len(u.d.APITokens))
	for i, t := range u.d.APITokens {
		out[i] = &apiTokenResolver{t}
	}
	return out, nil
}

type apiTokenResolver struct{ d apiTokenDoc }

func (t *apiTokenResolver) ID() graphql.ID       { return graphql.ID(t.d.ID) }
func (t *apiTokenResolver) Name() string         { return t.d.Name }
func (t *apiTokenResolver) CreatedAt() *dateTime { return optDate(t.d.CreatedAt) }

// memberGroups are the user's groups, in name order.
func (u *userResolver) memberGroups(ctx context.Context) ([]groupDoc, error) {
	all, err := u.st.groupsByID(ctx)
	if err != nil {
		return nil, errDatabase(err)
	}
	var out []groupDoc
	for _, id := range u.d.Groups {
		if g, ok := all[id]; ok {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Groups is the groups connection (no paging arguments: a user has few).
func (u *userResolver) Groups(ctx context.Context) (*groupConnectionResolver, error) {
	gs, err := u.memberGroups(ctx)
	if err != nil {
		return nil, err
	}
	return &groupConnectionResolver{st: u.st, groups: gs, page: onePage(len(gs)).p}, nil
}

// Roles are the roles of the user's groups.
func (u *userResolver) Roles(ctx context.Context) (*[]*roleResolver, error) {
	gs, err := u.memberGroups(ctx)
	if err != nil {
		return nil, err
	}
	var out []*roleResolver
	seen := map[string]bool{}
	for _, g := range gs {
		if r, ok := builtInRoles[g.RoleName]; ok && !seen[r.name] {
			seen[r.name] = true
			out = append(out, &roleResolver{r})
		}
	}
	return &out, nil
}

// Capabilities are those of the roles.
func (u *userResolver) Capabilities(ctx context.Context) ([]*capabilityResolver, error) {
	caps, err := u.st.capabilities(ctx, u.d)
	if err != nil {
		return nil, errDatabase(err)
	}
	return capabilityResolvers(caps), nil
}

// UserConfidenceLevel is the level set on the user, if any.
func (u *userResolver) UserConfidenceLevel() *confidenceLevelResolver {
	if u.d.ConfidenceLevel == nil {
		return nil
	}
	return &confidenceLevelResolver{*u.d.ConfidenceLevel}
}

// EffectiveConfidenceLevel is the user's own level, else the highest of its groups'.
func (u *userResolver) EffectiveConfidenceLevel(ctx context.Context) (*effectiveConfidenceResolver, error) {
	if u.d.ConfidenceLevel != nil {
		return &effectiveConfidenceResolver{level: *u.d.ConfidenceLevel, source: &confidenceSourceResolver{kind: "User", user: u}}, nil
	}
	gs, err := u.memberGroups(ctx)
	if err != nil {
		return nil, err
	}
	var best *groupDoc
	for i := range gs {
		if gs[i].ConfidenceLevel != nil && (best == nil || gs[i].ConfidenceLevel.MaxConfidence > best.ConfidenceLevel.MaxConfidence) {
			best = &gs[i]
		}
	}
	if best == nil {
		return nil, nil
	}
	return &effectiveConfidenceResolver{level: *best.ConfidenceLevel,
		source: &confidenceSourceResolver{kind: "Group", group: &groupResolver{st: u.st, d: *best}}}, nil
}

// ToUser lets a User stand where BasicObject or a union is expected.
func (u *userResolver) ToUser() (*userResolver, bool) { return u, true }

type userConnectionResolver struct {
	st    *apiState
	users []userDoc
	page  pageInfo
}

func (c *userConnectionResolver) PageInfo() *pageInfoResolver { return &pageInfoResolver{c.page} }
func (c *userConnectionResolver) Edges() []*userEdgeResolver {
	out := make([]*userEdgeResolver, len(c.users))
	for i, u := range c.users {
		out[i] = &userEdgeResolver{cursor: cursor(i), node: &userResolver{st: c.st, d: u}}
	}
	return out
}

type userEdgeResolver struct {
	cursor string
	node   *userResolver
}

func (e *userEdgeResolver) Cursor() string      { return e.cursor }
func (e *userEdgeResolver) Node() *userResolver { return e.node }

type groupResolver struct {
	st *apiState
	d  groupDoc
}

func (g *groupResolver) ID() graphql.ID                      { return graphql.ID(g.d.InternalID) }
func (g *groupResolver) StandardID() string                  { return g.d.StandardID }
func (g *groupResolver) EntityType() string                  { return entityGroup }
func (g *groupResolver) ParentTypes() []*string              { return strPtrs(g.d.ParentTypes) }
func (g *groupResolver) Name() string                        { return g.d.Name }
func (g *groupResolver) Description() *string                { return &g.d.Description }
func (g *groupResolver) CreatedAt() dateTime                 { return dateTime(g.d.CreatedAt) }
func (g *groupResolver) UpdatedAt() dateTime                 { return dateTime(g.d.UpdatedAt) }
func (g *groupResolver) DefaultAssignation() *bool           { return &g.d.DefaultAssignation }
func (g *groupResolver) NoCreators() *bool                   { f := false; return &f }
func (g *groupResolver) RestrictDelete() *bool               { f := false; return &f }
func (g *groupResolver) DefaultHiddenTypes() *[]*string      { return &[]*string{} }
func (g *groupResolver) AutoNewMarking() *bool               { return &g.d.AutoNewMarking }
func (g *groupResolver) AllowedMarking() *[]*markingResolver { return &[]*markingResolver{} }
func (g *groupResolver) DefaultMarking() *[]*defaultMarkingResolver {
	return &[]*defaultMarkingResolver{}
}
func (g *groupResolver) NotShareableMarkingTypes() *[]*string { return &[]*string{} }
func (g *groupResolver) MaxShareableMarking() *[]*markingResolver {
	return &[]*markingResolver{}
}
func (g *groupResolver) ToGroup() (*groupResolver, bool) { return g, true }

// GroupConfidenceLevel is the group's level.
func (g *groupResolver) GroupConfidenceLevel() *confidenceLevelResolver {
	if g.d.ConfidenceLevel == nil {
		return nil
	}
	return &confidenceLevelResolver{*g.d.ConfidenceLevel}
}

// Roles is the group's role.
func (g *groupResolver) Roles() *roleConnectionResolver {
	var roles []builtInRole
	if r, ok := builtInRoles[g.d.RoleName]; ok {
		roles = append(roles, r)
	}
	return &roleConnectionResolver{roles}
}

// Members are the users in the group.
func (g *groupResolver) Members(ctx context.Context) (*userConnectionResolver, error) {
	users, err := listAs[userDoc](ctx, g.st.objects, entityUser)
	if err != nil {
		return nil, errDatabase(err)
	}
	var in []userDoc
	for _, u := range users {
		if contains(u.Groups, g.d.InternalID) {
			in = append(in, u)
		}
	}
	return &userConnectionResolver{st: g.st, users: in, page: onePage(len(in)).p}, nil
}

type groupConnectionResolver struct {
	st     *apiState
	groups []groupDoc
	page   pageInfo
}

func (c *groupConnectionResolver) PageInfo() *pageInfoResolver { return &pageInfoResolver{c.page} }
func (c *groupConnectionResolver) Edges() []*groupEdgeResolver {
	out := make([]*groupEdgeResolver, len(c.groups))
	for i, g := range c.groups {
		out[i] = &groupEdgeResolver{cursor: cursor(i), node: &groupResolver{st: c.st, d: g}}
	}
	return out
}

type groupEdgeResolver struct {
	cursor string
	node   *groupResolver
}

func (e *groupEdgeResolver) Cursor() string       { return e.cursor }
func (e *groupEdgeResolver) Node() *groupResolver { return e.node }

type roleResolver struct{ r builtInRole }

func (r *roleResolver) ID() graphql.ID       { return graphql.ID(standardID("role", r.r.name)) }
func (r *roleResolver) Name() string         { return r.r.name }
func (r *roleResolver) Description() *string { return &r.r.description }
func (r *roleResolver) Capabilities() *[]*capabilityResolver {
	out := capabilityResolvers(r.r.capabilities)
	return &out
}
func (r *roleResolver) CapabilitiesInDraft() *[]*capabilityResolver {
	return &[]*capabilityResolver{}
}

type roleConnectionResolver struct{ roles []builtInRole }

func (c *roleConnectionResolver) PageInfo() *pageInfoResolver { return onePage(len(c.roles)) }
func (c *roleConnectionResolver) Edges() []*roleEdgeResolver {
	out := make([]*roleEdgeResolver, len(c.roles))
	for i, r := range c.roles {
		out[i] = &roleEdgeResolver{cursor(i), &roleResolver{r}}
	}
	return out
}

type roleEdgeResolver struct {
	cursor string
	node   *roleResolver
}

func (e *roleEdgeResolver) Cursor() string      { return e.cursor }
func (e *roleEdgeResolver) Node() *roleResolver { return e.node }

type capabilityResolver struct{ name string }

func (c *capabilityResolver) ID() graphql.ID       { return graphql.ID(standardID("capability", c.name)) }
func (c *capabilityResolver) Name() string         { return c.name }
func (c *capabilityResolver) Description() *string { return nil }

func capabilityResolvers(names []string) []*capabilityResolver {
	out := make([]*capabilityResolver, len(names))
	for i, n := range names {
		out[i] = &capabilityResolver{n}
	}
	return out
}

type organizationResolver struct{}

func (o *organizationResolver) ID() graphql.ID       { return "" }
func (o *organizationResolver) Name() string         { return "" }
func (o *organizationResolver) Description() *string { return nil }
func (o *organizationResolver) IsInferred() *bool    { return nil }

type organizationConnectionResolver struct{}

func (c *organizationConnectionResolver) PageInfo() *pageInfoResolver { return onePage(0) }
func (c *organizationConnectionResolver) Edges() []*organizationEdgeResolver {
	return []*organizationEdgeResolver{}
}

type organizationEdgeResolver struct{}

func (e *organizationEdgeResolver) Cursor() string              { return "" }
func (e *organizationEdgeResolver) Node() *organizationResolver { return &organizationResolver{} }

type markingResolver struct{}

func (m *markingResolver) ID() graphql.ID          { return "" }
func (m *markingResolver) StandardID() string      { return "" }
func (m *markingResolver) DefinitionType() *string { return nil }
func (m *markingResolver) Definition() *string     { return nil }

type defaultMarkingResolver struct{}

func (d *defaultMarkingResolver) EntityType() string { return "" }
func (d *defaultMarkingResolver) Values() *[]*markingResolver {
	return &[]*markingResolver{}
}

type confidenceLevelResolver struct{ c confidenceLevelInput }

func (c *confidenceLevelResolver) MaxConfidence() *int32 { return &c.c.MaxConfidence }
func (c *confidenceLevelResolver) Overrides() []*overrideResolver {
	out := make([]*overrideResolver, len(c.c.Overrides))
	for i, o := range c.c.Overrides {
		out[i] = &overrideResolver{o}
	}
	return out
}

type overrideResolver struct{ o confidenceLevelOverrideInput }

func (o *overrideResolver) EntityType() string   { return o.o.EntityType }
func (o *overrideResolver) MaxConfidence() int32 { return o.o.MaxConfidence }

type effectiveConfidenceResolver struct {
	level  confidenceLevelInput
	source *confidenceSourceResolver
}

func (e *effectiveConfidenceResolver) MaxConfidence() int32              { return e.level.MaxConfidence }
func (e *effectiveConfidenceResolver) Source() *confidenceSourceResolver { return e.source }
func (e *effectiveConfidenceResolver) Overrides() []*effectiveOverrideResolver {
	out := make([]*effectiveOverrideResolver, len(e.level.Overrides))
	for i, o := range e.level.Overrides {
		out[i] = &effectiveOverrideResolver{o, e.source}
	}
	return out
}

type effectiveOverrideResolver struct {
	o      confidenceLevelOverrideInput
	source *confidenceSourceResolver
}

func (e *effectiveOverrideResolver) EntityType() string                { return e.o.EntityType }
func (e *effectiveOverrideResolver) MaxConfidence() int32              { return e.o.MaxConfidence }
func (e *effectiveOverrideResolver) Source() *confidenceSourceResolver { return e.source }

type confidenceSourceResolver struct {
	kind  string
	user  *userResolver
	group *groupResolver
}

func (s *confidenceSourceResolver) Type() string { return s.kind }
func (s *confidenceSourceResolver) Object() *basicObjectResolver {
	return &basicObjectResolver{user: s.user, group: s.group}
}

// basicObjectResolver is a User or a Group where the schema has the
// BasicObject interface or the ConfidenceLevelSourceObject union.
type basicObjectResolver struct {
	user  *userResolver
	group *groupResolver
}

func (b *basicObjectResolver) ToUser() (*userResolver, bool)   { return b.user, b.user != nil }
func (b *basicObjectResolver) ToGroup() (*groupResolver, bool) { return b.group, b.group != nil }

// ID, EntityType and ParentTypes are the interface's own fields.
func (b *basicObjectResolver) ID() graphql.ID {
	if b.user != nil {
		return b.user.ID()
	}
	return b.group.ID()
}

func (b *basicObjectResolver) EntityType() string {
	if b.user != nil {
		return entityUser
	}
	return entityGroup
}

func (b *basicObjectResolver) ParentTypes() []*string {
	if b.user != nil {
		return b.user.ParentTypes()
	}
	return b.group.ParentTypes()
}

// ToInternalRelationship is never true: the stand-in's relations are user-to-group.
func (b *basicObjectResolver) ToInternalRelationship() (*relationResolver, bool) { return nil, false }

// ToMeUser is never true: MeUser is only the root of me.
func (b *basicObjectResolver) ToMeUser() (*userResolver, bool) { return nil, false }

// relationResolver is the InternalRelationship relationAdd returns.
type relationResolver struct {
	id       string
	from, to *basicObjectResolver
}

func (r *relationResolver) ID() graphql.ID     { return graphql.ID(r.id) }
func (r *relationResolver) EntityType() string { return relationMemberOf }
func (r *relationResolver) ParentTypes() []*string {
	return strPtrs([]string{"basic-relationship", "internal-relationship"})
}
func (r *relationResolver) RelationshipType() string   { return relationMemberOf }
func (r *relationResolver) From() *basicObjectResolver { return r.from }
func (r *relationResolver) To() *basicObjectResolver   { return r.to }

func strPtrs(ss []string) []*string {
	out := make([]*string, len(ss))
	for i := range ss {
		out[i] = &ss[i]
	}
	return out
}
