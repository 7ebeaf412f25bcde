package checker

import (
	"context"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"
)

// privateCA is a CA the checker does not trust, as a company's internal
// CA is unknown to the system roots, and its certificate in PEM.
func privateCA() (*testCA, []byte) {
	ca := newTestCA("private CA")
	return ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// TestSiteTLS: a site behind a private CA, with a certificate for another
// name than the URL's host, is down with "unknown authority" by default and
// up with its own tls settings; insecure_skip_verify accepts it too. Every
// check that reached the handshake records the TLS phase.
func TestSiteTLS(t *testing.T) {
	t.Parallel()
	ca, caPEM := privateCA()
	// Valid for internal.test only, not for the localhost of the URL.
	cert := ca.leaf(t, []string{"internal.test"}, false, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	url := strings.Replace(tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }), cert),
		"127.0.0.1", "localhost", 1) + "/"
	_, otherPEM := privateCA()

	for _, tc := range []struct {
		name string
		tls  *TLS
		kind ErrorKind // "" for up
		msg  string
	}{
		{"no settings", nil, KindTLS, "tls: "},
		{"server name without ca", &TLS{ServerName: "internal.test"}, KindTLS, "tls: certificate signed by unknown authority"},
		{"ca and server name", &TLS{CAPEM: caPEM, ServerName: "internal.test"}, "", ""},
		{"ca without server name", &TLS{CAPEM: caPEM}, KindTLS, "tls: certificate is valid for internal.test, not localhost"},
		{"another ca", &TLS{CAPEM: otherPEM, ServerName: "internal.test"}, KindTLS, "tls: certificate signed by unknown authority"},
		{"insecure", &TLS{InsecureSkipVerify: true}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The checker trusts only its own test CA, as it would trust
			// the system roots.
			c := New(Options{RootCAs: theCA().pool})
			res := c.Check(context.Background(), Target{URL: url, Timeout: 5 * time.Second, TLS: tc.tls})
			kind, msg := res.ErrorKind, res.ErrorMessage
			if kind != tc.kind || !strings.HasPrefix(msg, tc.msg) {
				t.Errorf("kind %q message %q, want kind %q message %q", kind, msg, tc.kind, tc.msg)
			}
			if res.TLS == nil {
				t.Error("no TLS phase recorded")
			}
			if tc.kind == "" && (!res.Up || res.StatusCode != 200) {
				t.Errorf("up %v status %d, want up 200", res.Up, res.StatusCode)
			}
		})
	}
}
