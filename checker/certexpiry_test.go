package checker

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTLSNotAfter checks what the alerts' certificate expiry relies on: an
// HTTPS check records the earliest NotAfter of the presented chain, and a
// check without a finished handshake records none.
func TestTLSNotAfter(t *testing.T) {
	t.Parallel()
	ok := text(200, "hello")
	in3Days := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	in10Days := time.Now().Add(240 * time.Hour).Truncate(time.Second)
	leaf := func(t *testing.T, notAfter time.Time) func(*testing.T) string {
		return func(t *testing.T) string {
			return tlsServer(t, ok, theCA().leaf(t, nil, true, time.Now().Add(-time.Hour), notAfter))
		}
	}
	tests := []struct {
		name string
		site func(*testing.T) string
		want *time.Time // nil: no tls_not_after
	}{
		{name: "leaf expiring in 3 days", site: leaf(t, in3Days), want: &in3Days},
		{
			// The test CA expires in 24h: served along with a leaf that
			// lasts longer, it is the chain's earliest expiry.
			name: "intermediate expires first",
			site: func(t *testing.T) string {
				cert := theCA().leaf(t, nil, true, time.Now().Add(-time.Hour), in10Days)
				cert.Certificate = append(cert.Certificate, theCA().cert.Raw)
				return tlsServer(t, ok, cert)
			},
			want: &theCA().cert.NotAfter,
		},
		{name: "plain http", site: func(t *testing.T) string { return httpServer(t, ok) }},
		{
			name: "handshake failed",
			site: leaf(t, time.Now().Add(-time.Minute)),
		},
		{
			name: "https redirecting to http keeps the https certificate",
			site: func(t *testing.T) string {
				plain := httpServer(t, ok)
				return tlsServer(t, http.RedirectHandler(plain, http.StatusFound), theCA().leaf(t, nil, true, time.Now().Add(-time.Hour), in3Days))
			},
			want: &in3Days,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := tc.site(t)
			c := New(Options{RootCAs: theCA().pool})
			res := c.Check(context.Background(), Target{URL: u, Timeout: 5 * time.Second})
			checkValid(t, res)
			switch {
			case tc.want == nil && res.TLSNotAfter != nil:
				t.Errorf("tls_not_after = %v, want none", res.TLSNotAfter)
			case tc.want != nil && res.TLSNotAfter == nil:
				t.Errorf("no tls_not_after, want %v (up %v: %s)", tc.want, res.Up, res.ErrorMessage)
			case tc.want != nil && !res.TLSNotAfter.Equal(*tc.want):
				t.Errorf("tls_not_after = %v, want %v", res.TLSNotAfter, tc.want)
			}
			if res.TLSNotAfter != nil && res.TLSNotAfter.Location() != time.UTC {
				t.Errorf("tls_not_after %v not in UTC", res.TLSNotAfter)
			}
			if strings.HasPrefix(u, "https") && tc.want != nil && !res.Up {
				t.Errorf("down: %s", res.ErrorMessage)
			}
		})
	}
}
