package checker

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCheckHugeBodyStopsAtLimit serves an endless 1 GiB body and checks that
// the check reads only up to the limit: it ends with body_too_large, the
// server could push out little more than the limit plus socket buffers, and
// the check allocated a small fraction of the body.
//
// It does not run in parallel so that the allocation count is its own.
func TestCheckHugeBodyStopsAtLimit(t *testing.T) {
	const size = 1 << 30
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1073741824")
		chunk := make([]byte, 64<<10)
		for written.Load() < size {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	// With a regexp the body is buffered, the worst case for memory.
	target := Target{URL: srv.URL, Timeout: 30 * time.Second, Regexp: regexp.MustCompile(`never`)}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res := New(Options{}).Check(t.Context(), target)
	runtime.ReadMemStats(&after)
	checkValid(t, res)

	if string(res.ErrorKind) != string(KindBodyTooLarge) {
		t.Fatalf("error = %s: %s, want body_too_large", string(res.ErrorKind), res.ErrorMessage)
	}
	if res.BodyBytes != DefaultBodyLimit+1 {
		t.Errorf("body bytes = %d, want %d", res.BodyBytes, DefaultBodyLimit+1)
	}
	srv.Close() // waits for the handler, which stops once the connection is gone
	t.Logf("server wrote %.1f MiB, check allocated %.1f MiB", float64(written.Load())/(1<<20), float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	if w := written.Load(); w > 64<<20 {
		t.Errorf("server wrote %d MiB before the check hung up, want a few MiB", w>>20)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("check allocated %d MiB for a 1 GiB body, want a few MiB", alloc>>20)
	}
}

// TestCheckUsesFreshConnections checks that every check opens its own
// connection, so connect times are real and nothing leaks between checks.
func TestCheckUsesFreshConnections(t *testing.T) {
	t.Parallel()
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(text(200, "ok"))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c := New(Options{})
	for i := range 3 {
		res := c.Check(t.Context(), Target{URL: srv.URL})
		checkValid(t, res)
		if !res.Up || res.Connect == nil {
			t.Fatalf("check %d: outcome %s, connect_ms %v", i, outcome(res), res.Connect)
		}
	}
	if n := opened.Load(); n != 3 {
		t.Errorf("server saw %d connections for 3 checks, want 3", n)
	}
}

// TestCheckSendsRequestAsConfigured checks the method, headers, Host
// override and default User-Agent reach the site.
func TestCheckSendsRequestAsConfigured(t *testing.T) {
	t.Parallel()
	type seen struct{ method, host, ua, custom string }
	got := make(chan seen, 1)
	srv := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.Host, r.UserAgent(), r.Header.Get("X-Check")}
	}))

	tests := []struct {
		name   string
		target Target
		opts   Options
		want   seen
	}{
		{"defaults", Target{}, Options{}, seen{"GET", strings.TrimPrefix(srv, "http://"), DefaultUserAgent, ""}},
		{"custom", Target{Method: "HEAD", Headers: map[string]string{"X-Check": "1", "Host": "virtual.example", "User-Agent": "mine"}},
			Options{UserAgent: "unused"}, seen{"HEAD", "virtual.example", "mine", "1"}},
		{"user agent option", Target{}, Options{UserAgent: "probe/2"}, seen{"GET", strings.TrimPrefix(srv, "http://"), "probe/2", ""}},
	}
	for _, tc := range tests {
		tc.target.URL = srv
		res := New(tc.opts).Check(t.Context(), tc.target)
		checkValid(t, res)
		if !res.Up {
			t.Fatalf("%s: down: %s", tc.name, res.ErrorMessage)
		}
		if s := <-got; s != tc.want {
			t.Errorf("%s: server saw %+v, want %+v", tc.name, s, tc.want)
		}
	}
}

// TestCheckIPv6Literal checks a URL with a bracketed IPv6 address.
func TestCheckIPv6Literal(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	srv := httptest.NewUnstartedServer(text(200, "six"))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)

	url := "http://[::1]:" + portOf(t, l.Addr()) + "/"
	res := New(Options{}).Check(t.Context(), Target{URL: url})
	checkValid(t, res)
	if !res.Up || res.BodyBytes != 3 {
		t.Fatalf("outcome %s (%s), %d body bytes", outcome(res), res.ErrorMessage, res.BodyBytes)
	}
	if res.DNS != nil {
		t.Errorf("dns_ms = %v for an IP literal, want null", *res.DNS)
	}

	res = New(Options{DenyPrivateTargets: true}).Check(t.Context(), Target{URL: url})
	if want := "connect: ::1 is a loopback address (deny-private-targets)"; res.ErrorMessage != want {
		t.Errorf("with deny-private-targets: %q, want %q", res.ErrorMessage, want)
	}
}

// TestCheckIDNHost checks that an internationalised host name is looked up,
// sent in the Host header and verified against the certificate in its
// punycode form.
func TestCheckIDNHost(t *testing.T) {
	t.Parallel()
	hosts := make(chan string, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hosts <- r.Host })
	dns := newFakeDNS()
	c := New(Options{RootCAs: theCA().pool, Resolver: dns.resolver()})

	for _, base := range []string{httpServer(t, h), validTLSServer(t, h)} {
		port := base[strings.LastIndex(base, ":")+1:]
		scheme := base[:strings.Index(base, ":")]
		url := scheme + "://bücher.test:" + port + "/"
		res := c.Check(t.Context(), Target{URL: url})
		checkValid(t, res)
		if !res.Up {
			t.Fatalf("%s: down: %s", url, res.ErrorMessage)
		}
		if res.URL != url {
			t.Errorf("result url = %q, want the target's %q", res.URL, url)
		}
		if got, want := <-hosts, "xn--bcher-kva.test:"+port; got != want {
			t.Errorf("%s: Host header %q, want %q", url, got, want)
		}
		if res.DNS == nil {
			t.Errorf("%s: dns_ms is null for a host name", url)
		}
	}
	if !dns.asked("xn--bcher-kva.test") {
		t.Errorf("DNS was not asked for xn--bcher-kva.test, queries: %v", dns.queries)
	}
}

// TestCheckCallerContext checks what happens when the caller, not the
// target's timeout, ends a check.
func TestCheckCallerContext(t *testing.T) {
	t.Parallel()
	url := httpServer(t, http.HandlerFunc(slowHeader))
	c := New(Options{})

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		res := c.Check(ctx, Target{URL: url, Timeout: time.Minute})
		checkValid(t, res)
		want := "check canceled while waiting for first byte: context canceled"
		if string(res.ErrorKind) != string(KindOther) || res.ErrorMessage != want {
			t.Errorf("got %s: %q, want other: %q", string(res.ErrorKind), res.ErrorMessage, want)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		res := c.Check(ctx, Target{URL: url, Timeout: time.Minute})
		checkValid(t, res)
		if string(res.ErrorKind) != string(KindTimeout) || !strings.HasSuffix(res.ErrorMessage, "while waiting for first byte (deadline set by the caller)") {
			t.Errorf("got %s: %q, want a timeout set by the caller", string(res.ErrorKind), res.ErrorMessage)
		}
	})
}

// TestCheckConcurrent runs many checks on one Checker at once, for the race
// detector and to show that a hung site does not hold up the others.
func TestCheckConcurrent(t *testing.T) {
	t.Parallel()
	fast := httpServer(t, text(200, "ok"))
	slow := httpServer(t, http.HandlerFunc(slowHeader))
	c := New(Options{})
	var wg sync.WaitGroup
	results := make([]Result, 20)
	for i := range results {
		wg.Go(func() {
			url := fast
			if i%2 == 1 {
				url = slow
			}
			results[i] = c.Check(t.Context(), Target{URL: url, Timeout: 300 * time.Millisecond})
		})
	}
	wg.Wait()
	for i, res := range results {
		checkValid(t, res)
		want := "up"
		if i%2 == 1 {
			want = "down"
		}
		if outcome(res) != want {
			t.Errorf("check %d: outcome %s (%s), want %s", i, outcome(res), res.ErrorMessage, want)
		}
	}
}

func TestNonPublic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr, want string
	}{
		{"127.0.0.1", "loopback"},
		{"127.9.9.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"192.168.1.1", "private"},
		{"fd00::1", "private"},
		{"169.254.169.254", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", `reserved ("this network")`},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"198.18.0.1", "reserved (benchmarking)"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"64:ff9b::a00:1", "private"}, // NAT64 of 10.0.0.1
		{"2001:db8::1", "reserved (documentation)"},
		{"93.184.215.14", ""},
		{"8.8.8.8", ""},
		{"2606:4700:4700::1111", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"172.32.0.1", ""},
	}
	for _, tc := range tests {
		if got := nonPublic(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("nonPublic(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func portOf(t *testing.T, a net.Addr) string {
	t.Helper()
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestCheckLargerThanItsBuffers: a check's connection buffers are small
// (writeBufferSize, readBufferSize); a request header, a response header
// line and a body each several times larger still go through whole.
func TestCheckLargerThanItsBuffers(t *testing.T) {
	t.Parallel()
	reqValue := strings.Repeat("q", 4*writeBufferSize)
	cookie := strings.Repeat("c", 5*readBufferSize)
	body := strings.Repeat("b", 30*readBufferSize) + "the end"
	got := make(chan string, 1)
	srv := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("X-Long")
		w.Header().Set("Set-Cookie", "k="+cookie)
		io.WriteString(w, body)
	}))
	res := New(Options{}).Check(t.Context(), Target{URL: srv, Headers: map[string]string{"X-Long": reqValue}, Regexp: regexp.MustCompile(`b{1000}the end$`)})
	checkValid(t, res)
	if !res.Up {
		t.Fatalf("down: %s", res.ErrorMessage)
	}
	if res.BodyBytes != int64(len(body)) {
		t.Errorf("body %d bytes, want %d", res.BodyBytes, len(body))
	}
	if v := <-got; v != reqValue {
		t.Errorf("server got a %d-byte header, want %d bytes", len(v), len(reqValue))
	}
}
