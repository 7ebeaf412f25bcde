// Package siterules holds the rules about a site that the sites file, the
// scheduler and the checker must agree on, each written once: the default
// method and timeout, which status codes count as up, and what makes a
// site URL acceptable. config applies them when it reads the file (with
// messages naming file, line and field), the scheduler when it builds
// requests, and checker when it runs a check of a request from elsewhere
// (a replayed or hand-made request).
package siterules

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultMethod is the HTTP method of a site that sets none.
	DefaultMethod = http.MethodGet
	// DefaultTimeout bounds one check when nothing says otherwise.
	DefaultTimeout = 10 * time.Second
)

// Methods are the HTTP methods a site may use.
var Methods = []string{http.MethodGet, http.MethodHead}

// Method is the method a check sends: m, or DefaultMethod when empty.
func Method(m string) string {
	if m == "" {
		return DefaultMethod
	}
	return m
}

// Timeout is the timeout of a check: d, or DefaultTimeout when not
// positive.
func Timeout(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

// StatusExpected reports whether a final response status counts as up:
// one of expect when the site lists some, any 2xx or 3xx otherwise.
func StatusExpected(code int, expect []int) bool {
	if len(expect) == 0 {
		return code >= 200 && code <= 399
	}
	return slices.Contains(expect, code)
}

// DescribeExpected says which statuses count as up, for messages:
// "2xx or 3xx", "200", "200 or 204", "one of 200, 204, 301".
func DescribeExpected(expect []int) string {
	switch len(expect) {
	case 0:
		return "2xx or 3xx"
	case 1:
		return strconv.Itoa(expect[0])
	case 2:
		return strconv.Itoa(expect[0]) + " or " + strconv.Itoa(expect[1])
	}
	s := make([]string, len(expect))
	for i, c := range expect {
		s[i] = strconv.Itoa(c)
	}
	return "one of " + strings.Join(s, ", ")
}

// CheckURL returns what is wrong with a site URL, or nil: it must be an
// absolute http or https URL with a host, written without spaces around
// it. The messages do not repeat the URL: callers name the site by it.
func CheckURL(raw string) error {
	if raw == "" {
		return errors.New("empty; want an http or https URL")
	}
	if strings.TrimSpace(raw) != raw {
		return errors.New("has spaces around it")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a valid URL: %v", err)
	}
	if u.Scheme == "" {
		return errors.New("not an absolute URL; want one starting with http:// or https://")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("no host")
	}
	return nil
}
