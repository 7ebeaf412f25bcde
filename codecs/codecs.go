package codecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lovoo/goka"
)

// Version is the only payload version this build reads and writes.
const Version = 1

// Outcome values of a check.
const (
	OutcomeUp   = "up"
	OutcomeDown = "down"
)

// Error kinds of a failed check, as listed in the contract.
const (
	ErrDNS          = "dns"
	ErrConnect      = "connect"
	ErrTLS          = "tls"
	ErrTimeout      = "timeout"
	ErrStatus       = "status"
	ErrRegexp       = "regexp"
	ErrBodyTooLarge = "body_too_large"
	ErrRedirects    = "redirects"
	ErrOther        = "other"
)

// ErrVersion is returned (wrapped) when a payload carries a version this
// build does not understand.
var ErrVersion = errors.New("unsupported version")

// validator is implemented by every payload so that the shared decoder can
// reject structurally valid JSON that misses required fields.
type validator interface {
	validate() error
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// trailing data and versions other than Version.
func decodeStrict(data []byte, v validator, version func() int) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid json: trailing data after object")
	}
	if got := version(); got != Version {
		return fmt.Errorf("%w %d (want %d)", ErrVersion, got, Version)
	}
	return v.validate()
}

// jsonCodec is a goka.Codec for one payload type T.
type jsonCodec[T any, P interface {
	*T
	validator
	setVersion()
	version() int
}] struct{}

func (jsonCodec[T, P]) Encode(value any) ([]byte, error) {
	var p P
	switch v := value.(type) {
	case P:
		p = v
	case T:
		p = &v
	default:
		var zero T
		return nil, fmt.Errorf("encode: got %T, want %T", value, zero)
	}
	p.setVersion()
	return json.Marshal(p)
}

func (jsonCodec[T, P]) Decode(data []byte) (any, error) {
	var p P = new(T)
	if err := decodeStrict(data, p, p.version); err != nil {
		return nil, err
	}
	return p, nil
}

// RequestCodec encodes *Request values for status_request_created.
type RequestCodec = jsonCodec[Request, *Request]

// ResultCodec encodes *Result values for status_request_succeeded and
// status_request_failed.
type ResultCodec = jsonCodec[Result, *Result]

// WindowCodec encodes *Window values for status_windows.
type WindowCodec = jsonCodec[Window, *Window]

// DeadLetterCodec encodes *DeadLetter values for sitewatch_dead_letters.
type DeadLetterCodec = jsonCodec[DeadLetter, *DeadLetter]

var (
	_ goka.Codec = RequestCodec{}
	_ goka.Codec = ResultCodec{}
	_ goka.Codec = WindowCodec{}
	_ goka.Codec = DeadLetterCodec{}
)

// DecodeResult decodes one result event strictly.
func DecodeResult(data []byte) (*Result, error) {
	v, err := ResultCodec{}.Decode(data)
	if err != nil {
		return nil, err
	}
	return v.(*Result), nil
}

// DecodeRequest decodes one check request strictly.
func DecodeRequest(data []byte) (*Request, error) {
	v, err := RequestCodec{}.Decode(data)
	if err != nil {
		return nil, err
	}
	return v.(*Request), nil
}

// DecodeWindow decodes one window aggregate strictly.
func DecodeWindow(data []byte) (*Window, error) {
	v, err := WindowCodec{}.Decode(data)
	if err != nil {
		return nil, err
	}
	return v.(*Window), nil
}

// DecodeDeadLetter decodes one dead letter strictly.
func DecodeDeadLetter(data []byte) (*DeadLetter, error) {
	v, err := DeadLetterCodec{}.Decode(data)
	if err != nil {
		return nil, err
	}
	return v.(*DeadLetter), nil
}

func requireTime(field string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("missing field %q", field)
	}
	return nil
}

func requireString(field, s string) error {
	if s == "" {
		return fmt.Errorf("missing field %q", field)
	}
	return nil
}
