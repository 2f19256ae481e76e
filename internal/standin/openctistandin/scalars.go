package openctistandin

import (
	"encoding/json"
	"fmt"
	"time"
)

// anyValue is OpenCTI's Any scalar: whatever JSON value the client sent.
type anyValue struct{ v any }

// ImplementsGraphQLType binds the type to the Any scalar.
func (anyValue) ImplementsGraphQLType(name string) bool { return name == "Any" }

// UnmarshalGraphQL keeps the decoded JSON value as it is.
func (a *anyValue) UnmarshalGraphQL(input any) error {
	a.v = input
	return nil
}

// MarshalJSON writes the value back unchanged.
func (a anyValue) MarshalJSON() ([]byte, error) { return json.Marshal(a.v) }

// String is the value as OpenCTI would store it in a string attribute.
func (a anyValue) String() string {
	switch v := a.v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		raw, _ := json.Marshal(v)
		return string(raw)
	}
}

// dateTime is OpenCTI's DateTime scalar, kept in the ISO form OpenCTI prints
// (2026-11-30T10:00:00.000Z).
type dateTime string

// ImplementsGraphQLType binds the type to the DateTime scalar.
func (dateTime) ImplementsGraphQLType(name string) bool { return name == "DateTime" }

// UnmarshalGraphQL accepts RFC 3339 strings, with or without fractions, as
// graphql-scalars' DateTime does.
func (d *dateTime) UnmarshalGraphQL(input any) error {
	s, ok := input.(string)
	if !ok {
		return fmt.Errorf("DateTime cannot represent a non string value: %v", input)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("DateTime cannot represent an invalid date-time-string %s", s)
	}
	*d = dateTime(t.UTC().Format(isoLayout))
	return nil
}

// MarshalJSON writes the string.
func (d dateTime) MarshalJSON() ([]byte, error) { return json.Marshal(string(d)) }

// optDate turns a stored timestamp into a nullable DateTime.
func optDate(s string) *dateTime {
	if s == "" {
		return nil
	}
	d := dateTime(s)
	return &d
}

// stixRef is OpenCTI's StixRef scalar (an internal, standard or STIX id).
type stixRef string

// ImplementsGraphQLType binds the type to StixRef and StixId.
func (stixRef) ImplementsGraphQLType(name string) bool { return name == "StixRef" || name == "StixId" }

// UnmarshalGraphQL accepts a string.
func (r *stixRef) UnmarshalGraphQL(input any) error {
	s, ok := input.(string)
	if !ok {
		return fmt.Errorf("%v is not a valid reference", input)
	}
	*r = stixRef(s)
	return nil
}

// MarshalJSON writes the string.
func (r stixRef) MarshalJSON() ([]byte, error) { return json.Marshal(string(r)) }

// isoLayout is the timestamp format of OpenCTI's documents and API.
const isoLayout = "2006-01-02T15:04:05.000Z"
