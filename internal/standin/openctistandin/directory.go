package openctistandin

import (
	"context"
	"strings"

	"github.com/google/uuid"
)

// Internal entity types, as OpenCTI names them in entity_type.
const (
	entityUser      = "User"
	entityGroup     = "Group"
	entityConnector = "Connector"
	entityWork      = "Work"
)

// Capabilities the stand-in checks, by OpenCTI's names.
const (
	capBypass         = "BYPASS"
	capSettings       = "SETTINGS"
	capSetAccesses    = "SETTINGS_SETACCESSES"
	capConnectorAPI   = "CONNECTORAPI"
	capModules        = "MODULES"
	capModulesManage  = "MODULES_MODMANAGE"
	relationMemberOf  = "member-of"
	accountActive     = "Active"
	defaultUserTheme  = "default"
	defaultUserLocale = "auto"
)

// builtInRole is one of the roles OpenCTI creates at first boot, with its capabilities.
type builtInRole struct {
	name, description string
	capabilities      []string
}

// builtInRoles are createBasicRolesAndCapabilities' three roles (6.9).
var builtInRoles = map[string]builtInRole{
	"Administrator": {"Administrator", "Administrator role that bypass every capabilities", []string{capBypass}},
	"Connector": {"Connector", "Connector role that has the recommended capabilities", []string{
		"KNOWLEDGE_KNUPDATE_KNDELETE", "KNOWLEDGE_KNUPDATE_KNBYPASSFIELDS", "KNOWLEDGE_KNUPLOAD", "KNOWLEDGE_KNASKIMPORT",
		"KNOWLEDGE_KNGETEXPORT_KNASKEXPORT", "KNOWLEDGE_KNENRICHMENT", capConnectorAPI, "KNOWLEDGE_KNUPDATE_KNBYPASSREFERENCE",
		capModulesManage, "TAXIIAPI", "INGESTION", "SETTINGS_SETMARKINGS", "SETTINGS_SETLABELS"}},
	"Default": {"Default", "Default role associated to the default group", []string{"KNOWLEDGE"}},
}

// builtInGroup is one of the groups OpenCTI creates at first boot.
type builtInGroup struct {
	name, description, role        string
	defaultAssignation, autoMarked bool
}

// builtInGroups are OpenCTI's: every new user joins Default (default_assignation)
// unless the creation says prevent_default_groups.
var builtInGroups = []builtInGroup{
	{"Administrators", "Administrator group", "Administrator", false, true},
	{"Connectors", "Connector group", "Connector", false, true},
	{"Default", "Default group associated to all users", "Default", true, false},
}

// groupDoc is a stored group. Ids are made once, at the first boot, and kept
// with the data: like OpenCTI's, they differ between platforms, so clients
// must look groups up by name.
type groupDoc struct {
	InternalID         string                `json:"internal_id"`
	StandardID         string                `json:"standard_id"`
	EntityType         string                `json:"entity_type"`
	ParentTypes        []string              `json:"parent_types"`
	Name               string                `json:"name"`
	Description        string                `json:"description"`
	DefaultAssignation bool                  `json:"default_assignation"`
	AutoNewMarking     bool                  `json:"auto_new_marking"`
	RoleName           string                `json:"role_name"`
	ConfidenceLevel    *confidenceLevelInput `json:"group_confidence_level"`
	CreatedAt          string                `json:"created_at"`
	UpdatedAt          string                `json:"updated_at"`
}

// userDoc is a stored user. Memberships are kept on the user, as OpenCTI
// denormalises member-of relations into rel_member-of.internal_id. A 6.x user
// has its token in clear in api_token; the 7.x legacy_token_migration moves it,
// hashed, into api_tokens (tokens.go).
type userDoc struct {
	InternalID           string                `json:"internal_id"`
	StandardID           string                `json:"standard_id"`
	EntityType           string                `json:"entity_type"`
	ParentTypes          []string              `json:"parent_types"`
	Name                 string                `json:"name"`
	UserEmail            string                `json:"user_email"`
	Firstname            *string               `json:"firstname"`
	Lastname             *string               `json:"lastname"`
	Description          *string               `json:"description"`
	Language             string                `json:"language"`
	Theme                string                `json:"theme"`
	UnitSystem           *string               `json:"unit_system"`
	External             bool                  `json:"external"`
	AccountStatus        string                `json:"account_status"`
	AccountLockAfterDate *string               `json:"account_lock_after_date"`
	APIToken             string                `json:"api_token,omitempty"`
	APITokens            []apiTokenDoc         `json:"api_tokens,omitempty"`
	UserServiceAccount   bool                  `json:"user_service_account"`
	SubmenuShowIcons     bool                  `json:"submenu_show_icons"`
	SubmenuAutoCollapse  bool                  `json:"submenu_auto_collapse"`
	MonochromeLabels     bool                  `json:"monochrome_labels"`
	ConfidenceLevel      *confidenceLevelInput `json:"user_confidence_level"`
	Groups               []string              `json:"groups"`
	CreatedAt            string                `json:"created_at"`
	UpdatedAt            string                `json:"updated_at"`
}

// confidenceLevelInput is ConfidenceLevelInput, stored as given.
type confidenceLevelInput struct {
	MaxConfidence int32                          `json:"max_confidence"`
	Overrides     []confidenceLevelOverrideInput `json:"overrides"`
}

// confidenceLevelOverrideInput is ConfidenceLevelOverrideInput.
type confidenceLevelOverrideInput struct {
	EntityType    string `json:"entity_type"`
	MaxConfidence int32  `json:"max_confidence"`
}

// standardID derives a stable standard id from the identifying fields, the way
// OpenCTI's standard ids are deterministic (its exact namespace and key
// encoding are not reproduced).
func standardID(entityType, key string) string {
	ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://socflow.local/openctistandin"))
	return strings.ToLower(entityType) + "--" + uuid.NewSHA1(ns, []byte(strings.ToLower(key))).String()
}

// ensureDirectory creates the built-in groups missing from the store and
// writes the admin user from APP__ADMIN__* (email and token follow the
// environment at every boot, as OpenCTI's initializeAdminUser does, which is
// why APP__ADMIN__TOKEN survives a change of the 7.x token key). tokenKey is
// Config.tokenKey: nil keeps the token in clear (6.x).
func ensureDirectory(ctx context.Context, o objectStore, adminEmail, adminToken string, tokenKey []byte) error {
	groups, err := listAs[groupDoc](ctx, o, entityGroup)
	if err != nil {
		return err
	}
	byName := map[string]string{}
	for _, g := range groups {
		byName[g.Name] = g.InternalID
	}
	for _, b := range builtInGroups {
		if _, ok := byName[b.name]; ok {
			continue
		}
		now := nowISO()
		g := groupDoc{InternalID: uuid.NewString(), StandardID: standardID("group", b.name), EntityType: entityGroup,
			ParentTypes: internalObjectParentTypes, Name: b.name, Description: b.description,
			DefaultAssignation: b.defaultAssignation, AutoNewMarking: b.autoMarked, RoleName: b.role,
			ConfidenceLevel: &confidenceLevelInput{MaxConfidence: 100, Overrides: []confidenceLevelOverrideInput{}},
			CreatedAt:       now, UpdatedAt: now}
		if err := o.put(ctx, entityGroup, g.InternalID, g); err != nil {
			return err
		}
		byName[b.name] = g.InternalID
	}
	var admin userDoc
	found, err := o.get(ctx, entityUser, adminUserID, &admin)
	if err != nil {
		return err
	}
	now := nowISO()
	if !found {
		admin = userDoc{InternalID: adminUserID, EntityType: entityUser, ParentTypes: internalObjectParentTypes,
			Language: defaultUserLocale, Theme: defaultUserTheme, CreatedAt: now}
	}
	if admin.CreatedAt == "" {
		// An admin written by an older stand-in has none, and the index maps the field
		// as a date, which refuses "" (the platform would then fail every boot).
		admin.CreatedAt = now
	}
	admin.Name, admin.UserEmail = "admin", strings.ToLower(adminEmail)
	setToken(&admin, tokenKey, adminTokenName, adminToken)
	admin.StandardID, admin.AccountStatus, admin.UpdatedAt = standardID("user", admin.UserEmail), accountActive, now
	if !contains(admin.Groups, byName["Administrators"]) {
		admin.Groups = append(admin.Groups, byName["Administrators"])
	}
	return o.put(ctx, entityUser, adminUserID, admin)
}

// internalObjectParentTypes are the parent_types OpenCTI stores on an internal
// object: users, groups, connectors and the migration status alike.
var internalObjectParentTypes = []string{"Basic-Object", "Internal-Object"}

// authenticate resolves a bearer token to its user, by its HMAC under the
// configured key on 7.x (tokenMatches). Tokens of users whose
// account is not Active authenticate nobody: OpenCTI refuses them at login and
// the request goes on anonymous, so protected fields answer AUTH_REQUIRED.
func (st *apiState) authenticate(ctx context.Context, token string) (*user, error) {
	users, err := listAs[userDoc](ctx, st.objects, entityUser)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if !tokenMatches(u, st.tokenKey, token) {
			continue
		}
		if u.AccountStatus != accountActive {
			return nil, nil
		}
		caps, err := st.capabilities(ctx, u)
		if err != nil {
			return nil, err
		}
		return &user{doc: u, caps: caps}, nil
	}
	return nil, nil
}

// capabilities are those of the roles of the user's groups.
func (st *apiState) capabilities(ctx context.Context, u userDoc) ([]string, error) {
	groups, err := st.groupsByID(ctx)
	if err != nil {
		return nil, err
	}
	var caps []string
	for _, id := range u.Groups {
		if g, ok := groups[id]; ok {
			for _, c := range builtInRoles[g.RoleName].capabilities {
				if !contains(caps, c) {
					caps = append(caps, c)
				}
			}
		}
	}
	return caps, nil
}

// groupsByID loads every group.
func (st *apiState) groupsByID(ctx context.Context) (map[string]groupDoc, error) {
	groups, err := listAs[groupDoc](ctx, st.objects, entityGroup)
	if err != nil {
		return nil, err
	}
	out := make(map[string]groupDoc, len(groups))
	for _, g := range groups {
		out[g.InternalID] = g
	}
	return out, nil
}

// resolveGroup finds a group by internal or standard id, as OpenCTI resolves
// the target of a relation.
func resolveGroup(groups map[string]groupDoc, id string) (groupDoc, bool) {
	if g, ok := groups[id]; ok {
		return g, true
	}
	for _, g := range groups {
		if g.StandardID == id {
			return g, true
		}
	}
	return groupDoc{}, false
}

// findUser loads a user by internal or standard id.
func (st *apiState) findUser(ctx context.Context, id string) (userDoc, bool, error) {
	users, err := listAs[userDoc](ctx, st.objects, entityUser)
	if err != nil {
		return userDoc{}, false, err
	}
	for _, u := range users {
		if u.InternalID == id || u.StandardID == id {
			return u, true, nil
		}
	}
	return userDoc{}, false, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
