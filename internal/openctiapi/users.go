package openctiapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// User is an OpenCTI user as socflow reads it.
type User struct {
	// ID is the user's internal id.
	ID string `json:"id"`
	// Name is the user's name (connector-<name> for connectors' users).
	Name string `json:"name"`
	// Email is the user's login, unique on the platform.
	Email string `json:"user_email"`
	// AccountStatus is Active, Inactive, Locked or Expired.
	AccountStatus string `json:"account_status"`
	// APIToken is the user's API token; empty on OpenCTI 7, which keeps only its
	// HMAC (api_tokens) and never gives a token back.
	APIToken string `json:"api_token"`
	// Groups are the names of the groups the user is a member of.
	Groups []string `json:"-"`
}

// The account statuses socflow sets.
const (
	AccountActive   = "Active"
	AccountInactive = "Inactive"
)

// userFields is the selection of every user query, the groups as names; %s is
// api_token where the platform has it (tokenField).
const userFields = `id name user_email account_status %s groups { edges { node { name } } }`

// userQuery runs a query selecting userFields: with api_token first, and without it
// when the platform says the field does not exist (OpenCTI 7, whose
// legacy_token_migration replaced it with hashed api_tokens), remembered for the
// client's later calls.
func (c *Client) userQuery(ctx context.Context, query string, vars map[string]any, out any) error {
	token := "api_token"
	if c.noTokenField {
		token = ""
	}
	err := c.Query(ctx, strings.ReplaceAll(query, "%USER%", fmt.Sprintf(userFields, token)), vars, out)
	var qe *QueryError
	if token != "" && errors.As(err, &qe) && strings.Contains(qe.Error(), `Cannot query field "api_token" on type "User"`) {
		c.noTokenField = true
		return c.userQuery(ctx, query, vars, out)
	}
	return err
}

// userNode is a user as the queries answer it.
type userNode struct {
	User
	GroupConn struct {
		Edges []struct {
			Node struct {
				Name string `json:"name"`
			} `json:"node"`
		} `json:"edges"`
	} `json:"groups"`
}

func (n userNode) user() User {
	u := n.User
	for _, e := range n.GroupConn.Edges {
		u.Groups = append(u.Groups, e.Node.Name)
	}
	return u
}

// eq is a FilterGroup matching key = value, OpenCTI 6's filter shape.
func eq(key, value string) map[string]any {
	return map[string]any{"mode": "and", "filterGroups": []any{},
		"filters": []any{map[string]any{"key": []string{key}, "values": []string{value}, "operator": "eq", "mode": "or"}}}
}

// UserByEmail returns the user whose login is email, or nil when there is none.
func (c *Client) UserByEmail(ctx context.Context, email string) (*User, error) {
	users, err := c.users(ctx, `query UserByEmail($filters: FilterGroup) { users(first: 2, filters: $filters) { edges { node { %USER% } } } }`,
		map[string]any{"filters": eq("user_email", email)})
	if err != nil {
		return nil, fmt.Errorf("cannot look up the user %s: %w", email, err)
	}
	if len(users) == 0 {
		return nil, nil
	}
	return &users[0], nil
}

// Users returns every user (the platform's own page size is ample for the users
// socflow manages: one per connector).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	users, err := c.users(ctx, `query Users { users(first: 5000) { edges { node { %USER% } } } }`, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot list users: %w", err)
	}
	return users, nil
}

// users runs a users query and returns its nodes.
func (c *Client) users(ctx context.Context, query string, vars map[string]any) ([]User, error) {
	var out struct {
		Users struct {
			Edges []struct {
				Node userNode `json:"node"`
			} `json:"edges"`
		} `json:"users"`
	}
	if err := c.userQuery(ctx, query, vars, &out); err != nil {
		return nil, err
	}
	users := make([]User, len(out.Users.Edges))
	for i, e := range out.Users.Edges {
		users[i] = e.Node.user()
	}
	return users, nil
}

// GroupID returns the id of the group named name; group ids differ per platform, so
// socflow looks them up by name.
func (c *Client) GroupID(ctx context.Context, name string) (string, error) {
	var out struct {
		Groups struct {
			Edges []struct {
				Node struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"node"`
			} `json:"edges"`
		} `json:"groups"`
	}
	err := c.Query(ctx, `query GroupByName($filters: FilterGroup) { groups(first: 10, filters: $filters) { edges { node { id name } } } }`,
		map[string]any{"filters": eq("name", name)}, &out)
	if err != nil {
		return "", fmt.Errorf("cannot look up the group %s: %w", name, err)
	}
	for _, e := range out.Groups.Edges {
		if e.Node.Name == name {
			return e.Node.ID, nil
		}
	}
	return "", fmt.Errorf("the platform has no group %q", name)
}

// ErrUserExists is returned by AddUser when a user with the email exists; errors.As
// to *UserExistsError gives its id.
var ErrUserExists = errors.New("user already exists")

// UserExistsError is AddUser's refusal of an existing email, with the user's id.
type UserExistsError struct {
	// ID is the existing user's id, as the platform's error gives it.
	ID string
}

func (e *UserExistsError) Error() string { return "user already exists (id " + e.ID + ")" }

// Unwrap makes errors.Is(err, ErrUserExists) hold.
func (e *UserExistsError) Unwrap() error { return ErrUserExists }

// NewUser is what AddUser creates.
type NewUser struct {
	// Name and Email name the user; Password is its login password.
	Name, Email, Password string
	// GroupIDs are the groups it is a member of, and only those (no default group).
	GroupIDs []string
}

// AddUser creates a user (userAdd). An existing email is a *UserExistsError.
func (c *Client) AddUser(ctx context.Context, nu NewUser) (User, error) {
	var out struct {
		UserAdd userNode `json:"userAdd"`
	}
	err := c.userQuery(ctx, `mutation UserAdd($input: UserAddInput!) { userAdd(input: $input) { %USER% } }`,
		map[string]any{"input": map[string]any{"name": nu.Name, "user_email": nu.Email, "password": nu.Password,
			"groups": nu.GroupIDs, "prevent_default_groups": true}}, &out)
	var qe *QueryError
	if errors.As(err, &qe) && qe.Code() == "FUNCTIONAL_ERROR" && qe.Data("user_id") != "" {
		return User{}, &UserExistsError{ID: qe.Data("user_id")}
	}
	if err != nil {
		return User{}, fmt.Errorf("cannot add the user %s: %w", nu.Email, err)
	}
	return out.UserAdd.user(), nil
}

// SetAccountStatus sets a user's account_status (Active, Inactive).
func (c *Client) SetAccountStatus(ctx context.Context, id, status string) error {
	var out struct {
		UserEdit struct {
			FieldPatch struct {
				ID string `json:"id"`
			} `json:"fieldPatch"`
		} `json:"userEdit"`
	}
	err := c.Query(ctx, `mutation UserStatus($id: ID!, $input: [EditInput]!) { userEdit(id: $id) { fieldPatch(input: $input) { id } } }`,
		map[string]any{"id": id, "input": []any{map[string]any{"key": "account_status", "value": []string{status}}}}, &out)
	if err != nil {
		return fmt.Errorf("cannot set the account status of user %s to %s: %w", id, status, err)
	}
	return nil
}

// Connector is a registered connector as socflow reads it.
type Connector struct {
	// ID is CONNECTOR_ID.
	ID string `json:"id"`
	// Name is CONNECTOR_NAME.
	Name string `json:"name"`
	// Active says whether it pinged lately.
	Active bool `json:"active"`
	// UpdatedAt is its last ping (RFC 3339).
	UpdatedAt string `json:"updated_at"`
	// BuiltIn marks the platform's own connectors.
	BuiltIn bool `json:"built_in"`
}

// Connectors lists the registered connectors, the platform's built-in ones left out.
func (c *Client) Connectors(ctx context.Context) ([]Connector, error) {
	var out struct {
		Connectors []Connector `json:"connectors"`
	}
	if err := c.Query(ctx, `query Connectors { connectors { id name active updated_at built_in } }`, nil, &out); err != nil {
		return nil, fmt.Errorf("cannot list connectors: %w", err)
	}
	var list []Connector
	for _, cn := range out.Connectors {
		if !cn.BuiltIn {
			list = append(list, cn)
		}
	}
	return list, nil
}

// DeleteConnector deletes a connector's registration; one already deleted is not an
// error (the call is idempotent under retries).
func (c *Client) DeleteConnector(ctx context.Context, id string) error {
	var out struct {
		DeleteConnector string `json:"deleteConnector"`
	}
	err := c.Query(ctx, `mutation DeleteConnector($id: ID!) { deleteConnector(id: $id) }`, map[string]any{"id": id}, &out)
	var qe *QueryError
	if errors.As(err, &qe) && qe.Code() == "ALREADY_DELETED_ERROR" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot delete the connector %s: %w", id, err)
	}
	return nil
}
