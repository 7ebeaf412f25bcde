package checker

import (
	"context"
	"crypto/x509"
	"net/http/httptrace"
	"sync"
	"time"
)

// Phases of a check, worded to follow "timeout after 5s ".
const (
	phaseDNS     = "during dns lookup"
	phaseConnect = "during connect"
	phaseTLS     = "during tls handshake"
	phaseWaiting = "while waiting for first byte"
	phaseHeaders = "while reading headers"
	phaseBody    = "while reading body"
)

// tracker records the phase a check is in and the time spent in each phase,
// summed over the requests of a redirect chain. Its hooks run on several
// goroutines (the dial, the check itself, the end of its context).
type tracker struct {
	// ctx is the check's context. Once it is done, a phase still running
	// was cut short by the timeout or a cancellation and is not recorded.
	ctx context.Context

	// start is when the check began.
	start time.Time

	mu        sync.Mutex
	phase     string
	requests  int // requests started, 1 + redirects followed
	dnsStart  time.Time
	dnsDoneAt time.Time
	gotConnAt time.Time
	firstByte time.Time

	dns, connect, tls, ttfb, transfer   time.Duration
	hasDNS, hasConnect, hasTLS, hasTTFB bool
	hasTransfer                         bool

	// notAfter is the earliest NotAfter of the certificate chains seen in
	// finished handshakes (zero: none), for the alerts' certificate expiry.
	notAfter time.Time
}

// clientTrace hears of the DNS lookups net.Dialer makes; the check's round
// tripper (oneShot) reports the other phases itself.
func (t *tracker) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { t.startDNS() },
		DNSDone:  func(httptrace.DNSDoneInfo) { t.doneDNS() },
	}
}

func (t *tracker) setPhase(p string) {
	t.mu.Lock()
	t.phase = p
	t.mu.Unlock()
}

// current returns the phase and the number of requests started.
func (t *tracker) current() (string, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.phase, t.requests
}

// live reports whether the check is still running; callers hold mu.
func (t *tracker) live() bool { return t.ctx.Err() == nil }

func (t *tracker) startRequest() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests++
	t.phase = phaseConnect
	t.dnsDoneAt, t.gotConnAt, t.firstByte = time.Time{}, time.Time{}, time.Time{}
}

func (t *tracker) startDNS() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phase = phaseDNS
	t.dnsStart = time.Now()
}

func (t *tracker) doneDNS() {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.live() {
		return
	}
	t.dns += now.Sub(t.dnsStart)
	t.hasDNS = true
	t.dnsDoneAt = now
	t.phase = phaseConnect
}

// doneConnect records the TCP connect that began with a dial at start, or
// after the DNS answer when the dial had to look the host up.
func (t *tracker) doneConnect(start time.Time) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.live() {
		return
	}
	if t.dnsDoneAt.After(start) {
		start = t.dnsDoneAt
	}
	t.connect += now.Sub(start)
	t.hasConnect = true
}

func (t *tracker) startTLS() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phase = phaseTLS
	return time.Now()
}

func (t *tracker) doneTLS(start time.Time) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.live() {
		return
	}
	t.tls += now.Sub(start)
	t.hasTLS = true
}

func (t *tracker) gotConn() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gotConnAt = time.Now()
	t.phase = phaseWaiting
}

func (t *tracker) gotFirstByte() {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.firstByte = now
	t.phase = phaseHeaders
	if !t.gotConnAt.IsZero() {
		t.ttfb += now.Sub(t.gotConnAt)
		t.hasTTFB = true
	}
}

// bodyDone records the transfer of the final response, which ends when
// reading stopped for whatever reason.
func (t *tracker) bodyDone(end time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.firstByte.IsZero() {
		t.transfer = end.Sub(t.firstByte)
		t.hasTransfer = true
	}
}

// sawChain records the certificates a server presented in a finished
// handshake. Every certificate of the chain counts: an intermediate that
// expires first breaks the site as surely as the leaf.
func (t *tracker) sawChain(certs []*x509.Certificate) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range certs {
		if t.notAfter.IsZero() || c.NotAfter.Before(t.notAfter) {
			t.notAfter = c.NotAfter
		}
	}
}

// fillTimings copies the recorded phase times, and the earliest
// certificate expiry, into res.
func (t *tracker) fillTimings(res *Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := func(ok bool, d time.Duration) *time.Duration {
		if !ok {
			return nil
		}
		return dur(d)
	}
	res.DNS = set(t.hasDNS, t.dns)
	res.Connect = set(t.hasConnect, t.connect)
	res.TLS = set(t.hasTLS, t.tls)
	res.TTFB = set(t.hasTTFB, t.ttfb)
	res.Transfer = set(t.hasTransfer, t.transfer)
	res.TLSNotAfter = nil
	if !t.notAfter.IsZero() {
		na := t.notAfter.UTC()
		res.TLSNotAfter = &na
	}
}
