package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// TLS is a site's own TLS settings, for a site behind a private CA, with a
// certificate for another name, or with a self-signed certificate.
type TLS struct {
	// CAFile is the ca_file as written; relative paths are relative to
	// the sites file's directory.
	CAFile string
	// CAPEM is that file's content, read and checked at load: PEM
	// certificates that verify the site instead of the system roots. The
	// check request carries it, so every emitter can check the site
	// without the file.
	CAPEM []byte
	// ServerName is the name sent in SNI and verified in the certificate
	// instead of the URL's host.
	ServerName string
	// InsecureSkipVerify accepts any certificate. The handshake still
	// happens (and is timed); only the verification is skipped.
	InsecureSkipVerify bool
}

var (
	tlsFields = []string{"ca_file", "server_name", "insecure_skip_verify"}
	// A site written as JSON (the sites API, the sites registry) carries
	// its CA certificates themselves: the file named by a ca_file would be
	// read on the machine decoding the site, not the one that wrote it.
	tlsJSONFields = []string{"ca_pem", "server_name", "insecure_skip_verify"}
)

// tls validates a site's tls: mapping.
func (p *parser) tls(n *yaml.Node, at siteRef) *TLS {
	if n.Kind != yaml.MappingNode {
		p.failf(n, at, "tls", "want a mapping with ca_file, server_name or insecure_skip_verify, got %s", describe(n))
		return nil
	}
	t := &TLS{}
	var caNode *yaml.Node
	known := tlsFields
	if p.json {
		known = tlsJSONFields
	}
	for _, f := range p.fields(n, at, "tls.", known) {
		switch f.name {
		case "ca_pem":
			v, ok := p.scalar(f.val, at, "tls.ca_pem", "the PEM text of the CA certificates")
			if !ok {
				continue
			}
			caNode = f.val
			if p.checkPEM(f.val, at, "tls.ca_pem", "the value", []byte(v)) {
				t.CAPEM = []byte(v)
			}
		case "ca_file":
			v, ok := p.scalar(f.val, at, "tls.ca_file", "the path of a PEM file with the CA certificates")
			if !ok {
				continue
			}
			caNode, t.CAFile = f.val, v
			t.CAPEM = p.caFile(f.val, at, v)
		case "server_name":
			v, ok := p.scalar(f.val, at, "tls.server_name", "a host name")
			if !ok {
				continue
			}
			if v == "" || strings.ContainsAny(v, " /:\t") {
				p.failf(f.val, at, "tls.server_name", "%q is not a host name (no scheme, port or path)", v)
				continue
			}
			t.ServerName = v
		case "insecure_skip_verify":
			if f.val.Kind != yaml.ScalarNode || f.val.ShortTag() != "!!bool" {
				p.failf(f.val, at, "tls.insecure_skip_verify", "want true or false, got %s", describe(f.val))
				continue
			}
			t.InsecureSkipVerify = f.val.Value == "true"
		}
	}
	if t.InsecureSkipVerify && caNode != nil {
		p.failf(caNode, at, "tls."+caField(p.json), "has no use with insecure_skip_verify: true, which accepts any certificate; remove one of them")
	}
	return t
}

// caFile reads and checks a ca_file: it must exist and hold at least one
// PEM certificate that parses.
func (p *parser) caFile(n *yaml.Node, at siteRef, path string) []byte {
	if path == "" {
		p.failf(n, at, "tls.ca_file", "empty; want the path of a PEM file with the CA certificates")
		return nil
	}
	full := path
	if !filepath.IsAbs(full) {
		full = filepath.Join(filepath.Dir(p.file), path)
	}
	data, err := os.ReadFile(full)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			p.failf(n, at, "tls.ca_file", "%s does not exist", full)
		default:
			p.failf(n, at, "tls.ca_file", "cannot read %s: %v", full, unwrapPathError(err))
		}
		return nil
	}
	if !p.checkPEM(n, at, "tls.ca_file", full, data) {
		return nil
	}
	return data
}

func caField(json bool) string {
	if json {
		return "ca_pem"
	}
	return "ca_file"
}

// checkPEM reports whether data (what names it in messages) holds at least
// one PEM certificate and every certificate in it parses.
func (p *parser) checkPEM(n *yaml.Node, at siteRef, field, what string, data []byte) bool {
	certs := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			p.failf(n, at, field, "%s: a certificate does not parse: %v", what, err)
			return false
		}
		certs++
	}
	if certs == 0 {
		p.failf(n, at, field, "%s has no PEM certificate (want -----BEGIN CERTIFICATE-----)", what)
		return false
	}
	return true
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
