package checker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/idna"
)

// dialError is a failure of the DNS, connect or TLS phase, already worded
// for the result.
type dialError struct {
	kind ErrorKind // KindDNS, KindConnect or KindTLS
	msg  string
	err  error
}

func (e *dialError) Error() string { return e.msg }
func (e *dialError) Unwrap() error { return e.err }

// dialTCP resolves and connects to addr ("host:port", the host already in
// punycode). DNS and connect times go to tr: DNS through the httptrace hooks
// that net.Dialer calls, connect here.
func (c *Checker) dialTCP(ctx context.Context, tr *tracker, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &dialError{kind: KindConnect, msg: "connect: " + err.Error(), err: err}
	}
	if isInvalidName(host) {
		// RFC 6761 reserves .invalid and asks resolvers to answer "no such
		// host" at once, without asking any DNS server.
		if trace := httptrace.ContextClientTrace(ctx); trace != nil {
			trace.DNSStart(httptrace.DNSStartInfo{Host: host})
			trace.DNSDone(httptrace.DNSDoneInfo{Err: errNoSuchHost})
		}
		return nil, &dialError{kind: KindDNS, msg: "dns: no such host " + host, err: errNoSuchHost}
	}
	start := time.Now()
	conn, err := c.dialer.DialContext(ctx, network, addr)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return nil, &dialError{kind: KindDNS, msg: dnsMessage(dnsErr), err: err}
		}
		tr.doneConnect(start)
		return nil, &dialError{kind: KindConnect, msg: connectMessage(err), err: err}
	}
	tr.doneConnect(start)
	return conn, nil
}

// dialTLS connects and completes the TLS handshake under the check's
// context, so that a server stalling the handshake is cut off at the
// timeout like any other phase.
func (c *Checker) dialTLS(ctx context.Context, tr *tracker, network, addr string, t Target) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	cfg := &tls.Config{
		RootCAs:    c.opts.RootCAs,
		ServerName: host,
		NextProtos: []string{"http/1.1"},
	}
	if t.TLS != nil && sameHost(t.URL, host) {
		if err := c.siteTLS(cfg, t.TLS); err != nil {
			return nil, &dialError{kind: KindTLS, msg: "tls: " + err.Error(), err: err}
		}
	}
	conn, err := c.dialTCP(ctx, tr, network, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(conn, cfg)
	start := tr.startTLS()
	err = tc.HandshakeContext(ctx)
	tr.doneTLS(start)
	if err != nil {
		conn.Close()
		return nil, &dialError{kind: KindTLS, msg: tlsMessage(err), err: err}
	}
	tr.sawChain(tc.ConnectionState().PeerCertificates)
	return tc, nil
}

// siteTLS applies a site's own TLS settings to cfg.
func (c *Checker) siteTLS(cfg *tls.Config, s *TLS) error {
	if s.ServerName != "" {
		cfg.ServerName = s.ServerName
	}
	// Verification is skipped on purpose, for this site only; the
	// sites file's loader warns about it.
	cfg.InsecureSkipVerify = s.InsecureSkipVerify
	if len(s.CAPEM) == 0 {
		return nil
	}
	if p, ok := c.pools.Load(string(s.CAPEM)); ok {
		cfg.RootCAs = p.(*x509.CertPool)
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM) {
		return errors.New("the site's CA certificates do not parse")
	}
	c.pools.Store(string(s.CAPEM), pool)
	cfg.RootCAs = pool
	return nil
}

// sameHost reports whether host (from a dial address) is the host of
// rawURL, the site's own URL.
func sameHost(rawURL, host string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if a, err := idna.Lookup.ToASCII(h); err == nil {
		h = a
	}
	return strings.EqualFold(h, host)
}

var errNoSuchHost = errors.New("no such host")

// isInvalidName reports whether host is under the reserved .invalid
// top-level domain.
func isInvalidName(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "invalid" || strings.HasSuffix(host, ".invalid")
}

func dnsMessage(e *net.DNSError) string {
	switch {
	case e.IsNotFound:
		return "dns: no such host " + e.Name
	case e.IsTimeout:
		return "dns: lookup of " + e.Name + " timed out"
	}
	return "dns: " + e.Err + " looking up " + e.Name
}

func connectMessage(err error) string {
	var denied *deniedError
	if errors.As(err, &denied) {
		return "connect: " + denied.Error()
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return "connect: " + errno.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return "connect: " + oe.Err.Error()
	}
	return "connect: " + err.Error()
}

func tlsMessage(err error) string {
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		// "x509: certificate signed by unknown authority" and friends.
		return "tls: " + strings.TrimPrefix(cve.Err.Error(), "x509: ")
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return "tls: server refused the handshake: " + strings.TrimPrefix(oe.Err.Error(), "tls: ")
	}
	if isClosedByPeer(err) {
		return "tls: server closed the connection during the handshake"
	}
	return "tls: " + strings.TrimPrefix(err.Error(), "tls: ")
}

// deniedError is a connect refused by DenyPrivateTargets.
type deniedError struct {
	addr   netip.Addr
	reason string
}

func (e *deniedError) Error() string {
	article := "a"
	if strings.ContainsRune("aeiou", rune(e.reason[0])) {
		article = "an"
	}
	return fmt.Sprintf("%s is %s %s address (deny-private-targets)", e.addr, article, e.reason)
}

// denyPrivateControl runs just before every connect, on the address
// actually dialled, so neither DNS answers nor redirects can reach an
// internal address.
func denyPrivateControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("deny-private-targets: unparsable address %q: %w", address, err)
	}
	if reason := nonPublic(ap.Addr()); reason != "" {
		return &deniedError{addr: ap.Addr().Unmap().WithZone(""), reason: reason}
	}
	return nil
}

// reservedPrefixes are non-public ranges that netip's predicates miss.
var reservedPrefixes = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "reserved (\"this network\")"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved (IETF protocol assignments)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "reserved (documentation)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved (benchmarking)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "reserved (documentation)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "reserved (documentation)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "private (local-use NAT64)"},
	{netip.MustParsePrefix("100::/64"), "reserved (discard-only)"},
	{netip.MustParsePrefix("2001:db8::/32"), "reserved (documentation)"},
	{netip.MustParsePrefix("fec0::/10"), "private (site-local)"},
}

var nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")

// nonPublic returns why a is not a public unicast address, or "" when it
// is one.
func nonPublic(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if nat64Prefix.Contains(a) {
		// The well-known NAT64 prefix embeds an IPv4 address: judge that.
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast"
	}
	for _, r := range reservedPrefixes {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	return ""
}
