package codecs

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Request asks a url_checker to check one site for one schedule slot. It
// carries the whole check specification so that any emitter instance can
// run it, even one whose sites file is older or newer.
type Request struct {
	V           int       `json:"v"`
	RequestID   string    `json:"request_id"`
	URL         string    `json:"url"`
	ScheduledAt time.Time `json:"scheduled_at"`
	// NextAt is the start of the site's next slot: a request received at or
	// after it is stale and is skipped.
	NextAt       time.Time         `json:"next_at"`
	Method       string            `json:"method"`
	Headers      map[string]string `json:"headers,omitempty"`
	TimeoutMS    int64             `json:"timeout_ms"`
	Regexp       *string           `json:"regexp"`
	ExpectStatus []int             `json:"expect_status,omitempty"`
	// TLS is the site's own TLS settings; absent for most sites.
	TLS *RequestTLS `json:"tls,omitempty"`
}

// RequestTLS is a site's tls: settings from the sites file. The CA
// certificates travel in the request (not the file's path), so that any
// emitter can check the site.
type RequestTLS struct {
	CAPEM              string `json:"ca_pem,omitempty"`
	ServerName         string `json:"server_name,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

func (r *Request) setVersion()  { r.V = Version }
func (r *Request) version() int { return r.V }

func (r *Request) validate() error {
	return errors.Join(
		requireString("request_id", r.RequestID),
		requireString("url", r.URL),
		requireTime("scheduled_at", r.ScheduledAt),
		requireTime("next_at", r.NextAt),
		requireString("method", r.Method),
		positive("timeout_ms", r.TimeoutMS),
	)
}

// Timeout is the per-check timeout as a duration.
func (r *Request) Timeout() time.Duration { return time.Duration(r.TimeoutMS) * time.Millisecond }

// Result is one check of one site: the event on status_request_succeeded
// (outcome "up") and status_request_failed (outcome "down"). JSON keys are
// the column names of check_results.
type Result struct {
	V       int    `json:"v"`
	EventID string `json:"event_id"`
	URL     string `json:"url"`
	// Region is the checking emitter's -region; DefaultRegion when the
	// event was written before regions (see applyDefaults).
	Region         string    `json:"region"`
	ScheduledAt    time.Time `json:"scheduled_at"`
	CheckedAt      time.Time `json:"checked_at"`
	Outcome        string    `json:"outcome"`
	StatusCode     int       `json:"status_code"`
	ResponseTimeMS *float64  `json:"response_time_ms"`
	DNSMS          *float64  `json:"dns_ms"`
	ConnectMS      *float64  `json:"connect_ms"`
	TLSMS          *float64  `json:"tls_ms"`
	TTFBMS         *float64  `json:"ttfb_ms"`
	TransferMS     *float64  `json:"transfer_ms"`
	BodyBytes      int64     `json:"body_bytes"`
	Regexp         *string   `json:"regexp"`
	RegexpMatched  *bool     `json:"regexp_matched"`
	ErrorKind      *string   `json:"error_kind"`
	ErrorMessage   *string   `json:"error_message"`
	// TLSNotAfter is the earliest NotAfter of the certificate chains the
	// check was presented (redirects included); nil for plain HTTP or when
	// no TLS handshake finished.
	TLSNotAfter *time.Time `json:"tls_not_after"`
	Checker     string     `json:"checker"`
}

// setVersion also names the region of a result that has none: every
// result written carries one.
func (r *Result) setVersion() {
	r.V = Version
	r.Region = RegionOrDefault(r.Region)
}
func (r *Result) version() int { return r.V }

func (r *Result) applyDefaults() { r.Region = RegionOrDefault(r.Region) }

func (r *Result) validate() error {
	// Counted first, described only when something is wrong: building
	// the list of errors for every valid result was a twentieth of its
	// decode.
	if r.problems(nil) == 0 {
		return nil
	}
	var errs []error
	r.problems(&errs)
	return errors.Join(errs...)
}

// problems counts what is wrong with r and, when errs is not nil,
// describes each in it.
func (r *Result) problems(errs *[]error) int {
	n := 0
	add := func(err error) {
		n++
		if errs != nil {
			*errs = append(*errs, err)
		}
	}
	if r.EventID == "" {
		add(requireString("event_id", r.EventID))
	}
	if r.URL == "" {
		add(requireString("url", r.URL))
	}
	if r.ScheduledAt.IsZero() {
		add(requireTime("scheduled_at", r.ScheduledAt))
	}
	if r.CheckedAt.IsZero() {
		add(requireTime("checked_at", r.CheckedAt))
	}
	if r.Checker == "" {
		add(requireString("checker", r.Checker))
	}
	if r.Region != DefaultRegion { // the default is valid
		if err := validRegion("region", r.Region); err != nil {
			add(err)
		}
	}
	switch r.Outcome {
	case OutcomeUp:
		if r.ErrorKind != nil {
			add(errors.New("field \"error_kind\" must be null when outcome is up"))
		}
	case OutcomeDown:
		if r.ErrorKind == nil {
			add(errors.New("field \"error_kind\" is required when outcome is down"))
		} else if !validErrorKind(*r.ErrorKind) {
			add(fmt.Errorf("field \"error_kind\": unknown kind %q", *r.ErrorKind))
		}
	case "":
		add(errors.New("missing field \"outcome\""))
	default:
		add(fmt.Errorf("field \"outcome\": want up or down, got %q", r.Outcome))
	}
	if r.StatusCode < 0 || r.StatusCode > 999 {
		add(fmt.Errorf("field \"status_code\": %d out of range", r.StatusCode))
	}
	if r.BodyBytes < 0 {
		add(fmt.Errorf("field \"body_bytes\": negative"))
	}
	for _, f := range [...]struct {
		name string
		v    *float64
	}{{"response_time_ms", r.ResponseTimeMS}, {"dns_ms", r.DNSMS}, {"connect_ms", r.ConnectMS}, {"tls_ms", r.TLSMS}, {"ttfb_ms", r.TTFBMS}, {"transfer_ms", r.TransferMS}} {
		if f.v != nil && (*f.v < 0 || *f.v != *f.v || *f.v > 1e9) {
			add(fmt.Errorf("field %q: %v out of range", f.name, *f.v))
		}
	}
	return n
}

// Up reports whether the check succeeded.
func (r *Result) Up() bool { return r.Outcome == OutcomeUp }

func validErrorKind(k string) bool {
	switch k {
	case ErrDNS, ErrConnect, ErrTLS, ErrTimeout, ErrStatus, ErrRegexp, ErrBodyTooLarge, ErrRedirects, ErrOther:
		return true
	}
	return false
}

// MaxExactResponses is how many responses a window may have and still
// carry exact percentiles (PercentilesExact): the windows processor keeps
// that many response times per window. A site checked every second has
// 300 per five-minute window; above the cap (several checkers per URL,
// longer windows) the percentiles come from a histogram sketch within 1 %.
const MaxExactResponses = 4096

// Window is the aggregate of one URL's checks by one region whose
// checked_at falls in [WindowStart, WindowEnd). JSON keys are the column
// names of check_windows.
type Window struct {
	V   int    `json:"v"`
	URL string `json:"url"`
	// Region is the region whose checks the window counts; DefaultRegion
	// when the event was written before regions.
	Region         string    `json:"region"`
	WindowStart    time.Time `json:"window_start"`
	WindowEnd      time.Time `json:"window_end"`
	Checks         int64     `json:"checks"`
	Failures       int64     `json:"failures"`
	RegexpFailures int64     `json:"regexp_failures"`
	// Responses counts the checks that got a response (non-null
	// response_time_ms); the latency columns are over these.
	Responses     int64    `json:"responses"`
	ResponseMinMS *float64 `json:"response_min_ms"`
	ResponseAvgMS *float64 `json:"response_avg_ms"`
	ResponseMaxMS *float64 `json:"response_max_ms"`
	ResponseP50MS *float64 `json:"response_p50_ms"`
	ResponseP95MS *float64 `json:"response_p95_ms"`
	ResponseP99MS *float64 `json:"response_p99_ms"`
	// PercentilesExact is true when the percentiles are percentile_cont of
	// the window's response times themselves (up to MaxExactResponses of
	// them), false when they come from the windows processor's histogram
	// sketch (within 1 %).
	PercentilesExact bool             `json:"percentiles_exact"`
	StatusCounts     map[string]int64 `json:"status_counts"`
	// Revision grows with every emission of the same window (a late event
	// re-emits it), so that a sink keeps the newest one.
	Revision int64 `json:"revision"`
}

func (w *Window) setVersion() {
	w.V = Version
	w.Region = RegionOrDefault(w.Region)
}
func (w *Window) version() int { return w.V }

func (w *Window) applyDefaults() { w.Region = RegionOrDefault(w.Region) }

func (w *Window) validate() error {
	errs := []error{
		requireString("url", w.URL),
		requireTime("window_start", w.WindowStart),
		requireTime("window_end", w.WindowEnd),
		validRegion("region", w.Region),
	}
	if !w.WindowEnd.After(w.WindowStart) {
		errs = append(errs, errors.New("field \"window_end\" must be after window_start"))
	}
	if w.Checks < 0 || w.Failures < 0 || w.Failures > w.Checks || w.Responses > w.Checks {
		errs = append(errs, errors.New("fields \"checks\", \"failures\", \"responses\": inconsistent counts"))
	}
	return errors.Join(errs...)
}

// DeadLetter is a message that could not be decoded or written, kept with
// the reason so that an operator can inspect or replay it. Key and Value
// are the original bytes (base64 in the JSON, as encoding/json writes
// []byte); Consumer is the group that gave up on it, so one bad message
// read by several groups yields one dead letter per group.
type DeadLetter struct {
	V         int       `json:"v"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Key       []byte    `json:"key"`
	Value     []byte    `json:"value"`
	Reason    string    `json:"reason"`
	Consumer  string    `json:"consumer"`
	FailedAt  time.Time `json:"failed_at"`
}

// setVersion also folds the reason onto one line: errors.Join separates
// its errors with newlines, and an operator reads dead letters one per
// line (kcat, jq), so every producer gets the same form here.
func (d *DeadLetter) setVersion() {
	d.V = Version
	if strings.ContainsAny(d.Reason, "\r\n") {
		d.Reason = strings.Join(strings.FieldsFunc(d.Reason, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
	}
}
func (d *DeadLetter) version() int { return d.V }

func (d *DeadLetter) validate() error {
	return errors.Join(requireString("topic", d.Topic), requireString("reason", d.Reason))
}

func positive(field string, v int64) error {
	if v <= 0 {
		return fmt.Errorf("field %q must be positive", field)
	}
	return nil
}
