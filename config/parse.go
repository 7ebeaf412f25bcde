package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/sitewatch/sitewatch/internal/typo"
	"github.com/sitewatch/sitewatch/siterules"
)

// The keys each mapping accepts, in the order they are listed in messages.
var (
	topFields      = []string{"defaults", "sites"}
	defaultsFields = []string{"interval", "timeout"}
	siteFields     = []string{"url", "name", "interval", "timeout", "regexp", "expect_status", "method", "headers", "tls", "alert"}
	alertFields    = []string{"failures", "successes"}
)

// MaxAlertThreshold bounds alert.failures and alert.successes: more
// consecutive checks than this would be a site that never alerts.
const MaxAlertThreshold = 100

const durationHint = "(e.g. 30s, 5m)"

// parser walks the yaml.Node tree by hand rather than decoding into structs:
// Node.Decode has no KnownFields mode and reports neither duplicate keys nor
// the line of each field, and the contract wants all three.
type parser struct {
	file string
	// json is set for a site written as JSON (ParseSiteJSON), where a
	// few fields differ (tls.ca_pem instead of tls.ca_file).
	json bool
	errs []*Error

	// budget bounds the work done following YAML aliases, so that a small
	// file referencing a big anchor thousands of times (a "billion laughs")
	// fails fast instead of eating memory.
	budget     int
	overBudget bool

	defInterval time.Duration
	defTimeout  time.Duration
	// defTimeoutSet is true when the defaults section sets a timeout.
	defTimeoutSet bool
	// defBroken is true when the defaults section has an error, so sites
	// that rely on it skip the checks that would only repeat it.
	defBroken bool

	regexps map[string]*regexp.Regexp
}

// siteRef names the site an error is about; the zero value means none.
type siteRef struct {
	url   string
	index int
}

// field is one key/value pair of a mapping, aliases resolved.
type field struct {
	name string
	key  *yaml.Node
	val  *yaml.Node
}

func (p *parser) failf(n *yaml.Node, at siteRef, name, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{
		File:  p.file,
		Line:  line,
		Site:  at.url,
		Index: at.index,
		Field: name,
		Msg:   fmt.Sprintf(format, args...),
	})
}

// spend charges cost units of work and reports whether the budget allows
// going on. Only files that expand through aliases get near the limit.
func (p *parser) spend(n *yaml.Node, cost int) bool {
	if p.overBudget {
		return false
	}
	p.budget -= cost
	if p.budget >= 0 {
		return true
	}
	p.overBudget = true
	p.failf(n, siteRef{}, "", "the file expands to too much data through YAML aliases (*name); write the entries out instead")
	return false
}

// start readies the parser for an input of size bytes: the work budget
// and the built-in defaults.
func (p *parser) start(size int) {
	p.budget = 10*size + 100_000
	p.defInterval = DefaultInterval
	p.defTimeout = DefaultTimeout
	p.regexps = make(map[string]*regexp.Regexp)
}

func (p *parser) parse(data []byte) ([]Site, error) {
	p.start(len(data))
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	sites := p.top(root)
	if len(p.errs) > 0 {
		// Report the mistake nearest the top of the file: that is where a
		// reader starts, and fixing it may fix the ones after it.
		return nil, slices.MinFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
	}
	return sites, nil
}

// document returns the root node of the only YAML document in data, or the
// error for an empty file, a syntax error or a second document.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	empty := &Error{File: p.file, Line: 1, Field: "sites", Msg: "missing; the file is empty"}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, empty
		}
		return nil, p.syntaxError(data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, p.syntaxError(data, err)
	default:
		return nil, &Error{File: p.file, Line: extra.Line, Msg: "a second YAML document (after ---); keep every site in one document"}
	}
	if len(doc.Content) == 0 {
		return nil, empty
	}
	root := doc.Content[0]
	if isNull(root) {
		empty.Line = root.Line
		return nil, empty
	}
	return root, nil
}

var (
	yamlLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// parserProblems are the messages of yaml's parser (as opposed to its
// scanner). It reports their line 0-based, the scanner's 1-based.
var parserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
	"found incompatible YAML document",
}

// syntaxError turns a YAML parser error ("yaml: line 3: did not find
// expected key") into an *Error with the right line. The parser leaves the
// line out for mistakes on the first line, for bad bytes and for unknown
// aliases; those are located here.
func (p *parser) syntaxError(data []byte, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		problem := m[2]
		if slices.Contains(parserProblems, problem) {
			// The parser names the line where the enclosing list or
			// mapping starts when it can, not the line of the bad token.
			line++
			problem += " (at or after this line)"
		}
		return &Error{File: p.file, Line: line, Msg: "invalid YAML: " + problem}
	}
	if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		line := 1 + bytes.Count(data[:max(0, bytes.Index(data, []byte("*"+m[1])))], []byte("\n"))
		return &Error{File: p.file, Line: line, Msg: fmt.Sprintf("invalid YAML: alias *%s refers to no anchor &%s before it", m[1], m[1])}
	}
	return &Error{File: p.file, Line: badByteLine(data), Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// badByteLine returns the line of the first byte the YAML reader refuses
// (invalid UTF-8 or a control character), or 1 when there is none.
func badByteLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line
		case r == '\n':
			line++
		case r == '\t' || r == '\r' || r == 0x85:
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffe || r == 0xffff:
			return line
		}
		i += size
	}
	return 1
}

// deref resolves YAML aliases (*name) to the node they stand for.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe says what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "no value"
		case "!!str":
			v := n.Value
			if len(v) > 60 {
				v = v[:60] + "..."
			}
			return fmt.Sprintf("the string %q", v)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		default:
			return fmt.Sprintf("a %s value", n.ShortTag())
		}
	}
	return "an unexpected YAML node"
}

// fields returns the pairs of mapping m in file order, reporting keys that
// are not plain names, duplicates and unknown keys. prefix is prepended to
// field names in messages ("defaults.").
func (p *parser) fields(m *yaml.Node, at siteRef, prefix string, known []string) []field {
	out := make([]field, 0, len(m.Content)/2)
	seen := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), deref(m.Content[i+1])
		if !p.spend(k, 1) {
			return out
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			p.failf(k, at, strings.TrimSuffix(prefix, "."), "want a field name, got %s", describe(k))
			continue
		}
		name := k.Value
		if k.ShortTag() == "!!merge" {
			p.failf(k, at, prefix+name, "merge keys are not supported; write the fields out")
			continue
		}
		if first, dup := seen[name]; dup {
			p.failf(k, at, prefix+name, "set twice (first at line %d)", first)
			continue
		}
		seen[name] = k.Line
		if !slices.Contains(known, name) {
			p.failf(k, at, prefix+name, "unknown field; %s", suggest(name, known))
			continue
		}
		out = append(out, field{name: name, key: k, val: v})
	}
	return out
}

// suggest names the known key a mistyped one was probably meant to be, or
// lists them all.
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := typo.Distance(strings.ToLower(name), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	return "known fields: " + strings.Join(known, ", ")
}

// scalar returns the text of a scalar value, or reports that the value is
// not one (a list, a mapping, nothing).
func (p *parser) scalar(n *yaml.Node, at siteRef, name, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.failf(n, at, name, "want %s, got %s", want, describe(n))
		return "", false
	}
	if !p.spend(n, 1+len(n.Value)) {
		return "", false
	}
	return n.Value, true
}

func (p *parser) duration(n *yaml.Node, at siteRef, name string) (time.Duration, string, bool) {
	s, ok := p.scalar(n, at, name, "a duration "+durationHint)
	if !ok {
		return 0, "", false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.failf(n, at, name, "%q is not a duration %s", s, durationHint)
		return 0, "", false
	}
	return d, s, true
}

func (p *parser) interval(n *yaml.Node, at siteRef, name string) (time.Duration, bool) {
	d, s, ok := p.duration(n, at, name)
	if !ok {
		return 0, false
	}
	if d < MinInterval {
		p.failf(n, at, name, "%q is under the minimum of %v", s, MinInterval)
		return 0, false
	}
	return d, true
}

func (p *parser) timeout(n *yaml.Node, at siteRef, name string) (time.Duration, string, bool) {
	d, s, ok := p.duration(n, at, name)
	if !ok {
		return 0, "", false
	}
	if d <= 0 {
		p.failf(n, at, name, "%q must be more than zero", s)
		return 0, "", false
	}
	return d, s, true
}

// top walks the root mapping: defaults first, whatever their place in the
// file, since every site depends on them.
func (p *parser) top(root *yaml.Node) []Site {
	root = deref(root)
	if root.Kind != yaml.MappingNode {
		p.failf(root, siteRef{}, "", "want a mapping with a \"sites:\" list at the top, got %s", describe(root))
		return nil
	}
	var sites *field
	for _, f := range p.fields(root, siteRef{}, "", topFields) {
		switch f.name {
		case "defaults":
			p.defaults(f.val)
		case "sites":
			sites = &f
		}
	}
	if sites == nil {
		p.failf(root, siteRef{}, "sites", "missing; list the websites to check under \"sites:\"")
		return nil
	}
	return p.sites(sites.val)
}

func (p *parser) defaults(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.failf(n, siteRef{}, "defaults", "want a mapping with interval and timeout, got %s", describe(n))
		p.defBroken = true
		return
	}
	errs := len(p.errs)
	var timeoutNode *yaml.Node
	var timeoutText string
	for _, f := range p.fields(n, siteRef{}, "defaults.", defaultsFields) {
		switch f.name {
		case "interval":
			if d, ok := p.interval(f.val, siteRef{}, "defaults.interval"); ok {
				p.defInterval = d
			}
		case "timeout":
			if d, s, ok := p.timeout(f.val, siteRef{}, "defaults.timeout"); ok {
				p.defTimeout, p.defTimeoutSet = d, true
				timeoutNode, timeoutText = f.val, s
			}
		}
	}
	if len(p.errs) > errs {
		p.defBroken = true
		return
	}
	// The built-in timeout is clamped to a short interval like any default,
	// but a timeout written next to the interval it exceeds is a mistake.
	if p.defTimeoutSet && p.defTimeout > p.defInterval {
		p.failf(timeoutNode, siteRef{}, "defaults.timeout", "%q is longer than the interval (%v); a check must end before the next one starts", timeoutText, p.defInterval)
		p.defBroken = true
	}
}

func (p *parser) sites(n *yaml.Node) []Site {
	if n.Kind != yaml.SequenceNode {
		p.failf(n, siteRef{}, "sites", "want a list of sites (\"- url: https://example.com/\"), got %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.failf(n, siteRef{}, "sites", "the list is empty; add at least one site")
		return nil
	}
	out := make([]Site, 0, len(n.Content))
	seen := make(map[string]int, len(n.Content))
	for i, item := range n.Content {
		if !p.spend(item, 1) {
			return nil
		}
		if s, ok := p.site(deref(item), i+1, seen); ok {
			out = append(out, s)
		}
	}
	return out
}

// site validates one entry of the sites list and applies the defaults.
// seen maps each URL already listed to its line.
func (p *parser) site(n *yaml.Node, index int, seen map[string]int) (Site, bool) {
	at := siteRef{index: index}
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			p.failf(n, at, "", "want a mapping, got %s; write \"- url: %s\"", describe(n), n.Value)
		} else {
			p.failf(n, at, "", "want a mapping with url and the other site fields, got %s", describe(n))
		}
		return Site{}, false
	}
	// Name the site by its URL in every message, even about the fields
	// written before the url: line.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := deref(n.Content[i]), deref(n.Content[i+1]); k.Kind == yaml.ScalarNode && k.Value == "url" {
			if v.Kind == yaml.ScalarNode && !isNull(v) {
				at.url = v.Value
			}
			break
		}
	}

	errs := len(p.errs)
	s := Site{Method: DefaultMethod, Line: n.Line}
	var (
		hasURL, intervalSet bool
		intervalBad         bool
		timeoutNode         *yaml.Node
		timeoutText         string
		tlsNode             *yaml.Node
	)
	for _, f := range p.fields(n, at, "", siteFields) {
		switch f.name {
		case "url":
			hasURL = true
			if u, ok := p.scalar(f.val, at, "url", "an http or https URL"); ok {
				s.URL = u
				if problem := checkURL(u); problem != "" {
					p.failf(f.val, at, "url", "%s", problem)
				} else if first, dup := seen[u]; dup {
					p.failf(f.val, at, "url", "listed twice (first at line %d)", first)
				} else {
					seen[u] = f.val.Line
				}
			}
		case "name":
			if v, ok := p.scalar(f.val, at, "name", "a name"); ok {
				s.Name = v
			}
		case "interval":
			intervalSet = true
			d, ok := p.interval(f.val, at, "interval")
			s.Interval, intervalBad = d, !ok
		case "timeout":
			if d, txt, ok := p.timeout(f.val, at, "timeout"); ok {
				s.Timeout, timeoutNode, timeoutText = d, f.val, txt
			}
		case "regexp":
			s.Regexp = p.regexp(f.val, at)
		case "expect_status":
			s.ExpectStatus = p.expectStatus(f.val, at)
		case "method":
			if v, ok := p.scalar(f.val, at, "method", "GET or HEAD"); ok {
				if !slices.Contains(siterules.Methods, v) {
					p.failf(f.val, at, "method", "%q is not GET or HEAD", v)
				}
				s.Method = v
			}
		case "headers":
			s.Headers = p.headers(f.val, at)
		case "tls":
			tlsNode, s.TLS = f.val, p.tls(f.val, at)
		case "alert":
			s.Alert = p.alert(f.val, at)
		}
	}
	if s.TLS != nil && strings.HasPrefix(strings.ToLower(s.URL), "http:") {
		p.failf(tlsNode, at, "tls", "the site is http://; tls settings apply to https sites only")
	}
	if !hasURL {
		p.failf(n, at, "url", "missing; every site needs an http or https URL")
	}
	if s.Name == "" {
		s.Name = s.URL
	}

	if !intervalSet {
		s.Interval = p.defInterval
	}
	intervalKnown := !intervalBad && (intervalSet || !p.defBroken)
	switch {
	case !intervalKnown:
	case timeoutNode != nil:
		if s.Timeout > s.Interval {
			p.failf(timeoutNode, at, "timeout", "%q is longer than the interval (%v); a check must end before the next one starts", timeoutText, s.Interval)
		}
	case !p.defBroken:
		// A default timeout longer than this site's short interval is
		// clamped: the user asked for frequent checks, not for an error.
		s.Timeout = min(p.defTimeout, s.Interval)
	}
	return s, len(p.errs) == errs
}

// checkURL returns what is wrong with a site URL, or "" when it is fine
// (the rule is siterules.CheckURL's).
func checkURL(raw string) string {
	if err := siterules.CheckURL(raw); err != nil {
		return err.Error()
	}
	return ""
}

// lookaround spots the Perl constructs people most often bring from other
// regexp engines, for a clearer message than RE2's "invalid named capture".
var lookaround = regexp.MustCompile(`\(\?<?[=!]`)

func (p *parser) regexp(n *yaml.Node, at siteRef) *regexp.Regexp {
	s, ok := p.scalar(n, at, "regexp", "a regexp (Go RE2 syntax)")
	if !ok {
		return nil
	}
	if s == "" {
		p.failf(n, at, "regexp", "empty; it would match every body, remove the field instead")
		return nil
	}
	// Sites often share a regexp; compile each one once.
	if re, ok := p.regexps[s]; ok {
		return re
	}
	re, err := regexp.Compile(s)
	if err != nil {
		var se *syntax.Error
		switch {
		case errors.As(err, &se) && lookaround.MatchString(s):
			p.failf(n, at, "regexp", "%q is not valid RE2 syntax: RE2 has no lookahead or lookbehind", s)
		case se != nil && se.Expr == s:
			p.failf(n, at, "regexp", "%q is not valid RE2 syntax: %s", s, se.Code)
		case se != nil:
			p.failf(n, at, "regexp", "%q is not valid RE2 syntax: %s in %q", s, se.Code, se.Expr)
		default:
			p.failf(n, at, "regexp", "%q does not compile: %v", s, err)
		}
		return nil
	}
	p.regexps[s] = re
	return re
}

func (p *parser) expectStatus(n *yaml.Node, at siteRef) []int {
	const want = "a list of status codes (e.g. [200, 301])"
	if n.Kind != yaml.SequenceNode {
		p.failf(n, at, "expect_status", "want %s, got %s", want, describe(n))
		return nil
	}
	var codes []int
	for _, item := range n.Content {
		item = deref(item)
		if !p.spend(item, 1) {
			return nil
		}
		var code int
		if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!int" || item.Decode(&code) != nil {
			p.failf(item, at, "expect_status", "want a status code (100..599), got %s", describe(item))
			continue
		}
		if code < 100 || code > 599 {
			p.failf(item, at, "expect_status", "%s is not an HTTP status code (100..599)", item.Value)
			continue
		}
		if slices.Contains(codes, code) {
			p.failf(item, at, "expect_status", "%d is listed twice", code)
			continue
		}
		codes = append(codes, code)
	}
	return codes
}

// alert reads a site's alert thresholds: {failures: N, successes: M},
// either or both.
func (p *parser) alert(n *yaml.Node, at siteRef) Alert {
	var a Alert
	if n.Kind != yaml.MappingNode {
		p.failf(n, at, "alert", "want a mapping such as {failures: 3, successes: 2}, got %s", describe(n))
		return a
	}
	for _, f := range p.fields(n, at, "alert.", alertFields) {
		name := "alert." + f.name
		v := deref(f.val)
		var k int
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&k) != nil {
			p.failf(v, at, name, "want a number of consecutive checks (1..%d), got %s", MaxAlertThreshold, describe(v))
			continue
		}
		if k < 1 || k > MaxAlertThreshold {
			p.failf(v, at, name, "%s is out of range; want 1..%d consecutive checks", v.Value, MaxAlertThreshold)
			continue
		}
		switch f.name {
		case "failures":
			a.Failures = k
		case "successes":
			a.Successes = k
		}
	}
	return a
}

func (p *parser) headers(n *yaml.Node, at siteRef) map[string]string {
	if n.Kind != yaml.MappingNode {
		p.failf(n, at, "headers", "want a mapping of header names to values (e.g. {User-Agent: sitewatch}), got %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		name, ok := p.scalar(k, at, "headers", "a header name")
		if !ok {
			continue
		}
		if !validHeaderName(name) {
			p.failf(k, at, "headers", "%q is not a valid header name", name)
			continue
		}
		// HTTP header names ignore case, so these would overwrite each other.
		lower := strings.ToLower(name)
		if first, dup := seen[lower]; dup {
			p.failf(k, at, "headers", "%q is set twice (first as %q at line %d; header names ignore case)", name, first.Value, first.Line)
			continue
		}
		seen[lower] = k
		value, ok := p.scalar(v, at, "headers", fmt.Sprintf("a value for %q (\"\" for an empty one)", name))
		if !ok {
			continue
		}
		if !validHeaderValue(value) {
			p.failf(v, at, "headers", "the value of %q has a control character (such as a line break)", name)
			continue
		}
		out[name] = value
	}
	return out
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether value may be sent as a header field
// value: no control characters other than tab (RFC 9110 field-value).
func validHeaderValue(value string) bool {
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
