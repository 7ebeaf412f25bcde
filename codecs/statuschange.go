package codecs

import (
	"errors"
	"fmt"
	"time"
)

// Kinds of a status change (the "kind" field of a StatusChange).
const (
	ChangeDown         = "down"
	ChangeUp           = "up"
	ChangeCertExpiring = "cert_expiring"
	ChangeCertOK       = "cert_ok"
)

// States a site can be in, as seen by the alerts processor. StateUnknown
// is only ever a previous state: a site's first checks set its state.
const (
	StateUnknown = "unknown"
	StateUp      = "up"
	StateDown    = "down"
)

// StatusChange is one event on status_changes: a site crossed an alert
// threshold (down, up) or its certificate started or stopped expiring
// soon. ChangeID is derived from the crossing check, so the same change
// re-derived after a crash or by another instance has the same id; a
// receiver deduplicates on it (it is sent as the Idempotency-Key).
type StatusChange struct {
	V             int    `json:"v"`
	ChangeID      string `json:"change_id"`
	URL           string `json:"url"`
	Name          string `json:"name"`
	Kind          string `json:"kind"`
	State         string `json:"state"`
	PreviousState string `json:"previous_state"`
	// Since is the checked_at of the first check of the run that crossed
	// the threshold; ChangedAt that of the crossing check.
	Since        time.Time  `json:"since"`
	ChangedAt    time.Time  `json:"changed_at"`
	Consecutive  int        `json:"consecutive"`
	EventID      string     `json:"event_id"`
	ErrorKind    *string    `json:"error_kind"`
	ErrorMessage *string    `json:"error_message"`
	StatusCode   int        `json:"status_code"`
	TLSNotAfter  *time.Time `json:"tls_not_after"`
	// Regions lists the regions that agreed, when checked from several.
	Regions []string `json:"regions,omitempty"`
}

func (c *StatusChange) setVersion()  { c.V = Version }
func (c *StatusChange) version() int { return c.V }

func (c *StatusChange) validate() error {
	errs := []error{
		requireString("change_id", c.ChangeID),
		requireString("url", c.URL),
		requireString("event_id", c.EventID),
		requireTime("since", c.Since),
		requireTime("changed_at", c.ChangedAt),
	}
	switch c.Kind {
	case ChangeDown, ChangeUp, ChangeCertExpiring, ChangeCertOK:
	case "":
		errs = append(errs, errors.New("missing field \"kind\""))
	default:
		errs = append(errs, fmt.Errorf("field \"kind\": want down, up, cert_expiring or cert_ok, got %q", c.Kind))
	}
	switch c.State {
	case StateUp, StateDown:
	default:
		errs = append(errs, fmt.Errorf("field \"state\": want up or down, got %q", c.State))
	}
	switch c.PreviousState {
	case StateUnknown, StateUp, StateDown:
	default:
		errs = append(errs, fmt.Errorf("field \"previous_state\": want unknown, up or down, got %q", c.PreviousState))
	}
	if c.Consecutive < 0 {
		errs = append(errs, errors.New("field \"consecutive\": negative"))
	}
	if c.ErrorKind != nil && !validErrorKind(*c.ErrorKind) {
		errs = append(errs, fmt.Errorf("field \"error_kind\": unknown kind %q", *c.ErrorKind))
	}
	if c.ChangedAt.Before(c.Since) {
		errs = append(errs, errors.New("field \"changed_at\" must not be before since"))
	}
	return errors.Join(errs...)
}

// StatusChangeCodec encodes *StatusChange values for status_changes.
type StatusChangeCodec = jsonCodec[StatusChange, *StatusChange]

// DecodeStatusChange decodes one status change strictly.
func DecodeStatusChange(data []byte) (*StatusChange, error) {
	v, err := StatusChangeCodec{}.Decode(data)
	if err != nil {
		return nil, err
	}
	return v.(*StatusChange), nil
}
