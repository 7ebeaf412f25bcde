package codecs

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/sitewatch/sitewatch/config"
)

// Owners of a site on sitewatch_sites: the sites API, or the sites file at
// a path (OwnerFilePrefix + path), which alone removes what it published.
const (
	OwnerAPI        = "api"
	OwnerFilePrefix = "file:"
)

// FileOwner is the owner recorded for the sites a sites file publishes.
func FileOwner(path string) string { return OwnerFilePrefix + path }

// SiteFields is a site written with the sites file's field names and
// duration strings, every default applied: the body of the sites API and
// the fields of a sitewatch_sites value. The yaml tags write it as an
// entry of a sites file (`sitewatch sites export`).
type SiteFields struct {
	URL          string            `json:"url" yaml:"url"`
	Name         string            `json:"name" yaml:"name,omitempty"`
	Interval     string            `json:"interval" yaml:"interval"`
	Timeout      string            `json:"timeout" yaml:"timeout"`
	Regexp       *string           `json:"regexp,omitempty" yaml:"regexp,omitempty"`
	ExpectStatus []int             `json:"expect_status,omitempty" yaml:"expect_status,omitempty,flow"`
	Method       string            `json:"method" yaml:"method,omitempty"`
	Headers      map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	TLS          *SiteTLS          `json:"tls,omitempty" yaml:"tls,omitempty"`
	Alert        *SiteAlert        `json:"alert,omitempty" yaml:"alert,omitempty"`
}

// SiteAlert is a site's own alert thresholds (the sites file's alert:);
// an absent or zero field keeps the processor's -alert-failures and
// -alert-successes.
type SiteAlert struct {
	Failures  int `json:"failures,omitempty" yaml:"failures,omitempty"`
	Successes int `json:"successes,omitempty" yaml:"successes,omitempty"`
}

// SiteTLS is a site's own TLS settings. The CA certificates travel as PEM
// text (ca_pem), not as the sites file's ca_file path, so that any emitter
// can check the site.
type SiteTLS struct {
	CAPEM              string `json:"ca_pem,omitempty" yaml:"ca_pem,omitempty"`
	ServerName         string `json:"server_name,omitempty" yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty" yaml:"insecure_skip_verify,omitempty"`
}

// FieldsOf writes a validated site as SiteFields.
func FieldsOf(s config.Site) SiteFields {
	f := SiteFields{
		URL: s.URL, Name: s.Name, Method: s.Method,
		Interval: config.FormatDuration(s.Interval), Timeout: config.FormatDuration(s.Timeout),
		ExpectStatus: s.ExpectStatus, Headers: maps.Clone(s.Headers),
	}
	if s.Regexp != nil {
		re := s.Regexp.String()
		f.Regexp = &re
	}
	if s.Alert != (config.Alert{}) {
		f.Alert = &SiteAlert{Failures: s.Alert.Failures, Successes: s.Alert.Successes}
	}
	if s.TLS != nil {
		f.TLS = &SiteTLS{CAPEM: string(s.TLS.CAPEM), ServerName: s.TLS.ServerName, InsecureSkipVerify: s.TLS.InsecureSkipVerify}
	}
	return f
}

// SiteValue is the value of a sitewatch_sites record (key: the URL). A
// tombstone (null value) removes the site.
type SiteValue struct {
	V int `json:"v"`
	SiteFields
	Owner string `json:"owner"`
}

// EncodeSite is the sitewatch_sites value of site, owned by owner.
func EncodeSite(site config.Site, owner string) ([]byte, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	return json.Marshal(SiteValue{V: Version, SiteFields: FieldsOf(site), Owner: owner})
}

// DecodeSite decodes and validates a sitewatch_sites value read under key,
// strictly and by the sites file's rules (config.ParseSiteJSON): unknown
// fields, a wrong version, a bad owner or a key other than the site's URL
// are errors. It returns the site and its owner.
func DecodeSite(key string, value []byte) (config.Site, string, error) {
	site, extra, err := config.ParseSiteJSON("sitewatch_sites value", value, "v", "owner")
	if err != nil {
		return config.Site{}, "", err
	}
	if v := string(extra["v"]); v != "1" {
		if v == "" {
			return config.Site{}, "", errors.New("sitewatch_sites value: v: missing")
		}
		return config.Site{}, "", fmt.Errorf("sitewatch_sites value: v: version %s, this build reads %d", v, Version)
	}
	var owner string
	if raw, ok := extra["owner"]; !ok {
		return config.Site{}, "", errors.New("sitewatch_sites value: owner: missing")
	} else if err := json.Unmarshal(raw, &owner); err != nil {
		return config.Site{}, "", fmt.Errorf("sitewatch_sites value: owner: want a string, got %s", raw)
	}
	if err := checkOwner(owner); err != nil {
		return config.Site{}, "", fmt.Errorf("sitewatch_sites value: %w", err)
	}
	if key != site.URL {
		return config.Site{}, "", fmt.Errorf("sitewatch_sites value: url %q differs from the record's key %q", site.URL, key)
	}
	return site, owner, nil
}

func checkOwner(owner string) error {
	if owner == OwnerAPI || (strings.HasPrefix(owner, OwnerFilePrefix) && len(owner) > len(OwnerFilePrefix)) {
		return nil
	}
	return fmt.Errorf("owner: %q is neither %q nor %q followed by a path", owner, OwnerAPI, OwnerFilePrefix)
}
