package urlchecker

import (
	"time"

	"github.com/sitewatch/sitewatch/checker"
	"github.com/sitewatch/sitewatch/codecs"
)

// errorKinds maps the checker's error kinds to the contract's error_kind.
var errorKinds = map[checker.ErrorKind]string{
	checker.KindDNS:          codecs.ErrDNS,
	checker.KindConnect:      codecs.ErrConnect,
	checker.KindTLS:          codecs.ErrTLS,
	checker.KindTimeout:      codecs.ErrTimeout,
	checker.KindStatus:       codecs.ErrStatus,
	checker.KindRegexp:       codecs.ErrRegexp,
	checker.KindBodyTooLarge: codecs.ErrBodyTooLarge,
	checker.KindRedirects:    codecs.ErrRedirects,
	checker.KindOther:        codecs.ErrOther,
}

// ResultEvent is the event the url_checker emits for check r of req by
// instance; the load programs make their events with it.
func ResultEvent(req *codecs.Request, r checker.Result, instance string) *codecs.Result {
	return resultEvent(req, r, instance)
}

// resultEvent is the wire event of one check of req: the check's findings,
// plus what only the processor knows. The event id is the request id:
// every check of a slot gets the same id, so a check repeated after a
// crash is stored once (see the delivery rule in internal/kafkarun).
func resultEvent(req *codecs.Request, r checker.Result, instance string) *codecs.Result {
	ev := &codecs.Result{
		EventID:        req.RequestID,
		URL:            r.URL,
		ScheduledAt:    req.ScheduledAt,
		CheckedAt:      r.CheckedAt.UTC(),
		Outcome:        codecs.OutcomeDown,
		StatusCode:     r.StatusCode,
		ResponseTimeMS: ms(r.ResponseTime),
		DNSMS:          ms(r.DNS),
		ConnectMS:      ms(r.Connect),
		TLSMS:          ms(r.TLS),
		TTFBMS:         ms(r.TTFB),
		TransferMS:     ms(r.Transfer),
		BodyBytes:      r.BodyBytes,
		Regexp:         req.Regexp,
		TLSNotAfter:    r.TLSNotAfter,
		Checker:        instance,
	}
	if req.Regexp != nil {
		ev.RegexpMatched = r.RegexpMatched
	}
	if r.Up {
		ev.Outcome = codecs.OutcomeUp
		return ev
	}
	kind, ok := errorKinds[r.ErrorKind]
	if !ok {
		kind = codecs.ErrOther
	}
	msg := r.ErrorMessage
	ev.ErrorKind, ev.ErrorMessage = &kind, &msg
	return ev
}

// ms is a duration in fractional milliseconds, the wire's unit.
func ms(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	v := float64(*d) / float64(time.Millisecond)
	return &v
}
