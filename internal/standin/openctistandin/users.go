package openctistandin

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	graphql "github.com/graph-gophers/graphql-go"
)

// Users and groups: the queries and mutations socflow and pycti use to manage
// connector accounts, with OpenCTI's rules — email unique and lower-cased,
// Default joined unless prevented, relations to unknown ids refused after the
// user was created, tokens of non-Active accounts authenticating nobody.

// Users is users(...) (@auth SETTINGS_SETACCESSES).
func (q *queryResolver) Users(ctx context.Context, args listArgs) (*userConnectionResolver, error) {
	if _, err := requireCapability(ctx, capSetAccesses); err != nil {
		return nil, err
	}
	page, pi, err := listPage[userDoc](ctx, q.st.objects, entityUser, args, "name", "user_email")
	if err != nil {
		return nil, err
	}
	return &userConnectionResolver{st: q.st, users: page, page: pi}, nil
}

// User is user(id) (@auth SETTINGS_SETACCESSES): null when there is none.
func (q *queryResolver) User(ctx context.Context, args struct{ ID string }) (*userResolver, error) {
	if _, err := requireCapability(ctx, capSetAccesses); err != nil {
		return nil, err
	}
	u, ok, err := q.st.findUser(ctx, args.ID)
	if err != nil {
		return nil, errDatabase(err)
	}
	if !ok {
		return nil, nil
	}
	return &userResolver{st: q.st, d: u}, nil
}

// Groups is groups(...) (@auth SETTINGS_SETACCESSES).
func (q *queryResolver) Groups(ctx context.Context, args listArgs) (*groupConnectionResolver, error) {
	if _, err := requireCapability(ctx, capSetAccesses); err != nil {
		return nil, err
	}
	page, pi, err := listPage[groupDoc](ctx, q.st.objects, entityGroup, args, "name", "description")
	if err != nil {
		return nil, err
	}
	return &groupConnectionResolver{st: q.st, groups: page, page: pi}, nil
}

// Group is group(id): null when there is none.
func (q *queryResolver) Group(ctx context.Context, args struct{ ID string }) (*groupResolver, error) {
	if _, err := requireCapability(ctx, capSetAccesses); err != nil {
		return nil, err
	}
	groups, err := q.st.groupsByID(ctx)
	if err != nil {
		return nil, errDatabase(err)
	}
	g, ok := resolveGroup(groups, args.ID)
	if !ok {
		return nil, nil
	}
	return &groupResolver{st: q.st, d: g}, nil
}

// userAddInput is UserAddInput as pycti sends it.
type userAddInput struct {
	StixID               *stixRef
	XOpenctiStixIDs      *[]*stixRef
	UserEmail            *string
	Name                 string
	Password             *string
	Firstname            *string
	Lastname             *string
	Description          *string
	Language             *string
	Theme                *string
	ObjectOrganization   *[]*string
	AccountStatus        *string
	AccountLockAfterDate *dateTime
	UnitSystem           *string
	SubmenuShowIcons     *bool
	SubmenuAutoCollapse  *bool
	MonochromeLabels     *bool
	Groups               *[]*string
	UserConfidenceLevel  *confidenceLevelInput
	PreventDefaultGroups *bool
	UserServiceAccount   *bool
	EmailTemplateID      *graphql.ID
}

// UserAdd is OpenCTI's addUser: the email must be new (compared lower-cased;
// service accounts skip the check), the user is written, then its memberships
// are created — the given groups and, unless prevent_default_groups, the
// default ones. A group id that resolves to nothing fails the mutation with
// MISSING_REFERENCE_ERROR after the user exists, as in OpenCTI, so a caller
// retrying must look the user up by email first.
//
// With Timings.UserAddAnswer the answer is held back that long after the user is
// written (and the write lock released), so a test can kill the caller while its
// userAdd has done its work but not answered.
func (q *queryResolver) UserAdd(ctx context.Context, args struct{ Input userAddInput }) (*userResolver, error) {
	if _, err := requireCapability(ctx, capSetAccesses); err != nil {
		return nil, err
	}
	u, err := q.addUser(ctx, args.Input)
	if err == nil && q.st.userAddAnswer > 0 {
		if err := sleepCtx(ctx, q.st.userAddAnswer); err != nil {
			return nil, err
		}
	}
	return u, err
}

// addUser writes the user and its memberships under the API's write lock.
func (q *queryResolver) addUser(ctx context.Context, in userAddInput) (*userResolver, error) {
	st := q.st
	st.mu.Lock()
	defer st.mu.Unlock()
	serviceAccount := in.UserServiceAccount != nil && *in.UserServiceAccount
	var email string
	switch {
	case in.UserEmail != nil && *in.UserEmail != "" && !serviceAccount:
		email = strings.ToLower(*in.UserEmail)
		users, err := listAs[userDoc](ctx, st.objects, entityUser)
		if err != nil {
			return nil, errDatabase(err)
		}
		for _, u := range users {
			if u.UserEmail == email {
				return nil, errFunctional("User already exists", map[string]any{"user_id": u.InternalID})
			}
		}
	case serviceAccount:
		email = "automatic+" + uuid.NewString() + "@opencti.invalid"
		if in.UserEmail != nil && *in.UserEmail != "" {
			email = *in.UserEmail
		}
	default:
		return nil, errFunctional("User cannot be created without email", nil)
	}
	now := nowISO()
	u := userDoc{InternalID: uuid.NewString(), StandardID: standardID("user", email), EntityType: entityUser,
		ParentTypes: internalObjectParentTypes, Name: in.Name, UserEmail: email, Firstname: in.Firstname, Lastname: in.Lastname,
		Description: in.Description, Language: orDefault(in.Language, defaultUserLocale), Theme: orDefault(in.Theme, defaultUserTheme),
		UnitSystem: in.UnitSystem, AccountStatus: orDefault(in.AccountStatus, accountActive),
		UserServiceAccount: serviceAccount, SubmenuShowIcons: isTrue(in.SubmenuShowIcons),
		SubmenuAutoCollapse: isTrue(in.SubmenuAutoCollapse), MonochromeLabels: isTrue(in.MonochromeLabels),
		ConfidenceLevel: in.UserConfidenceLevel, Groups: []string{}, CreatedAt: now, UpdatedAt: now}
	if in.AccountLockAfterDate != nil {
		s := string(*in.AccountLockAfterDate)
		u.AccountLockAfterDate = &s
	}
	// On 7.x the token is kept only as its hash, so no client learns it from
	// userAdd; the 7.x token API is not modelled.
	setToken(&u, st.tokenKey, userTokenName, uuid.NewString())
	if err := st.objects.put(ctx, entityUser, u.InternalID, u); err != nil {
		return nil, errDatabase(err)
	}
	groups, err := st.groupsByID(ctx)
	if err != nil {
		return nil, errDatabase(err)
	}
	var missing []string
	for _, id := range values(in.Groups) {
		g, ok := resolveGroup(groups, id)
		if !ok {
			missing = append(missing, id)
			continue
		}
		if !contains(u.Groups, g.InternalID) {
			u.Groups = append(u.Groups, g.InternalID)
		}
	}
	if in.PreventDefaultGroups == nil || !*in.PreventDefaultGroups {
		for _, g := range groups {
			if g.DefaultAssignation && !contains(u.Groups, g.InternalID) {
				u.Groups = append(u.Groups, g.InternalID)
			}
		}
	}
	if err := st.objects.put(ctx, entityUser, u.InternalID, u); err != nil {
		return nil, errDatabase(err)
	}
	if len(missing) > 0 {
		return nil, errMissingReference(map[string]any{
			"input":         map[string]any{"fromId": u.InternalID, "toId": missing[0], "relationship_type": relationMemberOf},
			"unresolvedIds": []string{missing[0]},
		})
	}
	return &userResolver{st: st, d: u}, nil
}

// UserEdit is userEdit(id) (@auth SETTINGS_SETACCESSES); each mutation below
// loads the user itself, as OpenCTI's do.
func (q *queryResolver) UserEdit(ctx context.Context, args struct{ ID graphql.ID }) (*userEditResolver, error) {
	if _, err := requireCapability(ctx, capSetAccesses); err != nil {
		return nil, err
	}
	return &userEditResolver{st: q.st, id: string(args.ID)}, nil
}

type userEditResolver struct {
	st *apiState
	id string
}

// user loads the edited user, the caller holding st.mu; missing is the error the
// mutation answers when there is none, since OpenCTI's differ from one mutation to
// the next.
func (e *userEditResolver) user(ctx context.Context, missing error) (userDoc, error) {
	u, ok, err := e.st.findUser(ctx, e.id)
	if err != nil {
		return u, errDatabase(err)
	}
	if !ok {
		return u, missing
	}
	return u, nil
}

// Delete removes the user: its token stops working at once.
func (e *userEditResolver) Delete(ctx context.Context) (*graphql.ID, error) {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	u, err := e.user(ctx, errAlreadyDeleted(map[string]any{"id": e.id}))
	if err != nil {
		return nil, err
	}
	if u.InternalID == adminUserID {
		return nil, errFunctional("Cannot delete the admin user", map[string]any{"id": e.id})
	}
	if _, err := e.st.objects.remove(ctx, entityUser, u.InternalID); err != nil {
		return nil, errDatabase(err)
	}
	id := graphql.ID(u.InternalID)
	return &id, nil
}

// editInput is EditInput.
type editInput struct {
	Key        string
	ObjectPath *string
	Value      []*anyValue
	Operation  *string
}

// FieldPatch sets attributes of the user. The stand-in knows the attributes a
// connector account needs; others are refused by name.
func (e *userEditResolver) FieldPatch(ctx context.Context, args struct{ Input []*editInput }) (*userResolver, error) {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	// OpenCTI dereferences the missing user: a TypeError reaches the client.
	u, err := e.user(ctx, errInternal("Cannot read properties of undefined (reading 'external')"))
	if err != nil {
		return nil, err
	}
	for _, in := range args.Input {
		if in == nil {
			continue
		}
		var value string
		var isNull bool
		if len(in.Value) == 0 || in.Value[0] == nil || in.Value[0].v == nil {
			isNull = true
		} else {
			value = in.Value[0].String()
		}
		optional := func() *string {
			if isNull {
				return nil
			}
			v := value
			return &v
		}
		switch in.Key {
		case "name":
			u.Name = value
		case "user_email":
			u.UserEmail = strings.ToLower(value)
		case "firstname":
			u.Firstname = optional()
		case "lastname":
			u.Lastname = optional()
		case "description":
			u.Description = optional()
		case "language":
			u.Language = value
		case "theme":
			u.Theme = value
		case "unit_system":
			u.UnitSystem = optional()
		case "account_status":
			u.AccountStatus = value
		case "account_lock_after_date":
			u.AccountLockAfterDate = optional()
		case "password":
			if u.UserServiceAccount {
				return nil, errFunctional("Cannot update password for Service account", map[string]any{"userId": u.InternalID})
			}
			// Passwords are not kept by the stand-in: only API tokens log in.
		case "api_token":
			if e.st.tokenKey != nil {
				// 7.x has no api_token attribute left to patch.
				return nil, errUnsupported("The stand-in cannot update the attribute api_token of a User", map[string]any{"key": in.Key})
			}
			u.APIToken = value
		default:
			return nil, errUnsupported(fmt.Sprintf("The stand-in cannot update the attribute %s of a User", in.Key), map[string]any{"key": in.Key})
		}
	}
	u.UpdatedAt = nowISO()
	if err := e.st.objects.put(ctx, entityUser, u.InternalID, u); err != nil {
		return nil, errDatabase(err)
	}
	return &userResolver{st: e.st, d: u}, nil
}

// internalRelationshipAddInput is InternalRelationshipAddInput.
type internalRelationshipAddInput struct {
	FromID           *graphql.ID
	ToID             *graphql.ID
	RelationshipType string
}

// RelationAdd adds the user to a group (member-of); re-adding is a no-op.
func (e *userEditResolver) RelationAdd(ctx context.Context, args struct {
	Input *internalRelationshipAddInput
}) (*relationResolver, error) {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	u, err := e.user(ctx, errFunctional("Cannot add the relation, User cannot be found.", map[string]any{"userId": e.id}))
	if err != nil {
		return nil, err
	}
	if args.Input == nil || args.Input.RelationshipType != relationMemberOf {
		rt := ""
		if args.Input != nil {
			rt = args.Input.RelationshipType
		}
		return nil, errFunctional("Only internal-relationship can be added through this method, got "+rt+".", nil)
	}
	to := ""
	if args.Input.ToID != nil {
		to = string(*args.Input.ToID)
	}
	groups, err := e.st.groupsByID(ctx)
	if err != nil {
		return nil, errDatabase(err)
	}
	g, ok := resolveGroup(groups, to)
	if !ok {
		return nil, errMissingReference(map[string]any{
			"input":         map[string]any{"fromId": u.InternalID, "toId": to, "relationship_type": relationMemberOf},
			"unresolvedIds": []string{to},
		})
	}
	if !contains(u.Groups, g.InternalID) {
		u.Groups = append(u.Groups, g.InternalID)
		u.UpdatedAt = nowISO()
		if err := e.st.objects.put(ctx, entityUser, u.InternalID, u); err != nil {
			return nil, errDatabase(err)
		}
	}
	return &relationResolver{id: standardID("relationship", u.InternalID+">"+g.InternalID),
		from: &basicObjectResolver{user: &userResolver{st: e.st, d: u}}, to: &basicObjectResolver{group: &groupResolver{st: e.st, d: g}}}, nil
}

// RelationDelete removes the user from a group.
func (e *userEditResolver) RelationDelete(ctx context.Context, args struct {
	ToID             stixRef
	RelationshipType string
}) (*userResolver, error) {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	u, err := e.user(ctx, errFunctional("Cannot delete the relation, User cannot be found.", map[string]any{"userId": e.id}))
	if err != nil {
		return nil, err
	}
	if args.RelationshipType != relationMemberOf {
		return nil, errFunctional("Only internal-relationship can be deleted through this method, got "+args.RelationshipType+".", nil)
	}
	groups, err := e.st.groupsByID(ctx)
	if err != nil {
		return nil, errDatabase(err)
	}
	if g, ok := resolveGroup(groups, string(args.ToID)); ok {
		kept := u.Groups[:0]
		for _, id := range u.Groups {
			if id != g.InternalID {
				kept = append(kept, id)
			}
		}
		u.Groups, u.UpdatedAt = kept, nowISO()
		if err := e.st.objects.put(ctx, entityUser, u.InternalID, u); err != nil {
			return nil, errDatabase(err)
		}
	}
	return &userResolver{st: e.st, d: u}, nil
}

// TokenRenew gives the user a new API token; the old one stops working at once.
func (e *userEditResolver) TokenRenew(ctx context.Context) (*userResolver, error) {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	u, err := e.user(ctx, errFunctional("Cant find element to update", map[string]any{"id": e.id, "type": entityUser}))
	if err != nil {
		return nil, err
	}
	setToken(&u, e.st.tokenKey, userTokenName, uuid.NewString())
	u.UpdatedAt = nowISO()
	if err := e.st.objects.put(ctx, entityUser, u.InternalID, u); err != nil {
		return nil, errDatabase(err)
	}
	return &userResolver{st: e.st, d: u}, nil
}

func orDefault(p *string, def string) string {
	if p == nil || *p == "" {
		return def
	}
	return *p
}

func isTrue(p *bool) bool { return p != nil && *p }

// values are the non-null strings of an optional GraphQL list ([String] as
// graphql-go decodes it), in order.
func values(p *[]*string) []string {
	var out []string
	if p != nil {
		for _, s := range *p {
			if s != nil {
				out = append(out, *s)
			}
		}
	}
	return out
}
