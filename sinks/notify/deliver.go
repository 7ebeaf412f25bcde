package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/retry"
)

// Headers of a webhook request.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderSignature      = "X-Sitewatch-Signature"
	userAgent            = "sitewatch-notify/1"
)

// retryLogEvery spaces the "retrying" log lines of one destination.
const retryLogEvery = 10 * time.Second

// Sign returns the X-Sitewatch-Signature value of body: "sha256=" and the
// hex HMAC-SHA256 of the body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// body is what the destination receives for c: the change event itself
// for a webhook, a Slack message otherwise. It is the same bytes on every
// attempt, so the signature is too.
func (d *destination) body(c *codecs.StatusChange) ([]byte, error) {
	if d.kind == KindSlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{SlackText(c)})
	}
	return codecs.StatusChangeCodec{}.Encode(c)
}

// deliver sends c until the receiver accepts it, refuses it, or it is too
// old. It returns "" when delivered, the reason when the change is to be
// dead-lettered, or ctx's error when the sink stops first (the change is
// then sent again later).
func (d *destination) deliver(ctx context.Context, c *codecs.StatusChange) (string, error) {
	deadline := c.ChangedAt.Add(d.cfg.MaxAge)
	if !time.Now().Before(deadline) {
		d.m.failed("expired").Inc()
		return fmt.Sprintf("%s %s: not sent: changed_at %s is more than -alert-max-age %s ago",
			d.kind, d.label, c.ChangedAt.UTC().Format(time.RFC3339), d.cfg.MaxAge), nil
	}
	body, err := d.body(c)
	if err != nil {
		// A decoded change always encodes; if not, retrying cannot help.
		d.m.failed("rejected").Inc()
		return fmt.Sprintf("%s %s: encode: %v", d.kind, d.label, err), nil
	}
	bo := retry.Backoff{Min: d.cfg.BackoffMin, Max: d.cfg.BackoffMax}
	first := time.Now()
	gaveUp := func(attempts int, err error) string {
		d.m.failed("expired").Inc()
		return fmt.Sprintf("%s %s: gave up after %d attempts over %s (-alert-max-age %s from changed_at %s): %v",
			d.kind, d.label, attempts, time.Since(first).Round(time.Millisecond), d.cfg.MaxAge,
			c.ChangedAt.UTC().Format(time.RFC3339), err)
	}
	for attempt := 1; ; attempt++ {
		a := d.post(ctx, c.ChangeID, body)
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if a.err == nil {
			d.m.sent.Inc()
			d.m.latency.Observe(time.Since(c.ChangedAt).Seconds())
			if attempt > 1 {
				d.log.Info("notification delivered after retries", "change_id", c.ChangeID, "attempts", attempt)
			}
			return "", nil
		}
		if !a.retryable {
			// The sink logs the reason as it dead-letters the change.
			d.m.failed("rejected").Inc()
			return fmt.Sprintf("%s %s: %v (not retried)", d.kind, d.label, a.err), nil
		}
		wait := max(bo.Next(), a.retryAfter)
		if time.Now().Add(wait).After(deadline) {
			return gaveUp(attempt, a.err), nil
		}
		d.m.retried.Inc()
		d.logRetry(c, attempt, wait, a.err)
		if !retry.Sleep(ctx, wait) {
			return "", ctx.Err()
		}
		// The sleep may end later than asked (a busy machine): never
		// send past the deadline.
		if !time.Now().Before(deadline) {
			return gaveUp(attempt, a.err), nil
		}
	}
}

func (d *destination) logRetry(c *codecs.StatusChange, attempt int, wait time.Duration, err error) {
	d.logMu.Lock()
	suppressed, ok := d.retryLog.Allow(time.Now())
	d.logMu.Unlock()
	if ok {
		d.log.Warn("notification failed, retrying", "change_id", c.ChangeID, "attempt", attempt,
			"retry_in", wait.Round(time.Millisecond), "err", err, "similar_lines_suppressed", suppressed)
	}
}

// answer is the outcome of one attempt.
type answer struct {
	// err is nil for a 2xx; otherwise it says what happened, naming no
	// part of the URL but its host.
	err        error
	retryable  bool
	retryAfter time.Duration
}

// post makes one request, bounded by the configured timeout.
func (d *destination) post(ctx context.Context, changeID string, body []byte) answer {
	rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, d.url.String(), bytes.NewReader(body))
	if err != nil {
		return answer{err: errors.New("cannot build the request"), retryable: false}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderIdempotencyKey, changeID)
	if d.kind == KindWebhook && len(d.cfg.Secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(d.cfg.Secret, body))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		if errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return answer{err: fmt.Errorf("no answer within -alert-timeout %s", d.cfg.Timeout), retryable: true}
		}
		return answer{err: d.redact(err), retryable: true}
	}
	defer resp.Body.Close()
	// Read a little of the answer for the reason, and drain a bit more so
	// that the connection can be reused.
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return answer{}
	}
	a := answer{err: fmt.Errorf("answered %s%s", resp.Status, d.snippet(head))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		a.retryable = true
		a.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		a.retryable = true
		a.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return a
}

// redact reduces a client error to its cause: *url.Error quotes the
// whole URL, path and query included.
func (d *destination) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if p := d.url.Path; len(p) > 1 {
		msg = strings.ReplaceAll(msg, p, "/…")
	}
	if q := d.url.RawQuery; q != "" {
		msg = strings.ReplaceAll(msg, q, "…")
	}
	return errors.New(msg)
}

// snippet is the start of a receiver's answer, printable, on one line,
// with the URL's path and query cut out in case the receiver echoes them.
func (d *destination) snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "")
	if p := d.url.Path; len(p) > 1 {
		s = strings.ReplaceAll(s, p, "/…")
	}
	if q := d.url.RawQuery; q != "" {
		s = strings.ReplaceAll(s, q, "…")
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }), " ")
	if s == "" {
		return ""
	}
	return ": " + truncate(s, 200)
}

// retryAfter parses a Retry-After header (seconds or an HTTP date); zero
// when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
