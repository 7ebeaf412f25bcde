package checker

import "time"

// ErrorKind says why a check is down. The processor maps each kind to the
// contract's error_kind of the same name.
type ErrorKind string

// The error kinds, in the order a check can hit them.
const (
	KindNone         ErrorKind = "" // the check is up
	KindDNS          ErrorKind = "dns"
	KindConnect      ErrorKind = "connect"
	KindTLS          ErrorKind = "tls"
	KindTimeout      ErrorKind = "timeout"
	KindStatus       ErrorKind = "status"
	KindRegexp       ErrorKind = "regexp"
	KindBodyTooLarge ErrorKind = "body_too_large"
	KindRedirects    ErrorKind = "redirects"
	KindOther        ErrorKind = "other"
)

// Kinds lists every kind a down check can have.
var Kinds = []ErrorKind{KindDNS, KindConnect, KindTLS, KindTimeout, KindStatus, KindRegexp, KindBodyTooLarge, KindRedirects, KindOther}

// Result is what one check found. It knows nothing of the wire format:
// processors/urlchecker maps it to the result event.
type Result struct {
	URL string
	// CheckedAt is the start of the check, in UTC.
	CheckedAt time.Time
	// Up is true when a response arrived, its status was expected, the
	// body fit under the limit and the regexp, if any, matched.
	Up bool
	// StatusCode is the final response's (after redirects); 0 when no
	// response arrived.
	StatusCode int
	// ResponseTime runs from the start of the request to the end of the
	// body; nil when no response arrived.
	ResponseTime *time.Duration
	// The phases, summed over a redirect chain; nil for a phase that did
	// not happen (or was cut short by the timeout).
	DNS, Connect, TLS, TTFB, Transfer *time.Duration
	// BodyBytes is how much of the body was read (at most the limit + 1).
	BodyBytes int64
	// RegexpMatched is nil when the target has no regexp or the body could
	// not be read whole.
	RegexpMatched *bool
	// ErrorKind and ErrorMessage say why the check is down; empty when up.
	ErrorKind    ErrorKind
	ErrorMessage string
	// TLSNotAfter is the earliest NotAfter of the certificate chains
	// presented in finished TLS handshakes (redirects included); nil for
	// plain HTTP or when no handshake finished.
	TLSNotAfter *time.Time
}
