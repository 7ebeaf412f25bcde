package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FieldError is a bad parameter: Field names it as the API's query
// parameter (the command line prefixes a dash), Msg says what is wrong.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParseTime reads an RFC 3339 time (2026-11-01T00:00:00Z) or a date
// (2026-11-01, midnight UTC).
func ParseTime(field, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, &FieldError{Field: field, Msg: fmt.Sprintf("%q: want an RFC 3339 time (2026-11-01T00:00:00Z) or a date (2026-11-01)", s)}
}

// ParseRange turns the month, from and to parameters into a range [from,
// to): a month (2026-11) is that UTC month; from alone runs to now; none
// is the current UTC month up to now. to is exclusive: -from 2026-11-01
// -to 2026-12-01 is November.
func ParseRange(month, from, to string, now time.Time) (time.Time, time.Time, error) {
	now = now.UTC()
	if month != "" {
		if from != "" || to != "" {
			return time.Time{}, time.Time{}, &FieldError{Field: "month", Msg: "give a month or from/to, not both"}
		}
		m, err := time.Parse("2006-01", month)
		if err != nil {
			return time.Time{}, time.Time{}, &FieldError{Field: "month", Msg: fmt.Sprintf("%q: want YYYY-MM, e.g. 2026-11", month)}
		}
		return m, m.AddDate(0, 1, 0), nil
	}
	if from == "" && to != "" {
		return time.Time{}, time.Time{}, &FieldError{Field: "from", Msg: "missing (to is given)"}
	}
	f := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	t := now
	var err error
	if from != "" {
		if f, err = ParseTime("from", from); err != nil {
			return time.Time{}, time.Time{}, err
		}
	}
	if to != "" {
		if t, err = ParseTime("to", to); err != nil {
			return time.Time{}, time.Time{}, err
		}
	}
	if !f.Before(t) {
		return time.Time{}, time.Time{}, &FieldError{Field: "to", Msg: fmt.Sprintf("%s is not after from %s", fmtTime(t), fmtTime(f))}
	}
	return f, t, nil
}

// ParseSLO reads an SLO percentage such as 99.9: more than 0, at most
// 100, at most six decimals.
func ParseSLO(field, s string) (*SLO, error) {
	bad := func(why string) error {
		return &FieldError{Field: field, Msg: fmt.Sprintf("%q: %s", s, why)}
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || strings.TrimLeft(whole+frac, "0123456789") != "" {
		return nil, bad("want a percentage such as 99.9")
	}
	if len(frac) > 6 {
		return nil, bad("at most six decimals")
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > 100 {
		return nil, bad("must be more than 0 and at most 100")
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	micro := w*1_000_000 + f
	if micro <= 0 || micro > sloScale {
		return nil, bad("must be more than 0 and at most 100")
	}
	return &SLO{micro: micro}, nil
}

// Seconds is a duration written in JSON as exact decimal seconds
// (3000, 0.25, -119.52).
type Seconds time.Duration

// MarshalJSON writes the seconds with up to nine decimals, exactly.
func (s Seconds) MarshalJSON() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	d, err := time.ParseDuration(string(b) + "s")
	if err != nil {
		return fmt.Errorf("seconds: %w", err)
	}
	*s = Seconds(d)
	return nil
}

// String is the decimal seconds, as in JSON and CSV.
func (s Seconds) String() string {
	ns := int64(s)
	sign := ""
	if ns < 0 {
		sign, ns = "-", -ns
	}
	out := sign + strconv.FormatInt(ns/1e9, 10)
	if frac := ns % 1e9; frac != 0 {
		out += "." + strings.TrimRight(fmt.Sprintf("%09d", frac), "0")
	}
	return out
}

// Duration is an interval written as the sites file writes it ("60s",
// "5m", "1h30m").
type Duration time.Duration

// String writes whole seconds as a sites file would ("1m30s", "2h") and
// anything else as time.Duration does.
func (d Duration) String() string {
	td := time.Duration(d)
	if td <= 0 || td%time.Second != 0 {
		return td.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := td / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			td -= n * u.d
		}
	}
	return b.String()
}

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	td, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(td)
	return nil
}
