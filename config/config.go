package config

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sitewatch/sitewatch/siterules"
)

// Defaults that apply when neither the site nor the file's defaults section
// sets a value.
const (
	// DefaultInterval is how often a site is checked when nothing says otherwise.
	DefaultInterval = 60 * time.Second
	// DefaultTimeout bounds one check when nothing says otherwise. A site
	// whose interval is shorter gets its interval as timeout instead, so a
	// check never outlives its slot.
	DefaultTimeout = siterules.DefaultTimeout
	// MinInterval is the shortest interval accepted: anything faster is
	// hammering a website, not monitoring it.
	MinInterval = time.Second
	// DefaultMethod is the HTTP method used when a site does not set one.
	DefaultMethod = siterules.DefaultMethod
)

// File is a parsed and validated sites file.
type File struct {
	// Path is the path the file was read from, as given to [Load] or [Parse].
	Path string
	// Sites are in file order. URLs are unique.
	Sites []Site
}

// Site is one website to check, with every default already applied.
type Site struct {
	// URL is the absolute http or https URL exactly as written in the file;
	// it is the Kafka key of every event about the site.
	URL string
	// Name is a label for humans; the URL when the file gives none.
	Name string
	// Method is GET or HEAD.
	Method string
	// Interval is the time between two checks, at least [MinInterval].
	Interval time.Duration
	// Timeout bounds one check; it is positive and at most Interval.
	Timeout time.Duration
	// Regexp, when not nil, must match the response body for the site to be up.
	Regexp *regexp.Regexp
	// ExpectStatus lists the status codes that count as up; empty means any
	// 2xx or 3xx (see [Site.StatusExpected]).
	ExpectStatus []int
	// Headers are sent with every check; nil when the file sets none.
	Headers map[string]string
	// TLS are the site's own TLS settings; nil when the file sets none.
	TLS *TLS
	// Alert overrides the processor's alert thresholds for this site;
	// zero fields keep -alert-failures and -alert-successes.
	Alert Alert
	// Line is the line of the site in the file, for messages about it.
	Line int
}

// Alert is a site's alert thresholds (the sites file's alert: mapping).
type Alert struct {
	// Failures is how many consecutive down checks make the site down.
	Failures int
	// Successes is how many consecutive up checks make it up again.
	Successes int
}

// StatusExpected reports whether a final response status code counts as up:
// one of ExpectStatus when the site lists some, any 2xx or 3xx otherwise.
func (s Site) StatusExpected(code int) bool {
	return siterules.StatusExpected(code, s.ExpectStatus)
}

// Load reads the sites file at path and parses it with [Parse]. An error
// reading the file wraps the [os] error (errors.Is(err, fs.ErrNotExist)
// works); a mistake in its content is an [*Error].
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sites file: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates the content of a sites file; path is used in
// error messages and in [File.Path]. Every mistake is reported as an
// [*Error]; when the file has several, the one nearest the top of the file
// is returned, so the message stays one line. YAML anchors and aliases
// (&name, *name) may share values between sites; merge keys (<<) are refused.
func Parse(path string, data []byte) (*File, error) {
	p := &parser{file: path}
	sites, err := p.parse(data)
	if err != nil {
		return nil, err
	}
	return &File{Path: path, Sites: sites}, nil
}

var lineBreaks = strings.NewReplacer("\r", `\r`, "\n", `\n`)

// Error is a mistake in a sites file. Callers branch on it with errors.As,
// for example to exit with status 2 (bad configuration).
type Error struct {
	// File is the path as given to [Load] or [Parse].
	File string
	// Line is 1-based; 0 when unknown.
	Line int
	// Site is the URL of the site the mistake is in, as written; empty when
	// the mistake is outside a site or the site has no usable url.
	Site string
	// Index is the 1-based position of the site in the sites list; 0 when
	// the mistake is outside a site.
	Index int
	// Field is the key at fault, dotted for nested keys ("defaults.timeout");
	// empty when the mistake is not about one key.
	Field string
	// Msg says what is wrong and, where it helps, what to write instead.
	Msg string
}

// Error returns one line: "file:line: site "url": field: message", leaving
// out the parts that do not apply. A site without a usable url is named by
// its position ("site #3").
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	switch {
	case e.Site != "":
		fmt.Fprintf(&b, "site %q: ", e.Site)
	case e.Index > 0:
		fmt.Fprintf(&b, "site #%d: ", e.Index)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	// Messages quote user input with %q, but a field name or a library
	// message could still carry a line break; the contract is one line.
	return lineBreaks.Replace(b.String())
}
