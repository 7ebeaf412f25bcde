package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ParseSiteJSON validates one site written as a JSON object with the sites
// file's field names and duration strings ({"url": "https://…",
// "interval": "30s", …}), as the sites API and the sitewatch_sites topic
// carry it. The rules and the messages are the sites file's: the object is
// turned into the YAML tree the file parser walks and goes through the
// same code, with the built-in defaults (there is no defaults section).
// source names the input in messages (a file, "request body", a topic
// record); every mistake is an [*Error] with Field set, Line 0.
//
// extra lists further top-level keys the caller handles itself (the
// topic's "v" and "owner"); their raw JSON values are returned, keyed by
// name. Any other key that is not a site field is an error.
func ParseSiteJSON(source string, data []byte, extra ...string) (Site, map[string]json.RawMessage, error) {
	fail := func(field, format string, args ...any) (Site, map[string]json.RawMessage, error) {
		return Site{}, nil, &Error{File: source, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fail("", "want a JSON object with the site's fields (url, name, interval, …)")
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	extras := map[string]json.RawMessage{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail("", "invalid JSON: %v", jsonProblem(err))
		}
		name, _ := tok.(string)
		if seen[name] {
			return fail(name, "set twice")
		}
		seen[name] = true
		if slices.Contains(extra, name) {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return fail(name, "invalid JSON: %v", jsonProblem(err))
			}
			extras[name] = raw
			continue
		}
		val, err := jsonNode(dec, 0)
		if err != nil {
			return fail(name, "invalid JSON: %v", jsonProblem(err))
		}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name}, val)
	}
	if _, err := dec.Token(); err != nil {
		return fail("", "invalid JSON: %v", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail("", "invalid JSON: data after the object")
	}
	p := &parser{file: source, json: true}
	p.start(len(data))
	site, ok := p.site(root, 0, map[string]int{})
	if !ok || len(p.errs) > 0 {
		return Site{}, nil, p.errs[0]
	}
	return site, extras, nil
}

// jsonProblem words a JSON syntax error without encoding/json's prefix.
func jsonProblem(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of the input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// maxJSONDepth bounds the nesting of a site object; no site field nests
// more than two levels.
const maxJSONDepth = 8

// jsonNode reads the next JSON value from dec as the YAML node the file
// parser would have built for it: strings are !!str, numbers !!int or
// !!float, true/false !!bool, null !!null, objects mappings (key order and
// duplicates kept, so the parser reports them) and arrays sequences.
func jsonNode(dec *json.Decoder, depth int) (*yaml.Node, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Style: yaml.DoubleQuotedStyle}, nil
	case json.Number:
		tag := "!!float"
		if isJSONInt.MatchString(v.String()) {
			tag = "!!int"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(v)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if v == '{' {
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		for dec.More() {
			if v == '{' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.(string)})
			}
			c, err := jsonNode(dec, depth+1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	}
	return nil, fmt.Errorf("unexpected %v", tok)
}

var isJSONInt = regexp.MustCompile(`^-?[0-9]+$`)

// FormatDuration writes d the way a person writes it in the sites file
// ("30s", "5m", "1h30m", "1.5s", "250ms") rather than as
// time.Duration.String's "5m0s"; time.ParseDuration reads it back to the
// same value.
func FormatDuration(d time.Duration) string {
	if d <= 0 || d%time.Second != 0 {
		return d.String()
	}
	var b strings.Builder
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d -= m * time.Minute
	}
	if s := d / time.Second; s > 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}
