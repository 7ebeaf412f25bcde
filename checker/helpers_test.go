package checker

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// testCA is a certificate authority that the test checkers trust, so that
// TLS tests fail only for the reason they are about.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var theCA = sync.OnceValue(func() *testCA { return newTestCA("sitewatch test CA") })

// newTestCA makes a CA valid for a day around now.
func newTestCA(name string) *testCA {
	key := mustKey()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func mustKey() *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return key
}

// leaf issues a server certificate valid from notBefore to notAfter for the
// given names and, when ips is true, for 127.0.0.1 and ::1.
func (ca *testCA) leaf(t *testing.T, names []string, ips bool, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key := mustKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "sitewatch test server"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
	}
	if ips {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("create leaf certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// quietLog drops the handshake errors that TLS failure tests provoke.
var quietLog = log.New(io.Discard, "", 0)

// httpServer starts a plain HTTP test server and returns its URL.
func httpServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// tlsServer starts an HTTPS test server presenting cert and returns its URL.
func tlsServer(t *testing.T, h http.Handler, cert tls.Certificate) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = quietLog
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// validTLSServer starts an HTTPS test server with a certificate from the
// test CA for 127.0.0.1, ::1 and the fake DNS names.
func validTLSServer(t *testing.T, h http.Handler) string {
	t.Helper()
	cert := theCA().leaf(t, []string{"localhost", "xn--bcher-kva.test"}, true, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	return tlsServer(t, h, cert)
}

// rawServer runs handle on every TCP connection to a local listener, for
// servers that misbehave below HTTP. It returns host:port.
func rawServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	return l.Addr().String()
}

// readRequest consumes one request so that closing the connection
// afterwards sends a FIN, not a reset.
func readRequest(c net.Conn) *bufio.Reader {
	br := bufio.NewReader(c)
	if req, err := http.ReadRequest(br); err == nil {
		req.Body.Close()
	}
	return br
}

// waitForClose blocks until the client hangs up.
func waitForClose(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// fakeDNS is a DNS server behind a net.Resolver, so tests can use host
// names (IDN ones included) without real DNS.
type fakeDNS struct {
	hosts map[string]netip.Addr // A records, by lower-case name without the final dot
	hang  map[string]bool       // names whose queries are never answered

	mu      sync.Mutex
	queries []string
}

func newFakeDNS() *fakeDNS {
	lo := netip.MustParseAddr("127.0.0.1")
	return &fakeDNS{
		hosts: map[string]netip.Addr{
			"xn--bcher-kva.test": lo,
			"internal.test":      lo,
			"wrong.test":         lo,
			"localhost.test":     lo,
		},
		hang: map[string]bool{"hang.test": true},
	}
}

func (f *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(_ context.Context, _, _ string) (net.Conn, error) {
			client, server := net.Pipe()
			go f.serve(server)
			return client, nil
		},
	}
}

// asked reports whether name was queried.
func (f *fakeDNS) asked(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.queries {
		if q == name {
			return true
		}
	}
	return false
}

// serve answers one query on a stream connection (2-byte length prefix),
// which is how the Go resolver talks over a non-packet net.Conn.
func (f *fakeDNS) serve(c net.Conn) {
	defer c.Close()
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return
	}
	msg := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(c, msg); err != nil {
		return
	}
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return
	}
	q, err := p.Question()
	if err != nil {
		return
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	f.mu.Lock()
	f.queries = append(f.queries, name)
	f.mu.Unlock()
	if f.hang[name] {
		waitForClose(c)
		return
	}
	addr, ok := f.hosts[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true}
	if !ok {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	if ok && q.Type == dnsmessage.TypeA {
		_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: addr.As4()})
	}
	out, err := b.Finish()
	if err != nil {
		return
	}
	binary.BigEndian.PutUint16(n[:], uint16(len(out)))
	_, _ = c.Write(append(n[:], out...))
}

// checkValid asserts that res is a result the contract can carry: its
// fields agree with each other.
func checkValid(t *testing.T, res Result) {
	t.Helper()
	if res.CheckedAt.Location() != time.UTC {
		t.Errorf("checked_at %v is not UTC", res.CheckedAt)
	}
	if res.Up != (res.ErrorMessage == "") || res.Up != (res.ErrorKind == KindNone) {
		t.Errorf("up %v with error %q: %q", res.Up, res.ErrorKind, res.ErrorMessage)
	}
	if !res.Up && !slices.Contains(Kinds, res.ErrorKind) {
		t.Errorf("error kind %q is not one of the contract's", res.ErrorKind)
	}
	if res.StatusCode == 0 && (res.ResponseTime != nil || res.Transfer != nil) {
		t.Errorf("no response but response time/transfer set")
	}
	if res.StatusCode != 0 && res.ResponseTime == nil {
		t.Errorf("status %d but no response time", res.StatusCode)
	}
}

// outcome is "up" or "down", as the contract names it.
func outcome(res Result) string {
	if res.Up {
		return "up"
	}
	return "down"
}
