package checker

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// site is one test target: it starts whatever server the case needs and
// returns the URL to check.
type site func(t *testing.T) string

func serve(h http.HandlerFunc) site {
	return func(t *testing.T) string { return httpServer(t, h) }
}

func serveTLS(h http.HandlerFunc) site {
	return func(t *testing.T) string { return validTLSServer(t, h) }
}

func serveRaw(scheme string, handle func(c net.Conn)) site {
	return func(t *testing.T) string { return scheme + "://" + rawServer(t, handle) }
}

func fixed(url string) site { return func(*testing.T) string { return url } }

// onFakeHost checks name:port where port is that of the server s starts;
// the fake DNS resolves name to 127.0.0.1.
func onFakeHost(name string, s site) site {
	return func(t *testing.T) string {
		u := s(t)
		i := strings.LastIndex(u, ":")
		scheme := u[:strings.Index(u, "://")]
		return scheme + "://" + name + u[i:]
	}
}

func text(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// redirects serves /chain/N, which redirects N times before answering 200,
// /loop, which redirects to itself forever, and /ftp.
func redirects(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/loop":
		http.Redirect(w, r, "/loop", http.StatusFound)
	case r.URL.Path == "/ftp":
		http.Redirect(w, r, "ftp://example.com/file", http.StatusMovedPermanently)
	case strings.HasPrefix(r.URL.Path, "/chain/"):
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/chain/"))
		if n == 0 {
			io.WriteString(w, "arrived")
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/chain/%d", n-1), http.StatusFound)
	default:
		http.NotFound(w, r)
	}
}

// slowHeader answers only after the client has gone.
func slowHeader(w http.ResponseWriter, r *http.Request) {
	<-r.Context().Done()
}

// slowloris sends headers at once and then one body byte every 50 ms,
// forever: no read ever waits long, only the overall timeout can end it.
func slowloris(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	for {
		if _, err := w.Write([]byte("a")); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func gzipped(body []byte) http.HandlerFunc {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(body)
	zw.Close()
	compressed := buf.Bytes()
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			http.Error(w, "gzip only", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(compressed)
	}
}

func TestCheck(t *testing.T) {
	fakeDNS := newFakeDNS()
	base := Options{RootCAs: theCA().pool, Resolver: fakeDNS.resolver()}
	nonUTF8 := "\xff\xfe<html>Pr\xefis: 5\xa4 \x80\x81 Price: 42</html>\xc3"
	redos := strings.Repeat("a", 100_000) + "b"
	short := 500 * time.Millisecond

	tests := []struct {
		name   string
		site   site
		path   string
		opts   func(*Options)
		target Target // URL comes from site and path

		kind string // "" for up
		// msg must match the whole error message.
		msg    string
		status int
		// timings lists the timings that must be present; the others must
		// be null.
		timings   string
		bodyBytes int64 // checked when not -1
		matched   string
	}{
		{
			name: "up", site: serve(text(200, "hello")),
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 5,
		},
		{
			name: "up over https", site: serveTLS(text(200, "hello")),
			status: 200, timings: "connect tls ttfb transfer response", bodyBytes: 5,
		},
		{
			name: "up with HEAD", site: serve(text(200, "hello")), target: Target{Method: http.MethodHead},
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 0,
		},
		{
			name: "3xx without Location is up by default", site: serve(text(http.StatusNotModified, "")),
			status: 304, timings: "connect ttfb transfer response", bodyBytes: 0,
		},
		{
			name: "wrong status", site: serve(text(503, "down for maintenance")),
			kind: string(KindStatus), msg: "status 503, expected 2xx or 3xx",
			status: 503, timings: "connect ttfb transfer response", bodyBytes: 20,
		},
		{
			name: "status outside an explicit list", site: serve(text(201, "")), target: Target{ExpectStatus: []int{200, 204}},
			kind: string(KindStatus), msg: "status 201, expected 200 or 204",
			status: 201, timings: "connect ttfb transfer response", bodyBytes: 0,
		},
		{
			name: "expected 404", site: serve(text(404, "gone")), target: Target{ExpectStatus: []int{404}},
			status: 404, timings: "connect ttfb transfer response", bodyBytes: 4,
		},
		{
			name: "regexp matches", site: serve(text(200, "<h1>Example   Domain</h1>")), target: Target{Regexp: regexp.MustCompile(`Example\s+Domain`)},
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 25, matched: "true",
		},
		{
			name: "regexp does not match", site: serve(text(200, "<h1>Something else</h1>")), target: Target{Regexp: regexp.MustCompile(`Example Domain`)},
			kind: string(KindRegexp), msg: `body does not match regexp "Example Domain"`,
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 23, matched: "false",
		},
		{
			name: "regexp on a non-UTF-8 body", site: serve(text(200, nonUTF8)), target: Target{Regexp: regexp.MustCompile(`Price: \d+`)},
			status: 200, timings: "connect ttfb transfer response", bodyBytes: int64(len(nonUTF8)), matched: "true",
		},
		{
			name: "catastrophic-backtracking regexp is linear in RE2", site: serve(text(200, redos)), target: Target{Regexp: regexp.MustCompile(`(a+)+$`)},
			kind: string(KindRegexp), msg: regexp.QuoteMeta(`body does not match regexp "(a+)+$"`),
			status: 200, timings: "connect ttfb transfer response", bodyBytes: int64(len(redos)), matched: "false",
		},
		{
			name: "gzip body is matched decompressed", site: serve(gzipped([]byte("plain text inside gzip"))), target: Target{Regexp: regexp.MustCompile(`text inside`)},
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 22, matched: "true",
		},
		{
			name: "slow header", site: serve(slowHeader), target: Target{Timeout: short},
			kind: string(KindTimeout), msg: "timeout after 500ms while waiting for first byte",
			timings: "connect", bodyBytes: 0,
		},
		{
			name: "headers stall", target: Target{Timeout: short},
			site: serveRaw("http", func(c net.Conn) {
				readRequest(c)
				io.WriteString(c, "HTTP/1.1 200 OK\r\n")
				waitForClose(c)
			}),
			kind: string(KindTimeout), msg: "timeout after 500ms while reading headers",
			timings: "connect ttfb", bodyBytes: 0,
		},
		{
			name: "slowloris body", site: serve(slowloris), target: Target{Timeout: short, Regexp: regexp.MustCompile("b")},
			kind: string(KindTimeout), msg: "timeout after 500ms while reading body",
			status: 200, timings: "connect ttfb transfer response", bodyBytes: -1, matched: "null",
		},
		{
			name: "tls handshake stall", site: serveRaw("https", waitForClose), target: Target{Timeout: short},
			kind: string(KindTimeout), msg: "timeout after 500ms during tls handshake",
			timings: "connect", bodyBytes: 0,
		},
		{
			name: "dns stall", site: fixed("http://hang.test/"), target: Target{Timeout: 200 * time.Millisecond},
			kind: string(KindTimeout), msg: "timeout after 200ms during dns lookup",
			timings: "", bodyBytes: 0,
		},
		{
			name: "connection refused", site: func(t *testing.T) string {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				l.Close()
				return "http://" + l.Addr().String() + "/"
			},
			kind: string(KindConnect), msg: "connect: connection refused",
			timings: "connect", bodyBytes: 0,
		},
		{
			name: "self-signed certificate",
			site: func(t *testing.T) string {
				srv := httptest.NewUnstartedServer(text(200, "hello"))
				srv.Config.ErrorLog = quietLog
				srv.StartTLS()
				t.Cleanup(srv.Close)
				return srv.URL
			},
			kind: string(KindTLS), msg: "tls: certificate signed by unknown authority",
			timings: "connect tls", bodyBytes: 0,
		},
		{
			name: "expired certificate",
			site: func(t *testing.T) string {
				cert := theCA().leaf(t, nil, true, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
				return tlsServer(t, text(200, "hello"), cert)
			},
			kind: string(KindTLS), msg: `tls: certificate has expired or is not yet valid: current time \S+ is after \S+`,
			timings: "connect tls", bodyBytes: 0,
		},
		{
			name: "certificate for another host",
			site: onFakeHost("wrong.test", func(t *testing.T) string {
				cert := theCA().leaf(t, []string{"other.example"}, false, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
				return tlsServer(t, text(200, "hello"), cert)
			}),
			kind: string(KindTLS), msg: "tls: certificate is valid for other.example, not wrong.test",
			timings: "dns connect tls", bodyBytes: 0,
		},
		{
			name: "https to a plain http server", site: func(t *testing.T) string {
				return strings.Replace(httpServer(t, text(200, "hello")), "http://", "https://", 1)
			},
			kind: string(KindTLS), msg: "tls: first record does not look like a TLS handshake",
			timings: "connect tls", bodyBytes: 0,
		},
		{
			name: "redirect loop", site: serve(redirects), path: "/loop",
			kind: string(KindRedirects), msg: `too many redirects: stopped after 10, next was http://127\.0\.0\.1:\d+/loop`,
			status: 302, timings: "connect ttfb response", bodyBytes: 0,
		},
		{
			name: "ten redirects are followed", site: serve(redirects), path: "/chain/10",
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 7,
		},
		{
			name: "eleven redirects are too many", site: serve(redirects), path: "/chain/11",
			kind: string(KindRedirects), msg: `too many redirects: stopped after 10, next was http://127\.0\.0\.1:\d+/chain/0`,
			status: 302, timings: "connect ttfb response", bodyBytes: 0,
		},
		{
			name: "redirects not followed when disabled", site: serve(redirects), path: "/chain/1", opts: func(o *Options) { o.MaxRedirects = -1 },
			status: 302, timings: "connect ttfb transfer response", bodyBytes: -1,
		},
		{
			name: "redirect to ftp", site: serve(redirects), path: "/ftp",
			kind: string(KindRedirects), msg: regexp.QuoteMeta(`redirect to unsupported scheme "ftp": ftp://example.com/file`),
			status: 301, timings: "connect ttfb response", bodyBytes: 0,
		},
		{
			name: "body over the default limit", site: serve(text(200, strings.Repeat("x", 2<<20))),
			kind: string(KindBodyTooLarge), msg: "body larger than the 1 MiB limit",
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 1<<20 + 1,
		},
		{
			name: "body one byte over a custom limit", site: serve(text(200, strings.Repeat("x", 1020)+"TAIL!")), opts: func(o *Options) { o.BodyLimit = 1024 },
			// The regexp sees the first 1024 bytes: it ends in TAIL, not "!".
			target: Target{Regexp: regexp.MustCompile(`TAIL$`)},
			kind:   string(KindBodyTooLarge), msg: "body larger than the 1 KiB limit",
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 1025, matched: "true",
		},
		{
			name: "body exactly at a custom limit", site: serve(text(200, strings.Repeat("x", 1024))), opts: func(o *Options) { o.BodyLimit = 1024 },
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 1024,
		},
		{
			name: "gzip bomb stops at the limit", site: serve(gzipped(make([]byte, 8<<20))),
			kind: string(KindBodyTooLarge), msg: "body larger than the 1 MiB limit",
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 1<<20 + 1,
		},
		{
			name: "dns failure under .invalid", site: fixed("http://nope.invalid/"),
			kind: string(KindDNS), msg: `dns: no such host nope\.invalid`,
			timings: "dns", bodyBytes: 0,
		},
		{
			name: "dns name not found", site: fixed("https://missing.test/"),
			kind: string(KindDNS), msg: `dns: no such host missing\.test`,
			timings: "dns", bodyBytes: 0,
		},
		{
			name: "server closes before answering",
			site: serveRaw("http", func(c net.Conn) { readRequest(c) }),
			kind: string(KindOther), msg: "server closed the connection while waiting for first byte",
			timings: "connect", bodyBytes: 0,
		},
		{
			name: "server closes mid-header",
			site: serveRaw("http", func(c net.Conn) {
				readRequest(c)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
			}),
			kind: string(KindOther), msg: "server closed the connection while reading headers",
			timings: "connect ttfb", bodyBytes: 0,
		},
		{
			name: "server closes mid-body",
			site: serveRaw("http", func(c net.Conn) {
				readRequest(c)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
			}),
			kind: string(KindOther), msg: "server closed the connection while reading body",
			status: 200, timings: "connect ttfb transfer response", bodyBytes: 5,
		},
		{
			name: "malformed response",
			site: serveRaw("http", func(c net.Conn) {
				readRequest(c)
				io.WriteString(c, "garbage\r\n\r\n")
			}),
			kind: string(KindOther), msg: `malformed HTTP response "garbage"`,
			timings: "connect ttfb", bodyBytes: 0,
		},
		{
			name: "endless response headers",
			site: serveRaw("http", func(c net.Conn) {
				readRequest(c)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: ")
				chunk := bytes.Repeat([]byte("a"), 64<<10)
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}),
			kind: string(KindOther), msg: `server response headers exceeded 262144 bytes; aborted`,
			timings: "connect ttfb", bodyBytes: 0,
		},
		{
			name: "private target denied", site: serve(func(w http.ResponseWriter, _ *http.Request) { panic("denied target was reached") }),
			opts: func(o *Options) { o.DenyPrivateTargets = true },
			kind: string(KindConnect), msg: regexp.QuoteMeta("connect: 127.0.0.1 is a loopback address (deny-private-targets)"),
			timings: "connect", bodyBytes: 0,
		},
		{
			name: "private target behind a DNS name denied", site: onFakeHost("internal.test", serve(func(w http.ResponseWriter, _ *http.Request) { panic("denied target was reached") })),
			opts: func(o *Options) { o.DenyPrivateTargets = true },
			kind: string(KindConnect), msg: regexp.QuoteMeta("connect: 127.0.0.1 is a loopback address (deny-private-targets)"),
			timings: "dns connect", bodyBytes: 0,
		},
		{
			name: "unsupported scheme", site: fixed("ftp://example.com/"),
			kind: string(KindOther), msg: regexp.QuoteMeta(`invalid url: scheme "ftp" is not http or https`),
			timings: "", bodyBytes: 0,
		},
		{
			name: "url without host", site: fixed("http:///path"),
			kind: string(KindOther), msg: "invalid url: no host",
			timings: "", bodyBytes: 0,
		},
		{
			name: "unparsable url", site: fixed("http://[::1/"),
			kind: string(KindOther), msg: `invalid url: not a valid URL: missing '\]' in host`,
			timings: "", bodyBytes: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := base
			if tc.opts != nil {
				tc.opts(&opts)
			}
			target := tc.target
			target.URL = tc.site(t) + tc.path
			before := time.Now()
			res := New(opts).Check(t.Context(), target)
			after := time.Now()
			checkValid(t, res)
			t.Logf("%s %d %s: %s", outcome(res), res.StatusCode, string(res.ErrorKind), res.ErrorMessage)

			if res.URL != target.URL {
				t.Errorf("url = %q, want %q", res.URL, target.URL)
			}
			if res.CheckedAt.Before(before) || res.CheckedAt.After(after) {
				t.Errorf("checked_at %v outside the check [%v, %v]", res.CheckedAt, before, after)
			}
			wantOutcome := "down"
			if tc.kind == "" {
				wantOutcome = "up"
			}
			if outcome(res) != wantOutcome {
				t.Errorf("outcome = %s, want %s (error %s: %s)", outcome(res), wantOutcome, string(res.ErrorKind), res.ErrorMessage)
			}
			if string(res.ErrorKind) != tc.kind {
				t.Errorf("error kind = %q, want %q (message %q)", string(res.ErrorKind), tc.kind, res.ErrorMessage)
			}
			if tc.kind != "" && !regexp.MustCompile("^(?:"+tc.msg+")$").MatchString(res.ErrorMessage) {
				t.Errorf("error message = %q, want to match %q", res.ErrorMessage, tc.msg)
			}
			if res.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", res.StatusCode, tc.status)
			}
			if tc.bodyBytes != -1 && res.BodyBytes != tc.bodyBytes {
				t.Errorf("body bytes = %d, want %d", res.BodyBytes, tc.bodyBytes)
			}
			checkTimings(t, res, tc.timings)
			if tc.target.Regexp == nil {
				if res.RegexpMatched != nil {
					t.Errorf("regexp matched = %v without a regexp", *res.RegexpMatched)
				}
			} else if got := fmtBool(res.RegexpMatched); got != tc.matched {
				t.Errorf("regexp matched = %s, want %s", got, tc.matched)
			}
		})
	}
}

// checkTimings asserts that exactly the named timings are present, and that
// the phases fit within the response time.
func checkTimings(t *testing.T, res Result, want string) {
	t.Helper()
	fields := map[string]*time.Duration{
		"dns": res.DNS, "connect": res.Connect, "tls": res.TLS,
		"ttfb": res.TTFB, "transfer": res.Transfer, "response": res.ResponseTime,
	}
	wantSet := map[string]bool{}
	for _, name := range strings.Fields(want) {
		if _, ok := fields[name]; !ok {
			t.Fatalf("unknown timing %q", name)
		}
		wantSet[name] = true
	}
	var sum time.Duration
	for name, v := range fields {
		switch {
		case wantSet[name] && v == nil:
			t.Errorf("%s timing is null, want a value", name)
		case !wantSet[name] && v != nil:
			t.Errorf("%s timing = %v, want null", name, *v)
		}
		if v != nil && name != "response" {
			sum += *v
		}
	}
	// The phases are disjoint slices of the check, so they cannot add up
	// to more than the whole response time.
	if res.ResponseTime != nil && sum > *res.ResponseTime {
		t.Errorf("phases add up to %v, more than the response time %v", sum, *res.ResponseTime)
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "null"
	}
	return strconv.FormatBool(*b)
}
