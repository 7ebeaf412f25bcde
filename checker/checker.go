package checker

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/sitewatch/sitewatch/siterules"
)

// Defaults applied by New and Check when an option or target field is zero.
const (
	// DefaultBodyLimit is the most body bytes a check reads (1 MiB, as in
	// the contract).
	DefaultBodyLimit int64 = 1 << 20
	// DefaultMaxRedirects is the most redirects a check follows.
	DefaultMaxRedirects = 10
	// DefaultTimeout is the per-check timeout of a Target without one: the
	// sites file's default (siterules).
	DefaultTimeout = siterules.DefaultTimeout
	// DefaultUserAgent is sent unless the target sets its own User-Agent.
	DefaultUserAgent = "sitewatch/1 (+https://github.com/sitewatch/sitewatch)"
)

// maxHeaderBytes bounds the response headers a check accepts, so that a
// hostile server cannot make a check buffer megabytes of headers.
const maxHeaderBytes = 256 << 10

// Target is what to check: the site's URL and its check specification,
// usually built from a codecs.Request.
type Target struct {
	URL     string
	Method  string            // GET when empty
	Headers map[string]string // a "Host" entry sets the request's Host
	// Timeout bounds the whole check, from the DNS lookup to the end of
	// the body; DefaultTimeout when zero.
	Timeout time.Duration
	// Regexp, when set, must match the body (at most the body limit) for
	// the check to be up.
	Regexp *regexp.Regexp
	// ExpectStatus lists the acceptable final status codes; when empty any
	// 2xx or 3xx is acceptable.
	ExpectStatus []int
	// TLS, when set, are the site's own TLS settings.
	TLS *TLS
}

// TLS are a site's own TLS settings (the sites file's tls:). They apply to
// the connections to the site's own host; a redirect elsewhere is checked
// as any other site.
type TLS struct {
	// CAPEM, when set, holds the PEM certificates that verify the site
	// instead of the checker's roots: a private CA, a self-signed
	// certificate pinned as its own CA.
	CAPEM []byte
	// ServerName is sent in SNI and verified in the certificate instead
	// of the URL's host.
	ServerName string
	// InsecureSkipVerify accepts any certificate; the handshake is still
	// made and timed.
	InsecureSkipVerify bool
}

// Options configure a Checker. The zero value is usable.
type Options struct {
	// BodyLimit is the most body bytes read; a larger body makes the check
	// down with kind body_too_large. DefaultBodyLimit when zero or negative.
	BodyLimit int64
	// MaxRedirects is the most redirects followed; one more makes the check
	// down with kind redirects. DefaultMaxRedirects when zero; a negative
	// value follows none, so that a 3xx is the final response.
	MaxRedirects int
	// DenyPrivateTargets refuses to connect to loopback, private,
	// link-local, unspecified and other non-public addresses. It is
	// enforced on the resolved address just before each connect (redirects
	// included), so DNS tricks cannot bypass it.
	DenyPrivateTargets bool
	// UserAgent is sent unless the target sets its own User-Agent header.
	// DefaultUserAgent when empty.
	UserAgent string
	// RootCAs verifies server certificates; the system roots when nil.
	// Tests set it to trust their own servers.
	RootCAs *x509.CertPool
	// Resolver looks up host names; net.DefaultResolver when nil. Tests
	// set it to answer for made-up names without real DNS.
	Resolver *net.Resolver
}

// Checker runs checks. It holds no per-check state, so one Checker may run
// any number of checks concurrently.
type Checker struct {
	opts   Options
	dialer *net.Dialer
	// pools caches the cert pool of each site CAPEM (string → *x509.CertPool):
	// sites share a few CAs, and a check every second should not parse
	// them every second.
	pools sync.Map
}

// New returns a Checker with opts, defaults filled in.
func New(opts Options) *Checker {
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = DefaultBodyLimit
	}
	if opts.MaxRedirects == 0 {
		opts.MaxRedirects = DefaultMaxRedirects
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	d := &net.Dialer{
		Resolver: opts.Resolver,
		// One request per connection: TCP keep-alive probes are useless.
		KeepAlive: -1,
	}
	if opts.DenyPrivateTargets {
		d.Control = denyPrivateControl
	}
	return &Checker{opts: opts, dialer: d}
}

// errCheckTimeout is the cause of a check context whose own timeout fired,
// told apart from a cancellation by the caller.
var errCheckTimeout = errors.New("check timeout")

// Check runs one check of t and describes it. It never returns an error:
// every failure is a down result with an error kind and message.
//
// When ctx is cancelled (for example on shutdown), the result is down with
// kind other and a "check canceled" message; callers should drop such a
// result rather than report the site down. A deadline on ctx earlier than
// the target's timeout ends the check as a timeout.
//
// Phase times are summed over all the requests of a redirect chain (as the
// blackbox exporter does) and are present only for phases that ended, with
// success or with an error of their own; a phase cut short by the timeout is
// absent, and the message names it. ttfb is the wait from the connection
// being ready (after TLS) to the first response byte; transfer runs from the
// final response's first byte to the end of reading its body. When a
// response arrived, the response time and transfer time run until reading
// stopped, even if it stopped on an error.
func (c *Checker) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	res := Result{URL: t.URL, CheckedAt: start.UTC()}
	timeout := siterules.Timeout(t.Timeout)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errCheckTimeout)
	defer cancel()

	tr := &tracker{ctx: ctx, start: start, phase: phaseConnect}
	reqCtx := httptrace.WithClientTrace(ctx, tr.clientTrace())
	req, gunzip, err := c.newRequest(reqCtx, t)
	if err != nil {
		return fail(res, tr, KindOther, err.Error())
	}

	client := &http.Client{Transport: &oneShot{c: c, ctx: reqCtx, tr: tr, t: t, gunzip: gunzip}, CheckRedirect: c.checkRedirect}

	resp, err := client.Do(req)
	if err != nil {
		if resp != nil {
			// Only a refused redirect returns a response with an error:
			// the last 3xx arrived and is the final response.
			res.StatusCode = resp.StatusCode
			res.ResponseTime = dur(time.Since(start))
		}
		kind, msg := c.classify(ctx, tr, timeout, err)
		return fail(res, tr, kind, msg)
	}
	defer resp.Body.Close()
	res.StatusCode = resp.StatusCode
	tr.setPhase(phaseBody)

	body, n, readErr := c.readBody(resp.Body, t.Regexp != nil)
	end := time.Now()
	res.ResponseTime = dur(end.Sub(start))
	res.BodyBytes = n
	tr.bodyDone(end)
	tooLarge := n > c.opts.BodyLimit

	// The regexp runs on whatever fit under the limit; a body cut short by
	// an error or the timeout is not judged, as a false result would blame
	// the content for a transport failure.
	var matched bool
	if t.Regexp != nil && readErr == nil {
		matched = t.Regexp.Match(body[:min(int64(len(body)), c.opts.BodyLimit)])
		res.RegexpMatched = &matched
	}

	// The status decides first: a wrong status is the clearest reason,
	// whatever happened to the body afterwards.
	switch {
	case !siterules.StatusExpected(resp.StatusCode, t.ExpectStatus):
		return fail(res, tr, KindStatus, fmt.Sprintf("status %d, expected %s", resp.StatusCode, siterules.DescribeExpected(t.ExpectStatus)))
	case readErr != nil:
		kind, msg := c.classify(ctx, tr, timeout, readErr)
		if kind == KindOther && !strings.Contains(msg, "reading body") {
			msg = "reading body: " + msg
		}
		return fail(res, tr, kind, msg)
	case tooLarge:
		return fail(res, tr, KindBodyTooLarge, fmt.Sprintf("body larger than the %s limit", formatBytes(c.opts.BodyLimit)))
	case t.Regexp != nil && !matched:
		return fail(res, tr, KindRegexp, fmt.Sprintf("body does not match regexp %q", t.Regexp.String()))
	}
	res.Up = true
	tr.fillTimings(&res)
	return res
}

// newRequest validates the target URL (by the sites file's rule) and
// builds the first request. gunzip says that the request asks for gzip on
// the checker's own account (the site's headers name no encoding), so
// that a gzip body is to be decompressed, as net/http's Transport does;
// http.Client copies the header into the requests of redirects.
func (c *Checker) newRequest(ctx context.Context, t Target) (req *http.Request, gunzip bool, err error) {
	if err := siterules.CheckURL(t.URL); err != nil {
		return nil, false, fmt.Errorf("invalid url: %w", err)
	}
	method := siterules.Method(t.Method)
	req, err = http.NewRequestWithContext(ctx, method, t.URL, nil)
	if err != nil {
		return nil, false, fmt.Errorf("invalid request: %v", err)
	}
	for k, v := range t.Headers {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, false, fmt.Errorf("invalid header field name %q", k)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			return nil, false, fmt.Errorf("invalid header field value for %q", k)
		}
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	if req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == "" && method != http.MethodHead {
		req.Header.Set("Accept-Encoding", "gzip")
		gunzip = true
	}
	return req, gunzip, nil
}

// Per-connection buffer sizes of a check (net/http's default is 4 KiB
// each).
const (
	writeBufferSize = 1 << 10
	readBufferSize  = 2 << 10
)

// redirectError is a redirect the check refused to follow.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// checkRedirect is the client's redirect policy: at most MaxRedirects, and
// only to http or https URLs.
func (c *Checker) checkRedirect(req *http.Request, via []*http.Request) error {
	if c.opts.MaxRedirects < 0 {
		return http.ErrUseLastResponse
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return &redirectError{fmt.Sprintf("redirect to unsupported scheme %q: %s", req.URL.Scheme, req.URL.Redacted())}
	}
	// via holds every request made so far, so len(via) is the number of
	// this redirect.
	if len(via) > c.opts.MaxRedirects {
		return &redirectError{fmt.Sprintf("too many redirects: stopped after %d, next was %s", c.opts.MaxRedirects, req.URL.Redacted())}
	}
	return nil
}

// readBody reads at most BodyLimit+1 bytes, which is enough to tell that a
// body is too large without reading more of it. The bytes are kept only
// when a regexp needs them.
func (c *Checker) readBody(body io.Reader, keep bool) ([]byte, int64, error) {
	lr := io.LimitReader(body, c.opts.BodyLimit+1)
	if !keep {
		n, err := io.Copy(io.Discard, lr)
		return nil, n, err
	}
	b, err := io.ReadAll(lr)
	return b, int64(len(b)), err
}

// fail completes res as a down result.
func fail(res Result, tr *tracker, kind ErrorKind, msg string) Result {
	res.Up = false
	res.ErrorKind = kind
	res.ErrorMessage = msg
	tr.fillTimings(&res)
	return res
}

// formatBytes writes a limit the way a person configured it.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d-byte", n)
}

func dur(d time.Duration) *time.Duration { return &d }
