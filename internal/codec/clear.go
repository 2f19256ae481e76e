package codec

import (
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// MetadataClear marks a payload the codec leaves unencrypted: a value of a type that
// carries no secret by construction and must stay readable without the codec server
// (an instance's status, for operators who only have tctl).
const MetadataClear = "socflow-clear"

// Clear is implemented by types whose values may travel unencrypted: they hold
// phases, states and reasons that name what is wrong, never a secret value.
type Clear interface {
	// ClearPayload marks the type; it does nothing.
	ClearPayload()
}

// clearConverter is the SDK's JSON converter that also tags the payloads of Clear
// values with MetadataClear. It takes JSON's place in the chain (the chain keys its
// converters by encoding, so a second json/plain converter would replace the first).
type clearConverter struct {
	json *converter.JSONPayloadConverter
}

func (c clearConverter) ToPayload(value any) (*commonpb.Payload, error) {
	p, err := c.json.ToPayload(value)
	if err != nil || p == nil {
		return p, err
	}
	if _, ok := value.(Clear); ok {
		p.Metadata[MetadataClear] = []byte("true")
	}
	return p, nil
}

func (c clearConverter) FromPayload(p *commonpb.Payload, valuePtr any) error {
	return c.json.FromPayload(p, valuePtr)
}

func (c clearConverter) ToString(p *commonpb.Payload) string { return c.json.ToString(p) }

// Encoding is JSON's: a clear payload decodes like any JSON payload.
func (c clearConverter) Encoding() string { return c.json.Encoding() }

// payloadConverter is the SDK's default chain, in its order and transfer-aware like
// the default, with JSON tagging Clear values.
func payloadConverter() converter.DataConverter {
	return converter.MakeTransferAware(converter.NewCompositeDataConverter(
		converter.NewNilPayloadConverter(),
		converter.NewByteSlicePayloadConverter(),
		converter.NewProtoJSONPayloadConverter(),
		converter.NewProtoPayloadConverter(),
		clearConverter{json: converter.NewJSONPayloadConverter()},
	))
}

// isClear reports a payload the codec must leave as it is.
func isClear(p *commonpb.Payload) bool { return string(p.GetMetadata()[MetadataClear]) == "true" }

// withoutClearMark is p with MetadataClear removed (p itself is not changed).
func withoutClearMark(p *commonpb.Payload) *commonpb.Payload {
	md := make(map[string][]byte, len(p.GetMetadata()))
	for k, v := range p.GetMetadata() {
		if k != MetadataClear {
			md[k] = v
		}
	}
	return &commonpb.Payload{Metadata: md, Data: p.GetData()}
}
