package wazuhstandin

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// getUsers is GET /security/users (user_ids, offset, limit, search).
func (a *api) getUsers(w http.ResponseWriter, r *http.Request, _ *claims) {
	q := r.URL.Query()
	a.mu.Lock()
	var found []apiUser
	var failed []failedItem
	if ids := idList(q.Get("user_ids")); ids != nil {
		for _, s := range ids {
			id, _ := strconv.Atoi(s)
			if u := a.userByID(id); u != nil {
				found = append(found, *u)
			} else {
				failed = append(failed, failedItem{Error: catalogue(5001), ID: []any{id}})
			}
		}
	} else {
		for _, u := range a.users {
			found = append(found, *u)
		}
	}
	a.mu.Unlock()
	if s := q.Get("search"); s != "" {
		var kept []apiUser
		for _, u := range found {
			if strings.Contains(u.Username, strings.TrimPrefix(s, "-")) != strings.HasPrefix(s, "-") {
				kept = append(kept, u)
			}
		}
		found = kept
	}
	total := len(found)
	found = page(found, q.Get("offset"), q.Get("limit"))
	if found == nil {
		found = []apiUser{}
	}
	result(w, found, total, failed, "All specified users were returned", "Some users were not returned", "No user was returned")
}

// page applies offset and limit.
func page[T any](list []T, offset, limit string) []T {
	o, _ := strconv.Atoi(offset)
	if o > len(list) {
		o = len(list)
	}
	list = list[o:]
	if l, err := strconv.Atoi(limit); err == nil && l >= 0 && l < len(list) {
		list = list[:l]
	}
	return list
}

// createUser is POST /security/users {"username","password"}.
func (a *api) createUser(w http.ResponseWriter, r *http.Request, _ *claims) {
	var body struct {
		Username *string `json:"username"`
		Password *string `json:"password"`
	}
	if !readBody(w, r, &body) {
		return
	}
	switch {
	case body.Username == nil:
		problem(w, http.StatusBadRequest, "Bad Request", "'username' is a required property", 0, "")
		return
	case body.Password == nil:
		problem(w, http.StatusBadRequest, "Bad Request", "'password' is a required property", 0, "")
		return
	case len(*body.Username) < 4 || len(*body.Username) > 64 || !basicAuthUser.MatchString(*body.Username):
		problem(w, http.StatusBadRequest, "Bad Request", "'"+*body.Username+"' does not match '^[\\w.\\-]+$' or its length is not between 4 and 64", 0, "")
		return
	}
	if code := passwordError(*body.Password); code != 0 {
		wazuhProblem(w, code)
		return
	}
	a.mu.Lock()
	if a.user(*body.Username) != nil {
		a.mu.Unlock()
		result(w, []apiUser{}, 0, []failedItem{{Error: catalogue(5000), ID: []any{*body.Username}}},
			"User was successfully created", "", "User could not be created")
		return
	}
	u := &apiUser{ID: a.nextUser, Username: *body.Username, Roles: []int{}, password: *body.Password}
	a.nextUser++
	a.users = append(a.users, u)
	created := *u
	a.mu.Unlock()
	result(w, []apiUser{created}, 1, nil, "User was successfully created", "", "User could not be created")
}

// updateUser is PUT /security/users/{user_id} {"password"}; the user's tokens are revoked.
func (a *api) updateUser(w http.ResponseWriter, r *http.Request, c *claims) {
	id, ok := pathID(r)
	if !ok {
		problem(w, http.StatusBadRequest, "Bad Request", "'"+r.PathValue("user_id")+"' is not of type 'integer'", 0, "")
		return
	}
	var body struct {
		Password *string `json:"password"`
	}
	if !readBody(w, r, &body) {
		return
	}
	if body.Password == nil {
		wazuhProblem(w, 4001)
		return
	}
	if code := passwordError(*body.Password); code != 0 {
		wazuhProblem(w, code)
		return
	}
	a.mu.Lock()
	u := a.userByID(id)
	if u == nil {
		a.mu.Unlock()
		result(w, []apiUser{}, 0, []failedItem{{Error: catalogue(5001), ID: []any{id}}}, "User was successfully updated", "", "User could not be updated")
		return
	}
	u.password = *body.Password
	a.invalid[u.ID] = time.Now().Unix()
	updated := *u
	a.mu.Unlock()
	result(w, []apiUser{updated}, 1, nil, "User was successfully updated", "", "User could not be updated")
}

// getRoles is GET /security/roles (role_ids, offset, limit).
func (a *api) getRoles(w http.ResponseWriter, r *http.Request, _ *claims) {
	q := r.URL.Query()
	a.mu.Lock()
	roles := defaultRoles()
	for _, role := range roles {
		role.Users = []int{}
		for _, u := range a.users {
			if contains(u.Roles, role.ID) {
				role.Users = append(role.Users, u.ID)
			}
		}
	}
	a.mu.Unlock()
	var found []*apiRole
	var failed []failedItem
	if ids := idList(q.Get("role_ids")); ids != nil {
		for _, s := range ids {
			id, _ := strconv.Atoi(s)
			if id >= 1 && id <= len(roles) {
				found = append(found, roles[id-1])
			} else {
				failed = append(failed, failedItem{Error: catalogue(4002), ID: []any{id}})
			}
		}
	} else {
		found = roles
	}
	total := len(found)
	found = page(found, q.Get("offset"), q.Get("limit"))
	if found == nil {
		found = []*apiRole{}
	}
	result(w, found, total, failed, "All specified roles were returned", "Some roles were not returned", "No role was returned")
}

// setUserRoles is POST /security/users/{user_id}/roles?role_ids=...; the
// user's tokens are revoked so that the next token carries the new roles.
func (a *api) setUserRoles(w http.ResponseWriter, r *http.Request, _ *claims) {
	id, ok := pathID(r)
	if !ok {
		problem(w, http.StatusBadRequest, "Bad Request", "'"+r.PathValue("user_id")+"' is not of type 'integer'", 0, "")
		return
	}
	ids := idList(r.URL.Query().Get("role_ids"))
	if ids == nil {
		problem(w, http.StatusBadRequest, "Bad Request", "Missing query parameter 'role_ids'", 0, "")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.userByID(id)
	name := "unknown"
	if u != nil {
		name = u.Username
	}
	all, some, none := "All roles were linked to user "+name, "Some roles were not linked to user "+name, "No link was created to user "+name
	var failed []failedItem
	linked := 0
	for _, s := range ids {
		roleID, _ := strconv.Atoi(s)
		switch {
		case u == nil:
			failed = append(failed, failedItem{Error: catalogue(5001), ID: []any{id}})
		case id <= maxIDReserved:
			failed = append(failed, failedItem{Error: catalogue(4008), ID: []any{id}})
		case roleID < 1 || roleID > len(defaultRoles()):
			failed = append(failed, failedItem{Error: catalogue(4002), ID: []any{roleID}})
		case contains(u.Roles, roleID):
			failed = append(failed, failedItem{Error: catalogue(4017), ID: []any{roleID}})
		default:
			u.Roles = append(u.Roles, roleID)
			linked++
		}
		if u == nil {
			break
		}
	}
	affected := []apiUser{}
	if linked > 0 {
		affected = append(affected, *u)
		a.invalid[u.ID] = time.Now().Unix()
	}
	result(w, affected, linked, failed, all, some, none)
}
