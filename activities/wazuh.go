package activities

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/wazuhapi"
)

// WazuhAPICallTimeout bounds one call to the Wazuh API: the API gives up on a
// request after its own request_timeout (10 s), so its answer comes before ours.
const WazuhAPICallTimeout = 15 * time.Second

// wazuhReloginPause is how long to wait before logging in again after the API
// refused a token: it revokes a user's tokens when its password or roles change,
// by timestamp, at a one-second grain.
const wazuhReloginPause = time.Second

// ErrTypeWazuhCertMismatch: the Wazuh API presented another certificate than the
// pinned one; waiting does not change which server answers.
const ErrTypeWazuhCertMismatch = "WazuhCertMismatch"

// The roles socflow gives API users (the manager's default RBAC roles).
const (
	WazuhRoleAdministrator = "administrator"
	WazuhRoleReadonly      = "readonly"
)

// The states ReconcileWazuhAPIUsers finds the manager's API users in.
const (
	// WazuhUsersFresh: nothing was stored yet (first deploy); factory passwords
	// were rotated to generated ones.
	WazuhUsersFresh = "fresh"
	// WazuhUsersFactoryReset: passwords were stored, but the manager accepted the
	// factory ones (or lacked a user): its user database was reset, and the stored
	// passwords were set back.
	WazuhUsersFactoryReset = "factory-reset"
	// WazuhUsersInSync: the manager accepted every stored password. Users new to
	// the list may still have been created (see Changed).
	WazuhUsersInSync = "in-sync"
)

// wazuhFactoryPasswords are the API users a manager starts with and their
// passwords: a fresh install, and a manager whose user database was reset.
var wazuhFactoryPasswords = map[string]string{"wazuh": "wazuh", "wazuh-wui": "wazuh-wui"}

// WazuhAPIUser is one API user socflow keeps, with the role it must have.
type WazuhAPIUser struct {
	// Name is the user's login name.
	Name string `json:"name"`
	// Role is WazuhRoleAdministrator or WazuhRoleReadonly.
	Role string `json:"role"`
}

// ReconcileWazuhAPIUsersInput names the API, the users and what socflow stored.
type ReconcileWazuhAPIUsersInput struct {
	// Instance is the instance name, for messages.
	Instance string `json:"instance"`
	// URL is the API, https://host:port.
	URL string `json:"url"`
	// APICert is the API's certificate in PEM (its server.crt), pinned.
	APICert string `json:"apiCert"`
	// Stored maps a user to the password in socflow's secret store, read by the
	// activity itself (WazuhAPIPasswordKey), never carried in history.
	Stored map[string]string `json:"-"`
	// Users are the users to keep, an administrator among them.
	Users []WazuhAPIUser `json:"users"`
}

// ReconcileWazuhAPIUsersResult is what was found and what must be stored.
type ReconcileWazuhAPIUsersResult struct {
	// Passwords maps every user to the password it has now; the activity stores
	// them, and only their references (Refs) leave it.
	Passwords map[string]string `json:"-"`
	// Refs are the secret-store references of every user's password.
	Refs map[string]spec.SecretRef `json:"refs"`
	// State is WazuhUsersFresh, WazuhUsersFactoryReset or WazuhUsersInSync.
	State string `json:"state"`
	// Changed names the users whose password, existence or role this run changed.
	Changed []string `json:"changed,omitempty"`
	// Notes say what was found and done, user by user (no secret in them).
	Notes []string `json:"notes,omitempty"`
}

// wazuhUsersProgress is heartbeated so a retry knows what an earlier attempt did:
// the passwords it generated (it may have applied them) and whether it found the
// manager reset (it may have repaired that already).
type wazuhUsersProgress struct {
	Generated   map[string]string `json:"generated,omitempty"`
	FactorySeen bool              `json:"factorySeen,omitempty"`
}

// ReconcileWazuhAPIUsers makes the manager's API users match socflow's: each user
// logs in with the stored password; if refused, with the factory password (found:
// the manager was reset, or this is a first deploy), which is then replaced by the
// stored password, or a generated one when nothing is stored; a user missing from
// the manager is created; each user gets its role. Nothing changes before every
// user is accounted for: a user whose stored and factory passwords are both refused,
// or that exists with a password socflow does not know, fails the run as AuthFailed
// with the fix. A second run changes nothing.
func (a *Activities) ReconcileWazuhAPIUsers(ctx context.Context, in ReconcileWazuhAPIUsersInput) (ReconcileWazuhAPIUsersResult, error) {
	if err := validateWazuhUsers(in); err != nil {
		return ReconcileWazuhAPIUsersResult{}, permanent(ErrTypeInvalidInput, err)
	}
	api, err := wazuhapi.New(wazuhapi.Options{BaseURL: in.URL, CertPEM: []byte(in.APICert), Timeout: WazuhAPICallTimeout})
	if err != nil {
		return ReconcileWazuhAPIUsersResult{}, permanent(ErrTypeInvalidInput, err)
	}
	defer api.Close()
	in.Stored = map[string]string{}
	for _, u := range in.Users {
		v, err := a.Secrets.Resolve(secrets.Ref(in.Instance, WazuhAPIPasswordKey(u.Name)))
		switch {
		case err == nil:
			in.Stored[u.Name] = v
		case !errors.Is(err, secrets.ErrNotFound):
			return ReconcileWazuhAPIUsersResult{}, fmt.Errorf("cannot read the stored password of wazuh API user %s: %w", u.Name, err)
		}
	}
	r := &usersRun{api: api, in: in, progress: previousWazuhUsersProgress(ctx), ensure: func(name string) (string, error) {
		// Stored before it is used: a retry after a crash finds it, where a heartbeat
		// the SDK had not sent yet would be lost.
		ref, _, err := a.Secrets.Ensure(in.Instance, WazuhAPIPasswordKey(name), func() (string, error) {
			return wazuhapi.GeneratePassword(wazuhapi.DefaultPasswordLength)
		})
		if err != nil {
			return "", err
		}
		return a.Secrets.Resolve(ref)
	}}
	res, err := r.run(ctx)
	if err != nil {
		return res, wazuhError(in.URL, err)
	}
	res.Refs = map[string]spec.SecretRef{}
	for _, u := range in.Users {
		if res.Refs[u.Name], err = a.Secrets.Put(in.Instance, WazuhAPIPasswordKey(u.Name), res.Passwords[u.Name]); err != nil {
			return res, fmt.Errorf("cannot store the password of wazuh API user %s: %w", u.Name, err)
		}
	}
	return res, nil
}

// WazuhAPIPasswordKey is where socflow's secret store keeps an API user's password,
// under the instance.
func WazuhAPIPasswordKey(user string) string { return "wazuh-api-" + user }

var wazuhUserName = regexp.MustCompile(`^[\w\-.%]{4,64}$`)

func validateWazuhUsers(in ReconcileWazuhAPIUsersInput) error {
	if len(in.Users) == 0 {
		return errors.New("cannot reconcile wazuh API users: no user given")
	}
	seen, admin := map[string]bool{}, false
	for _, u := range in.Users {
		switch {
		case !wazuhUserName.MatchString(u.Name):
			return fmt.Errorf("cannot reconcile wazuh API user %q: the API wants 4 to 64 letters, digits or _-.%%", u.Name)
		case seen[u.Name]:
			return fmt.Errorf("cannot reconcile wazuh API user %s: it is listed twice", u.Name)
		case u.Role != WazuhRoleAdministrator && u.Role != WazuhRoleReadonly:
			return fmt.Errorf("cannot reconcile wazuh API user %s: role %q is neither %s nor %s", u.Name, u.Role, WazuhRoleAdministrator, WazuhRoleReadonly)
		}
		seen[u.Name] = true
		admin = admin || u.Role == WazuhRoleAdministrator
	}
	if !admin {
		return errors.New("cannot reconcile wazuh API users: none is an administrator, and only an administrator can change users")
	}
	return nil
}

// previousWazuhUsersProgress is what an earlier attempt heartbeated (zero if none).
func previousWazuhUsersProgress(ctx context.Context) wazuhUsersProgress {
	var p wazuhUsersProgress
	if activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &p)
	}
	if p.Generated == nil {
		p.Generated = map[string]string{}
	}
	return p
}

// How a user's login went.
const (
	loginStored    = "stored"    // the stored password
	loginGenerated = "generated" // a password an earlier attempt generated and applied
	loginFactory   = "factory"   // the factory password
	loginNone      = ""          // no candidate accepted (or none to try)
)

// usersRun is one reconciliation.
type usersRun struct {
	api *wazuhapi.Client
	// ensure returns the user's stored password, generating and storing one first.
	ensure   func(name string) (string, error)
	in       ReconcileWazuhAPIUsersInput
	progress wazuhUsersProgress
	// how and with what each user logged in.
	how      map[string]string
	password map[string]string
	// admin is the administrator whose session changes the others (nil until one logs in).
	admin *wazuhSession
	res   ReconcileWazuhAPIUsersResult
}

func (r *usersRun) run(ctx context.Context) (ReconcileWazuhAPIUsersResult, error) {
	r.how, r.password = map[string]string{}, map[string]string{}
	r.res = ReconcileWazuhAPIUsersResult{Passwords: map[string]string{}}
	// 1. Every user logs in with what socflow knows, before anything changes.
	for _, u := range r.in.Users {
		token, err := r.login(ctx, u.Name)
		if err != nil {
			return r.res, err
		}
		if r.admin == nil && u.Role == WazuhRoleAdministrator && token != "" {
			r.admin = &wazuhSession{api: r.api, user: u.Name, password: r.password[u.Name], token: token}
		}
	}
	for _, u := range r.in.Users {
		if _, reserved := wazuhFactoryPasswords[u.Name]; reserved && r.how[u.Name] == loginNone {
			return r.res, r.authFailed(u.Name)
		}
	}
	if r.admin == nil {
		return r.res, r.authFailed(r.firstAdmin())
	}
	// 2. The manager's users and roles, through the administrator.
	var users []wazuhapi.User
	var roles []wazuhapi.Role
	err := r.admin.call(ctx, func(token string) (err error) {
		if users, err = r.api.Users(ctx, token); err != nil {
			return err
		}
		roles, err = r.api.Roles(ctx, token)
		return err
	})
	if err != nil {
		return r.res, fmt.Errorf("cannot read the wazuh API's users and roles: %w", err)
	}
	byName := map[string]wazuhapi.User{}
	for _, u := range users {
		byName[u.Username] = u
	}
	roleID := map[string]int{}
	for _, rl := range roles {
		roleID[rl.Name] = rl.ID
	}
	for _, u := range r.in.Users {
		if _, ok := roleID[u.Role]; !ok {
			return r.res, &errPermanent{ErrTypeBadConfig, fmt.Errorf("cannot give wazuh API user %s the role %s: the manager has no such role", u.Name, u.Role)}
		}
		user, exists := byName[u.Name]
		if exists && r.how[u.Name] == loginNone {
			return r.res, r.authFailed(u.Name)
		}
		if exists && user.ID <= wazuhapi.MaxReservedUserID && !user.HasRole(roleID[u.Role]) {
			return r.res, &errPermanent{ErrTypeBadConfig, fmt.Errorf("cannot give wazuh API user %s the role %s: it is a reserved user whose roles the API keeps (%s)",
				u.Name, u.Role, roleNames(roles, user.Roles))}
		}
	}
	// 3. Changes: passwords back (or rotated), missing users created, roles given.
	// What was found is heartbeated first: a retry finds the stored passwords
	// accepted and must still report the reset.
	for _, u := range r.in.Users {
		_, exists := byName[u.Name]
		if r.how[u.Name] == loginFactory || !exists && r.in.Stored[u.Name] != "" {
			r.progress.FactorySeen = true
		}
	}
	recordHeartbeat(ctx, r.progress)
	for _, u := range r.in.Users {
		user, exists := byName[u.Name]
		if err := r.reconcile(ctx, u, user, exists, roleID[u.Role]); err != nil {
			return r.res, err
		}
		recordHeartbeat(ctx, r.progress)
	}
	r.res.State = r.state()
	return r.res, nil
}

// login tries the user's candidate passwords in order: stored, generated by an
// earlier attempt, factory. A refusal moves to the next; any other failure ends
// the run. It returns the token of the accepted one ("" when none was).
func (r *usersRun) login(ctx context.Context, name string) (string, error) {
	candidates := []struct{ how, password string }{
		{loginStored, r.in.Stored[name]}, {loginGenerated, r.progress.Generated[name]}, {loginFactory, wazuhFactoryPasswords[name]},
	}
	tried := map[string]bool{}
	for _, c := range candidates {
		if c.password == "" || tried[c.password] {
			continue
		}
		tried[c.password] = true
		token, err := r.api.Authenticate(ctx, name, c.password)
		if errors.Is(err, wazuhapi.ErrInvalidCredentials) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("cannot log in to the wazuh API as user %s: %w", name, err)
		}
		r.how[name], r.password[name] = c.how, c.password
		return token, nil
	}
	r.how[name] = loginNone
	return "", nil
}

// reconcile brings one user to the stored (or a new) password and its role.
func (r *usersRun) reconcile(ctx context.Context, u WazuhAPIUser, user wazuhapi.User, exists bool, roleID int) error {
	stored := r.in.Stored[u.Name]
	switch r.how[u.Name] {
	case loginStored:
		r.res.Passwords[u.Name] = stored
	case loginGenerated:
		r.res.Passwords[u.Name] = r.password[u.Name]
		r.changed(u.Name, "%s: an earlier attempt of this run set its password; it must be stored now", u.Name)
	case loginFactory:
		target, err := r.target(ctx, u.Name)
		if err != nil {
			return err
		}
		if err := r.admin.call(ctx, func(token string) error { return r.api.SetPassword(ctx, token, user.ID, target) }); err != nil {
			return r.refused(u.Name, "set the password of", err)
		}
		r.afterChange(u.Name, target)
		if stored != "" {
			r.changed(u.Name, "%s: the manager accepted the factory password (its user database was reset); set the stored password back", u.Name)
		} else {
			r.changed(u.Name, "%s: rotated the factory password to a generated one", u.Name)
		}
	case loginNone: // missing (run checked that it does not exist)
		target, err := r.target(ctx, u.Name)
		if err != nil {
			return err
		}
		err = r.admin.call(ctx, func(token string) (err error) { user, err = r.api.CreateUser(ctx, token, u.Name, target); return err })
		if err != nil {
			return r.refused(u.Name, "create", err)
		}
		exists = true
		r.res.Passwords[u.Name] = target
		r.changed(u.Name, "%s: missing from the manager; created it", u.Name)
	}
	if !exists || user.HasRole(roleID) {
		return nil
	}
	err := r.admin.call(ctx, func(token string) (err error) {
		_, err = r.api.AddUserRoles(ctx, token, user.ID, []int{roleID})
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot give wazuh API user %s the role %s: %w", u.Name, u.Role, err)
	}
	if u.Name == r.admin.user {
		r.admin.token = "" // the API revoked its tokens
	}
	r.changed(u.Name, "%s: gave it the role %s", u.Name, u.Role)
	return nil
}

// target is the password a user gets: the stored one, else one generated by an
// earlier attempt, else a new one, heartbeated before it is used so a retry can
// still log in with it.
func (r *usersRun) target(ctx context.Context, name string) (string, error) {
	if p := r.in.Stored[name]; p != "" {
		return p, nil
	}
	if p := r.progress.Generated[name]; p != "" {
		return p, nil
	}
	p, err := r.ensure(name)
	if err != nil {
		return "", err
	}
	r.progress.Generated[name] = p
	recordHeartbeat(ctx, r.progress)
	return p, nil
}

// afterChange records a user's new password; the administrator logs in again.
func (r *usersRun) afterChange(name, password string) {
	r.res.Passwords[name] = password
	r.password[name] = password
	if name == r.admin.user {
		r.admin.password, r.admin.token = password, ""
	}
}

func (r *usersRun) changed(name, note string, args ...any) {
	if !slices.Contains(r.res.Changed, name) {
		r.res.Changed = append(r.res.Changed, name)
	}
	r.res.Notes = append(r.res.Notes, fmt.Sprintf(note, args...))
}

func (r *usersRun) state() string {
	stored := false
	for _, u := range r.in.Users {
		stored = stored || r.in.Stored[u.Name] != ""
	}
	switch {
	case r.progress.FactorySeen && stored:
		return WazuhUsersFactoryReset
	case !stored:
		return WazuhUsersFresh
	}
	return WazuhUsersInSync
}

// roleNames names the roles with the given ids.
func roleNames(roles []wazuhapi.Role, ids []int) string {
	var names []string
	for _, rl := range roles {
		if slices.Contains(ids, rl.ID) {
			names = append(names, rl.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (r *usersRun) firstAdmin() string {
	for _, u := range r.in.Users {
		if u.Role == WazuhRoleAdministrator {
			return u.Name
		}
	}
	return ""
}

// authFailed is the permanent failure of a user socflow cannot log in as, with the fix.
func (r *usersRun) authFailed(name string) error {
	what := "the password socflow stored"
	switch {
	case r.in.Stored[name] == "" && wazuhFactoryPasswords[name] == "":
		what = "every password socflow knows (it stored none, and the user has no factory password)"
	case r.in.Stored[name] == "":
		what = "the factory password (socflow stored none)"
	case wazuhFactoryPasswords[name] != "":
		what = "the password socflow stored and the factory password"
	}
	return &errPermanent{ErrTypeAuthFailed, fmt.Errorf("cannot log in to the wazuh API at %s as user %s: it refused %s; "+
		"someone changed it outside socflow: store the user's current password in socflow's secret store for instance %s, "+
		"or set it on the manager to the stored one (PUT /security/users/{id} as an administrator), then run again",
		r.in.URL, name, what, r.in.Instance)}
}

// refused says which user's password or creation the API refused; a password the
// API's policy refuses is permanent (the stored value must change).
func (r *usersRun) refused(name, what string, err error) error {
	err = fmt.Errorf("cannot %s wazuh API user %s: %w", what, name, err)
	switch {
	case errors.Is(err, wazuhapi.ErrPasswordPolicy):
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf("%w (the password socflow stored for %s does not meet the API's policy: replace it in the secret store)", err, name)}
	case wazuhapi.HasCode(err, wazuhapi.CodeReservedUserModify):
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf("%w (only wazuh or wazuh-wui may change them: list one of them first among the users)", err)}
	}
	return err
}

// wazuhError classifies an error at the activity boundary: a closed port is
// retryable ("not ready"), a certificate mismatch and permanent faults are not.
func wazuhError(url string, err error) error {
	var mismatch *wazuhapi.CertificateMismatchError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wazuhapi.ErrNotReady):
		return fmt.Errorf("wazuh API not ready at %s (%s)", url, netReason(err))
	case errors.As(err, &mismatch):
		return permanent(ErrTypeWazuhCertMismatch, fmt.Errorf("cannot trust the wazuh API at %s: %w; another server answers there, or the manager's certificate changed: pin the content of <home>/api/configuration/ssl/server.crt", url, mismatch))
	}
	return classify(err)
}
