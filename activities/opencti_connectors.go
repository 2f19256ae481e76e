package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/openctiapi"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
)

// EnsureConnectorUserInput names a connector of an instance whose user must exist.
type EnsureConnectorUserInput struct {
	// Instance is the defaulted, valid instance spec (its platform's local URL).
	Instance opencti.Instance `json:"instance"`
	// AdminToken refers to the admin API token.
	AdminToken spec.SecretRef `json:"adminToken"`
	// Name and Type are the connector's.
	Name string                `json:"name"`
	Type opencti.ConnectorType `json:"type"`
}

// EnsureConnectorUserResult gives the connector's identity as references only.
type EnsureConnectorUserResult struct {
	// UserID is the platform's id of connector-<name>.
	UserID string `json:"userId"`
	// Token refers to the user's API token, kept in the secret store.
	Token spec.SecretRef `json:"token"`
	// ConnectorID refers to the connector's CONNECTOR_ID, generated once.
	ConnectorID spec.SecretRef `json:"connectorId"`
	// Created says this call added the user; Reactivated that it was inactive.
	Created     bool `json:"created,omitempty"`
	Reactivated bool `json:"reactivated,omitempty"`
}

// EnsureConnectorUser makes sure connector-<name> exists, active, as the charm does
// (ensurePlatformUser), in group Connectors, or Administrators for
// INTERNAL_EXPORT_FILE. Its API token goes into the store and only its reference comes
// back, with the CONNECTOR_ID's.
func (a *Activities) EnsureConnectorUser(ctx context.Context, in EnsureConnectorUserInput) (EnsureConnectorUserResult, error) {
	var res EnsureConnectorUserResult
	api, callCtx, cancel, err := a.adminAPI(ctx, in.Instance, in.AdminToken)
	if err != nil {
		return res, err
	}
	defer cancel()
	u, err := a.ensurePlatformUser(callCtx, api, in.Instance.Name, platformUser{
		Name: opencti.ConnectorUser(in.Name), Email: opencti.ConnectorEmail(in.Name), Group: opencti.ConnectorGroup(in.Type)})
	if err != nil {
		return res, err
	}
	res.UserID, res.Token, res.Created, res.Reactivated = u.ID, u.Token, u.Created, u.Reactivated
	if res.ConnectorID, _, err = a.Secrets.Ensure(in.Instance.Name, "connector-"+in.Name+"-id", secrets.NewUUIDv4); err != nil {
		return res, err
	}
	return res, nil
}

// platformUser is an OpenCTI user socflow keeps on an instance's platform for
// something that calls it: one of the instance's connectors, or an app related to the
// instance (a Wazuh instance's custom-opencti integration).
type platformUser struct {
	// Name is the user's name; the secret store keeps <Name>-password and
	// <Name>-token under the OpenCTI instance.
	Name string
	// Email is the user's login, by which it is looked up.
	Email string
	// Group is the group a new user is added to (Connectors, or Administrators).
	Group string
}

// ensuredUser is what ensurePlatformUser found or did: references only.
type ensuredUser struct {
	ID                   string
	Token                spec.SecretRef
	Created, Reactivated bool
}

// ensurePlatformUser makes sure the user exists, active: looked up by email first;
// added once (in its group, a password kept in the store) — an add whose answer was
// lost finds the user at its retry, and the platform's "User already exists" is
// answered by looking it up again, so no retry makes two users; reactivated when
// inactive. Its API token goes into the store under the OpenCTI instance inst, and
// only its reference comes back. Connector users and related apps' users share it,
// so both follow the same rules.
func (a *Activities) ensurePlatformUser(ctx context.Context, api *openctiapi.Client, inst string, pu platformUser) (ensuredUser, error) {
	var res ensuredUser
	u, err := api.UserByEmail(ctx, pu.Email)
	if err != nil {
		return res, apiError(err)
	}
	if u == nil {
		group, err := api.GroupID(ctx, pu.Group)
		if err != nil {
			return res, apiError(err)
		}
		pw, _, err := a.Secrets.Ensure(inst, pu.Name+"-password", func() (string, error) { return secrets.NewHex(24) })
		if err != nil {
			return res, err
		}
		password, err := a.resolve(pu.Name+" password", pw)
		if err != nil {
			return res, classify(err)
		}
		added, err := api.AddUser(ctx, openctiapi.NewUser{Name: pu.Name, Email: pu.Email, Password: password, GroupIDs: []string{group}})
		switch {
		case errors.Is(err, openctiapi.ErrUserExists):
			if u, err = api.UserByEmail(ctx, pu.Email); err == nil && u == nil {
				err = fmt.Errorf("the platform says %s exists but does not list it", pu.Email)
			}
		case err == nil:
			u, res.Created = &added, true
		}
		if err != nil {
			return res, apiError(err)
		}
	}
	if u.AccountStatus != openctiapi.AccountActive {
		if err := api.SetAccountStatus(ctx, u.ID, openctiapi.AccountActive); err != nil {
			return res, apiError(err)
		}
		res.Reactivated = true
	}
	res.ID = u.ID
	tokenKey := pu.Name + "-token"
	if u.APIToken != "" {
		if res.Token, err = a.Secrets.Put(inst, tokenKey, u.APIToken); err != nil {
			return res, err
		}
		return res, nil
	}
	// OpenCTI 7 keeps only an HMAC of each token and never gives one back: the token
	// stored when the user was made (on 6.x) is still the user's, since the upgrade's
	// legacy_token_migration hashed it with the instance's key.
	res.Token, _, err = a.Secrets.Ensure(inst, tokenKey, func() (string, error) {
		return "", permanent(ErrTypeBadConfig, fmt.Errorf("the platform gives no API token for %s (OpenCTI 7 keeps only its hash) and socflow stored none: "+
			"create a token for that user in the platform and store it as %s", pu.Name, secrets.Ref(inst, tokenKey)))
	})
	if err != nil {
		return res, classify(err)
	}
	return res, nil
}

// DeactivateConnectorUsersInput names the connectors an instance keeps.
type DeactivateConnectorUsersInput struct {
	// Instance is the defaulted, valid instance spec.
	Instance opencti.Instance `json:"instance"`
	// AdminToken refers to the admin API token.
	AdminToken spec.SecretRef `json:"adminToken"`
	// Keep are the names of the connectors in the spec.
	Keep []string `json:"keep,omitempty"`
}

// DeactivateConnectorUsersResult names the users this call deactivated.
type DeactivateConnectorUsersResult struct {
	// Deactivated are user names (connector-<name>), sorted.
	Deactivated []string `json:"deactivated,omitempty"`
}

// DeactivateConnectorUsers deactivates every active user named connector-* whose
// connector is not kept, the charm's rule, so a removed connector's token stops working.
func (a *Activities) DeactivateConnectorUsers(ctx context.Context, in DeactivateConnectorUsersInput) (DeactivateConnectorUsersResult, error) {
	var res DeactivateConnectorUsersResult
	api, callCtx, cancel, err := a.adminAPI(ctx, in.Instance, in.AdminToken)
	if err != nil {
		return res, err
	}
	defer cancel()
	users, err := api.Users(callCtx)
	if err != nil {
		return res, apiError(err)
	}
	for _, u := range users {
		name, ok := strings.CutPrefix(u.Name, opencti.ConnectorUser(""))
		if !ok || slices.Contains(in.Keep, name) || u.AccountStatus != openctiapi.AccountActive {
			continue
		}
		if err := api.SetAccountStatus(callCtx, u.ID, openctiapi.AccountInactive); err != nil {
			return res, apiError(err)
		}
		res.Deactivated = append(res.Deactivated, u.Name)
	}
	slices.Sort(res.Deactivated)
	return res, nil
}

// adminAPI is a GraphQL client of the instance's platform with the admin token, and
// a context bounding its calls by DefaultCallTimeout (cancel releases it); a token
// that cannot be read is classified.
func (a *Activities) adminAPI(ctx context.Context, inst opencti.Instance, adminToken spec.SecretRef) (*openctiapi.Client, context.Context, context.CancelFunc, error) {
	token, err := a.resolve("opencti.adminToken", adminToken)
	if err != nil {
		return nil, ctx, func() {}, classify(err)
	}
	callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	return &openctiapi.Client{BaseURL: opencti.LocalURL(opencti.Input{Instance: inst}), Token: token, HTTP: a.httpClient()}, callCtx, cancel, nil
}

// apiError classifies a GraphQL call's failure: a rejected admin token is permanent
// (a human must fix the token), anything else is retried.
func apiError(err error) error {
	if errors.Is(err, openctiapi.ErrAuthRequired) {
		return permanent(ErrTypeAuthFailed, fmt.Errorf("the platform rejected the admin token socflow stored: %w", err))
	}
	return err
}

// ApplyConnectorPlanInput is one connector of an instance and its identity's references.
type ApplyConnectorPlanInput struct {
	// Instance is the defaulted, valid instance spec (the platform's URL, log level).
	Instance opencti.Instance `json:"instance"`
	// Connector is the connector to plan into its container.
	Connector opencti.Connector `json:"connector"`
	// Token and ConnectorID are EnsureConnectorUser's references.
	Token       spec.SecretRef `json:"token"`
	ConnectorID spec.SecretRef `json:"connectorId"`
}

// ApplyConnectorPlan resolves the connector's token and CONNECTOR_ID and pushes its
// layer (label connector-<name>) into its container's Pebble, reporting whether its
// service was added or changed; like ApplyOpenCTIPlan it starts nothing.
func (a *Activities) ApplyConnectorPlan(ctx context.Context, in ApplyConnectorPlanInput) (PebbleLayerChanges, error) {
	ep, err := a.pebble(in.Connector.Pebble)
	if err != nil {
		return PebbleLayerChanges{}, classify(err)
	}
	token, err := a.resolve("connector token", in.Token)
	if err != nil {
		return PebbleLayerChanges{}, classify(err)
	}
	id, err := a.resolve("connector id", in.ConnectorID)
	if err != nil {
		return PebbleLayerChanges{}, classify(err)
	}
	l := opencti.ConnectorPlan(opencti.ConnectorInput{Instance: in.Instance, Connector: in.Connector, Token: token, ID: id})
	ch, err := ep.applyLayer(ctx, pebbleLayer{label: opencti.ConnectorLayer(in.Connector.Name), layer: l, mask: opencti.ConnectorMask})
	return ch, classify(err)
}

// RemoveConnectorInput names a connector leaving an instance.
type RemoveConnectorInput struct {
	// Instance is the defaulted, valid instance spec.
	Instance opencti.Instance `json:"instance"`
	// AdminToken refers to the admin API token.
	AdminToken spec.SecretRef `json:"adminToken"`
	// Connector is the connector as it was planned (its container's Pebble).
	Connector opencti.Connector `json:"connector"`
	// ConnectorID refers to its CONNECTOR_ID.
	ConnectorID spec.SecretRef `json:"connectorId"`
}

// RemoveConnectorResult says what the removal did.
type RemoveConnectorResult struct {
	// Stopped says the connector's service was running and was stopped.
	Stopped bool `json:"stopped,omitempty"`
	// Unregistered says its registration was deleted (false: there was none).
	Unregistered bool `json:"unregistered,omitempty"`
}

// RemoveConnector takes a connector out of its container and the platform, each step
// idempotent: its service is stopped and retired from its layer (Pebble keeps a
// retired definition, see retire), then its registration deleted, which drops its
// queues. Its user is deactivated by DeactivateConnectorUsers, as every connector-*
// user no connector keeps.
func (a *Activities) RemoveConnector(ctx context.Context, in RemoveConnectorInput) (RemoveConnectorResult, error) {
	var res RemoveConnectorResult
	stopped, err := a.StopPebbleServices(ctx, StopPebbleServicesInput{Pebble: in.Connector.Pebble, Services: []string{opencti.ConnectorService}})
	if err != nil {
		return res, err
	}
	res.Stopped = len(stopped.Stopped) > 0
	ep, err := a.pebble(in.Connector.Pebble)
	if err != nil {
		return res, classify(err)
	}
	_, err = ep.applyLayer(ctx, pebbleLayer{label: opencti.ConnectorLayer(in.Connector.Name), layer: layer.Layer{Services: map[string]layer.Service{}},
		owns: func(name string, _ layer.Service) bool { return name == opencti.ConnectorService }, mask: opencti.ConnectorMask})
	if err != nil {
		return res, classify(err)
	}
	id, err := a.resolve("connector id", in.ConnectorID)
	if err != nil {
		return res, classify(err)
	}
	api, callCtx, cancel, err := a.adminAPI(ctx, in.Instance, in.AdminToken)
	if err != nil {
		return res, err
	}
	defer cancel()
	list, err := api.Connectors(callCtx)
	if err != nil {
		return res, apiError(err)
	}
	if slices.ContainsFunc(list, func(c openctiapi.Connector) bool { return c.ID == id }) {
		if err := api.DeleteConnector(callCtx, id); err != nil {
			return res, apiError(err)
		}
		res.Unregistered = true
	}
	return res, nil
}

// CheckConnectorsInput names the connectors of an instance to check.
type CheckConnectorsInput struct {
	// Instance is the defaulted, valid instance spec.
	Instance opencti.Instance `json:"instance"`
	// AdminToken refers to the admin API token.
	AdminToken spec.SecretRef `json:"adminToken"`
	// Connectors are the connectors to check.
	Connectors []ConnectorToCheck `json:"connectors"`
}

// ConnectorToCheck is one connector to check: where it runs and its CONNECTOR_ID.
type ConnectorToCheck struct {
	// Name is the connector's name.
	Name string `json:"name"`
	// Pebble is its container's Pebble.
	Pebble spec.Pebble `json:"pebble"`
	// ConnectorID refers to its CONNECTOR_ID.
	ConnectorID spec.SecretRef `json:"connectorId"`
}

// CheckConnectorsResult is each connector's state, in the input's order.
type CheckConnectorsResult struct {
	// Connectors are the checks, one per connector.
	Connectors []ConnectorCheck `json:"connectors"`
}

// ConnectorCheck is one connector's state as its container and the platform see it.
type ConnectorCheck struct {
	// Name is the connector's name.
	Name string `json:"name"`
	// Service is its Pebble service's state (active, inactive, backoff, error), or
	// "unknown" when its container could not be asked (ServiceError says why).
	Service      string `json:"service"`
	ServiceError string `json:"serviceError,omitempty"`
	// Registered says the platform lists its CONNECTOR_ID.
	Registered bool `json:"registered"`
	// LastPing is its registration's updated_at, which every ping moves.
	LastPing time.Time `json:"lastPing,omitzero"`
	// CheckedAt is when the check ran.
	CheckedAt time.Time `json:"checkedAt"`
}

// CheckConnectors reads, without changing anything, each connector's service state
// from its container and its registration and last ping from the platform. A
// container that does not answer is reported per connector; a platform that does
// not is an error (nothing can be said of any connector then).
func (a *Activities) CheckConnectors(ctx context.Context, in CheckConnectorsInput) (CheckConnectorsResult, error) {
	var res CheckConnectorsResult
	api, callCtx, cancel, err := a.adminAPI(ctx, in.Instance, in.AdminToken)
	if err != nil {
		return res, err
	}
	defer cancel()
	list, err := api.Connectors(callCtx)
	if err != nil {
		return res, apiError(err)
	}
	registered := map[string]openctiapi.Connector{}
	for _, c := range list {
		registered[c.ID] = c
	}
	now := time.Now().UTC()
	for _, cn := range in.Connectors {
		check := ConnectorCheck{Name: cn.Name, Service: "unknown", CheckedAt: now}
		if ep, err := a.pebble(cn.Pebble); err != nil {
			check.ServiceError = err.Error()
		} else if infos, err := ep.services(ctx, []string{opencti.ConnectorService}); err != nil {
			check.ServiceError = err.Error()
		} else if info := infos[opencti.ConnectorService]; info == nil {
			check.Service, check.ServiceError = "absent", "its container has no "+opencti.ConnectorService+" service"
		} else {
			check.Service = string(info.Current)
		}
		if id, err := a.resolve("connector id", cn.ConnectorID); err == nil {
			if reg, ok := registered[id]; ok {
				check.Registered = true
				check.LastPing, _ = time.Parse(time.RFC3339, reg.UpdatedAt)
			}
		}
		res.Connectors = append(res.Connectors, check)
	}
	return res, nil
}
