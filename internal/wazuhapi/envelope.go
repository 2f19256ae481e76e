package wazuhapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Wazuh error codes socflow branches on (framework/wazuh/core/exception.py).
const (
	CodeClusterNotRunning     = 3012 // cluster is not running
	CodeClusterDisabled       = 3013 // cluster is not running, disabled in ossec.conf
	CodeRoleNotFound          = 4002 // the specified role does not exist
	CodeAdminResource         = 4008 // a resource required by Wazuh (reserved) cannot change
	CodeUserRoleExists        = 4017 // the user-role relation already exists
	CodeUserNotCreated        = 5000 // the user could not be created (it exists)
	CodeUserNotFound          = 5001 // the user does not exist
	CodePasswordInsecure      = 5007 // password lacks upper, lower, digit or symbol
	CodePasswordLength        = 5009 // password not 8 to 64 characters long
	CodeReservedUserModify    = 5011 // reserved users are modified only by reserved users
	CodeLoginAttempts         = 6000 // too many login attempts: this address is blocked a while
	CodeTooManyRequests       = 6001 // maximum number of requests per minute reached
	CodeConfigurationNotValid = 1908 // error validating configuration
)

// The sentinels an *APIError matches with errors.Is, so callers branch without
// reading text.
var (
	// ErrInvalidCredentials: the login was refused (HTTP 401 to authenticate).
	ErrInvalidCredentials = errors.New("wazuh API refused the credentials")
	// ErrUnauthorized: a call other than login was refused with 401 (token expired or revoked).
	ErrUnauthorized = errors.New("wazuh API refused the token")
	// ErrPasswordPolicy: the API refused a password as insecure (5007, 5009).
	ErrPasswordPolicy = errors.New("wazuh API refused the password")
	// ErrClusterNotRunning: the manager runs without a cluster (3012, 3013).
	ErrClusterNotRunning = errors.New("wazuh cluster is not running")
)

// APIError is an answer in which the API refused what was asked: a problem answer
// (HTTP 4xx/5xx with title, detail, error code and remediation) or a 200 whose
// failed_items carry the error of each item.
type APIError struct {
	// Op says what was asked ("authenticate as user wazuh", "update user 100").
	Op string
	// Status is the HTTP status; 200 for failed items of a successful answer.
	Status int
	// Title is the problem's title ("Bad Request", "Unauthorized").
	Title string
	// Detail is the API's explanation ("Insecure user password provided").
	Detail string
	// Code is Wazuh's error code (5007), 0 when the answer gave none.
	Code int
	// Remediation is the API's advice, when it gave one.
	Remediation string
	// IDs are the failed items' ids (failed_items only).
	IDs []string
	// login marks the answer to the authentication call.
	login bool
}

// Error says what was refused, with the API's own words and code.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("wazuh API refused to " + e.Op)
	var in []string
	if e.Status != http.StatusOK {
		in = append(in, "HTTP "+strconv.Itoa(e.Status))
	}
	if e.Code != 0 {
		in = append(in, "error "+strconv.Itoa(e.Code))
	}
	if len(e.IDs) > 0 {
		in = append(in, "for "+strings.Join(e.IDs, ", "))
	}
	if len(in) > 0 {
		b.WriteString(" (" + strings.Join(in, ", ") + ")")
	}
	detail := e.Detail
	if detail == "" {
		detail = e.Title
	}
	if detail != "" {
		b.WriteString(": " + detail)
	}
	if e.Remediation != "" {
		b.WriteString("; " + strings.TrimSuffix(e.Remediation, "."))
	}
	return b.String()
}

// Is matches the sentinels by status and code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInvalidCredentials:
		return e.login && e.Status == http.StatusUnauthorized
	case ErrUnauthorized:
		return !e.login && e.Status == http.StatusUnauthorized
	case ErrPasswordPolicy:
		return e.Code == CodePasswordInsecure || e.Code == CodePasswordLength
	case ErrClusterNotRunning:
		return e.Code == CodeClusterNotRunning || e.Code == CodeClusterDisabled
	}
	return false
}

// HasCode reports whether err is an *APIError with the given Wazuh code.
func HasCode(err error, code int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

// problem is the body of an error answer. Problem answers of the 4.x API put the
// Wazuh code in "error"; the OpenAPI ApiError schema names it "code": both are read.
type problem struct {
	Title       string          `json:"title"`
	Detail      string          `json:"detail"`
	Remediation string          `json:"remediation"`
	Error       json.RawMessage `json:"error"`
	Code        int             `json:"code"`
}

// parseProblem turns a non-2xx answer into an *APIError; a body that is not the
// API's JSON (a proxy's page) is kept, shortened, as the detail.
func parseProblem(op string, status int, raw []byte, login bool) *APIError {
	e := &APIError{Op: op, Status: status, login: login}
	var p problem
	if err := json.Unmarshal(raw, &p); err != nil {
		e.Title = http.StatusText(status)
		e.Detail = shorten(string(bytes.TrimSpace(raw)))
		return e
	}
	e.Title, e.Detail, e.Remediation, e.Code = p.Title, p.Detail, p.Remediation, p.Code
	if n, err := strconv.Atoi(string(p.Error)); err == nil && n != 0 {
		e.Code = n
	}
	if e.Title == "" && e.Detail == "" {
		e.Title = http.StatusText(status)
	}
	return e
}

func shorten(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// envelope is the API's answer to a successful call:
// {"data": {...}, "message": "...", "error": 0|1|2}.
type envelope struct {
	Data    json.RawMessage `json:"data"`
	Message string          `json:"message"`
	// Error is 0 when every item succeeded, 1 when some failed, 2 when all failed.
	Error int `json:"error"`
}

// Items is the data of a list answer: the items that succeeded and those that failed.
type Items[T any] struct {
	// Affected are the items the call applied to or returned.
	Affected []T `json:"affected_items"`
	// TotalAffected counts every matching item, beyond a page.
	TotalAffected int `json:"total_affected_items"`
	// Failed are the items the call could not apply to, each with its error.
	Failed []FailedItem `json:"failed_items"`
	// TotalFailed counts the failed items.
	TotalFailed int `json:"total_failed_items"`
	// Message is the envelope's message ("All specified users were returned").
	Message string `json:"-"`
}

// FailedItem is one entry of failed_items: an error and the ids it applies to.
type FailedItem struct {
	// Error is the item's error: code, message and remediation.
	Error ItemError `json:"error"`
	// ID are the ids the error applies to (strings or numbers in the answer).
	ID IDs `json:"id"`
}

// ItemError is the error of a failed item.
type ItemError struct {
	// Code is Wazuh's error code.
	Code int `json:"code"`
	// Message is the API's explanation.
	Message string `json:"message"`
	// Remediation is the API's advice, when it gave one.
	Remediation string `json:"remediation"`
}

// IDs are failed-item ids, which the API gives as strings or numbers.
type IDs []string

// UnmarshalJSON reads an array of strings and numbers (or a single one).
func (ids *IDs) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		raw = []json.RawMessage{b}
	}
	out := make(IDs, 0, len(raw))
	for _, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err == nil {
			out = append(out, s)
			continue
		}
		var n json.Number
		if err := json.Unmarshal(r, &n); err != nil {
			return fmt.Errorf("cannot read failed item id %s", r)
		}
		out = append(out, n.String())
	}
	*ids = out
	return nil
}

// decodeItems reads a list answer. Failed items come back as an *APIError for the
// first of them (all of them stay in the returned Items), so callers that accept
// some codes (a role already linked) look at Items.Failed.
func decodeItems[T any](op string, raw []byte) (Items[T], error) {
	var items Items[T]
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return items, fmt.Errorf("cannot decode the wazuh API's answer to %s: %w (%s)", op, err, shorten(string(raw)))
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return items, fmt.Errorf("cannot %s: the wazuh API's answer has no data (%s)", op, shorten(string(raw)))
	}
	if err := json.Unmarshal(env.Data, &items); err != nil {
		return items, fmt.Errorf("cannot decode the wazuh API's answer to %s: %w (%s)", op, err, shorten(string(raw)))
	}
	items.Message = env.Message
	if len(items.Failed) > 0 {
		return items, failedError(op, items.Failed[0])
	}
	return items, nil
}

// failedError is the *APIError of one failed item.
func failedError(op string, f FailedItem) *APIError {
	return &APIError{Op: op, Status: http.StatusOK, Code: f.Error.Code, Detail: f.Error.Message,
		Remediation: f.Error.Remediation, IDs: f.ID}
}
