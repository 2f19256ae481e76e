package wazuhapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// pageSize is how many items one list call asks for (the API's default limit).
const pageSize = 500

// MaxReservedUserID is the highest id of the users the manager reserves (wazuh and
// wazuh-wui): their roles cannot change (code CodeAdminResource), and only a
// reserved user may change their passwords (code CodeReservedUserModify).
const MaxReservedUserID = 99

// User is an API user as GET /security/users returns it.
type User struct {
	// ID is the user's id; 1 and 2 are the reserved wazuh and wazuh-wui.
	ID int `json:"id"`
	// Username is the login name.
	Username string `json:"username"`
	// AllowRunAs says whether the user may log in with an authorization context.
	AllowRunAs bool `json:"allow_run_as"`
	// Roles are the ids of the user's roles.
	Roles []int `json:"roles"`
}

// HasRole reports whether the user has the role with id roleID.
func (u User) HasRole(roleID int) bool {
	for _, r := range u.Roles {
		if r == roleID {
			return true
		}
	}
	return false
}

// Role is an RBAC role as GET /security/roles returns it.
type Role struct {
	// ID is the role's id (1 administrator, 2 readonly on a fresh manager).
	ID int `json:"id"`
	// Name is the role's name.
	Name string `json:"name"`
	// Users are the ids of the users with this role.
	Users []int `json:"users"`
}

// Authenticate logs user in with basic auth (POST /security/user/authenticate) and
// returns the JWT the other calls take. Wrong credentials match ErrInvalidCredentials;
// a port that refuses the connection matches ErrNotReady. An API that only knows the
// deprecated GET login (405 to POST) is asked with GET.
func (c *Client) Authenticate(ctx context.Context, user, password string) (string, error) {
	req := request{op: "authenticate as user " + user, method: http.MethodPost, path: "/security/user/authenticate",
		basic: &[2]string{user, password}, login: true}
	raw, err := c.do(ctx, req)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusMethodNotAllowed {
		req.method = http.MethodGet
		raw, err = c.do(ctx, req)
	}
	if err != nil {
		return "", err
	}
	var env struct {
		Data struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Data.Token == "" {
		return "", fmt.Errorf("cannot %s: the wazuh API's answer holds no token (%s)", req.op, shorten(string(raw)))
	}
	return env.Data.Token, nil
}

// Users lists every API user (GET /security/users, page by page).
func (c *Client) Users(ctx context.Context, token string) ([]User, error) {
	return list[User](ctx, c, token, "list users", "/security/users")
}

// Roles lists every RBAC role (GET /security/roles, page by page).
func (c *Client) Roles(ctx context.Context, token string) ([]Role, error) {
	return list[Role](ctx, c, token, "list roles", "/security/roles")
}

// list reads every page of a list endpoint.
func list[T any](ctx context.Context, c *Client, token, op, path string) ([]T, error) {
	var all []T
	for {
		q := url.Values{"limit": {strconv.Itoa(pageSize)}, "offset": {strconv.Itoa(len(all))}}
		raw, err := c.do(ctx, request{op: op, method: http.MethodGet, path: path, query: q, token: token})
		if err != nil {
			return nil, err
		}
		items, err := decodeItems[T](op, raw)
		if err != nil {
			return nil, err
		}
		all = append(all, items.Affected...)
		if len(items.Affected) == 0 || len(all) >= items.TotalAffected {
			return all, nil
		}
	}
}

// CreateUser adds an API user with no role (POST /security/users). A password the
// API's policy refuses matches ErrPasswordPolicy; an existing name fails with code
// CodeUserNotCreated.
func (c *Client) CreateUser(ctx context.Context, token, name, password string) (User, error) {
	op := "create user " + name
	raw, err := c.do(ctx, request{op: op, method: http.MethodPost, path: "/security/users", token: token,
		body: map[string]string{"username": name, "password": password}})
	if err != nil {
		return User{}, err
	}
	return one[User](op, raw)
}

// SetPassword changes the password of the user with id (PUT /security/users/{id}).
// The API revokes the user's tokens when it does: a caller that changed its own
// password must log in again. Reserved users (wazuh, wazuh-wui) can be changed only
// with a reserved user's token (code CodeReservedUserModify otherwise).
func (c *Client) SetPassword(ctx context.Context, token string, id int, password string) error {
	op := "update the password of user " + strconv.Itoa(id)
	raw, err := c.do(ctx, request{op: op, method: http.MethodPut, path: "/security/users/" + strconv.Itoa(id), token: token,
		body: map[string]string{"password": password}})
	if err != nil {
		return err
	}
	_, err = one[User](op, raw)
	return err
}

// AddUserRoles links roles to the user with id (POST /security/users/{id}/roles).
// Roles the user already has are not an error; the API revokes the user's tokens
// when it links a role.
func (c *Client) AddUserRoles(ctx context.Context, token string, id int, roleIDs []int) (User, error) {
	ids := make([]string, len(roleIDs))
	for i, r := range roleIDs {
		ids[i] = strconv.Itoa(r)
	}
	op := fmt.Sprintf("link roles %s to user %d", strings.Join(ids, ","), id)
	raw, err := c.do(ctx, request{op: op, method: http.MethodPost, path: "/security/users/" + strconv.Itoa(id) + "/roles",
		query: url.Values{"role_ids": {strings.Join(ids, ",")}}, token: token})
	if err != nil {
		return User{}, err
	}
	items, err := decodeItems[User](op, raw)
	for _, f := range items.Failed {
		if f.Error.Code != CodeUserRoleExists {
			return User{}, failedError(op, f)
		}
	}
	if err != nil && len(items.Failed) == 0 {
		return User{}, err // not a failed item: the answer itself is broken
	}
	if len(items.Affected) > 0 {
		return items.Affected[0], nil
	}
	return User{ID: id, Roles: roleIDs}, nil
}

// one reads an answer that must affect exactly one item.
func one[T any](op string, raw []byte) (T, error) {
	var zero T
	items, err := decodeItems[T](op, raw)
	if err != nil {
		return zero, err
	}
	if len(items.Affected) == 0 {
		return zero, fmt.Errorf("cannot %s: the wazuh API affected no item (%s)", op, items.Message)
	}
	return items.Affected[0], nil
}
