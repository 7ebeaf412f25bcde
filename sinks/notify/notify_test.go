package notify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/sinks/notify"
)

// hmacHex is the signature computed here, independently of notify.Sign.
func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// TestEachChangeOnceInOrderPerURL produces 150 changes of 15 URLs (with a
// change re-produced, as the alerts group may after a crash): two
// webhooks and a Slack endpoint each get every change exactly once, each
// URL's in the order produced, signed, with the change_id as
// Idempotency-Key and the event itself as the body.
func TestEachChangeOnceInOrderPerURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const secret = "s3cr3t-for-hmac"
	hooks := []*receiver{newReceiver(t, nil), newReceiver(t, nil)}
	slack := newReceiver(t, nil)
	r := e.start(notify.Config{
		Webhooks: []string{hooks[0].URL + "/hook/a", hooks[1].URL + "/hook/b?token=x"}, SlackWebhooks: []string{slack.URL + "/services/T/B/X"},
		Secret: []byte(secret),
	})

	now := time.Now().UTC().Truncate(time.Millisecond)
	var all []*codecs.StatusChange
	order := map[string][]string{} // url → change_ids in production order
	for i := range 10 {
		var batch []*codecs.StatusChange
		for u := range 15 {
			c := change(fmt.Sprintf("https://site%d.example/", u), i, now.Add(time.Duration(i)*time.Second))
			batch = append(batch, c)
			order[c.URL] = append(order[c.URL], c.ChangeID)
		}
		all = append(all, batch...)
		e.produce(batch...)
		if i == 4 {
			e.produce(batch[3]) // the same change again, right after
		}
	}

	for _, rc := range append(hooks, slack) {
		got := rc.waitRequests(t, len(all), 60*time.Second, r.logs)
		seen := map[string]int{}
		perURL := map[string][]string{}
		for _, q := range got {
			seen[q.key]++
			if q.ctype != "application/json" {
				t.Errorf("Content-Type %q", q.ctype)
			}
			if rc == slack {
				var m map[string]string
				if err := json.Unmarshal(q.body, &m); err != nil || m["text"] == "" || len(m) != 1 {
					t.Fatalf("slack body %q: want {\"text\": …}", q.body)
				}
				if q.sig != "" {
					t.Errorf("slack request signed: %q", q.sig)
				}
				perURL[strings.SplitN(q.key, "|", 2)[0]] = append(perURL[strings.SplitN(q.key, "|", 2)[0]], q.key)
				continue
			}
			c := decodeBody(t, q.body)
			if c.ChangeID != q.key {
				t.Errorf("Idempotency-Key %q for change %q", q.key, c.ChangeID)
			}
			if want := hmacHex(secret, q.body); q.sig != want {
				t.Errorf("signature %q, want %q", q.sig, want)
			}
			perURL[c.URL] = append(perURL[c.URL], c.ChangeID)
		}
		for _, c := range all {
			if seen[c.ChangeID] != 1 {
				t.Errorf("%s: change %s received %d times, want once", rc.URL, c.ChangeID, seen[c.ChangeID])
			}
		}
		for u, want := range order {
			if strings.Join(perURL[u], " ") != strings.Join(want, " ") {
				t.Errorf("%s: %s received in order %v, want %v", rc.URL, u, perURL[u], want)
			}
		}
	}
	// Nothing more arrives (no re-delivery without a crash).
	time.Sleep(300 * time.Millisecond)
	for _, rc := range append(hooks, slack) {
		if n := len(rc.requests()); n != len(all) {
			t.Errorf("%s: %d requests, want %d", rc.URL, n, len(all))
		}
	}
	host := strings.TrimPrefix(hooks[0].URL, "http://")
	if got := r.metric(t, "sitewatch_notifications_sent_total", "destination", host); got != float64(len(all)) {
		t.Errorf("sent{destination=%s} = %v, want %d", host, got, len(all))
	}
	if got := r.metric(t, "sitewatch_notification_latency_seconds", "destination", host); got != float64(len(all)) {
		t.Errorf("latency observations = %v, want %d", got, len(all))
	}
}

// TestRetriesUntilAccepted: the receiver answers 500 for 10 s, then 200.
// The change arrives once accepted, after several tries that all carried
// the same body, the same Idempotency-Key and a valid signature.
func TestRetriesUntilAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const secret = "another secret"
	var start time.Time
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 0 {
			start = time.Now()
		}
		if time.Since(start) < 10*time.Second {
			http.Error(w, "temporarily broken", http.StatusInternalServerError)
			return true
		}
		return false
	})
	r := e.start(notify.Config{Webhooks: []string{rc.URL}, Secret: []byte(secret),
		BackoffMin: 200 * time.Millisecond, BackoffMax: 2 * time.Second})
	c := change("https://flaky.example/", 0, time.Now())
	e.produce(c)

	host := strings.TrimPrefix(rc.URL, "http://")
	waitFor(t, 40*time.Second, "the delivery", func() bool {
		return r.metric(t, "sitewatch_notifications_sent_total", "destination", host) == 1
	})
	got := rc.requests()
	if len(got) < 3 {
		t.Fatalf("%d attempts, want several over 10s", len(got))
	}
	if span := got[len(got)-1].at.Sub(got[0].at); span < 10*time.Second {
		t.Errorf("accepted after %s, before the receiver recovered", span)
	}
	for i, q := range got {
		if q.key != c.ChangeID || string(q.body) != string(got[0].body) {
			t.Errorf("attempt %d: key %q body %q, want the first attempt's %q %q", i+1, q.key, q.body, c.ChangeID, got[0].body)
		}
		if want := hmacHex(secret, q.body); q.sig != want {
			t.Errorf("attempt %d: signature %q, want %q", i+1, q.sig, want)
		}
	}
	if retried := r.metric(t, "sitewatch_notifications_retried_total", "destination", host); retried != float64(len(got)-1) {
		t.Errorf("retried = %v after %d attempts, want %d", retried, len(got), len(got)-1)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(rc.requests()); n != len(got) {
		t.Errorf("%d requests after the 200, want none", n-len(got))
	}
	if got := r.metric(t, "sitewatch_notifications_failed_total"); got != 0 {
		t.Errorf("failed = %v, want 0", got)
	}
}

// TestRetryAfterIsHonoured: a 429 with Retry-After: 2 is tried again no
// sooner than 2 s later, even though the backoff alone would be 50 ms.
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 0 {
			w.Header().Set("Retry-After", "2")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return true
		}
		return false
	})
	r := e.start(notify.Config{Webhooks: []string{rc.URL}})
	e.produce(change("https://busy.example/", 0, time.Now()))
	got := rc.waitRequests(t, 2, 30*time.Second, r.logs)
	if gap := got[1].at.Sub(got[0].at); gap < 2*time.Second {
		t.Errorf("retried %s after a 429 with Retry-After: 2", gap)
	}
}

// TestRefusedGoesToDeadLetterAtOnce: a 400 is not retried; the change is
// dead-lettered with the status and the receiver's reason, and the next
// change of the same site is still delivered.
func TestRefusedGoesToDeadLetterAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 0 {
			http.Error(w, "unknown field severity", http.StatusBadRequest)
			return true
		}
		return false
	})
	r := e.start(notify.Config{Webhooks: []string{rc.URL + "/in"}})
	bad, next := change("https://refused.example/", 0, time.Now()), change("https://refused.example/", 1, time.Now())
	e.produce(bad, next)
	got := rc.waitRequests(t, 2, 30*time.Second, r.logs)
	if got[0].key != bad.ChangeID || got[1].key != next.ChangeID {
		t.Fatalf("requests %q, %q: want %q once then %q", got[0].key, got[1].key, bad.ChangeID, next.ChangeID)
	}
	dls := e.deadLetters(1)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	d := dls[0]
	dc := decodeBody(t, d.Value)
	if dc.ChangeID != bad.ChangeID || d.Topic != topicChanges || !strings.HasPrefix(d.Consumer, "notify_webhook_") {
		t.Errorf("dead letter of %q from %s by %s, want %q from %s by the webhook's group", dc.ChangeID, d.Topic, d.Consumer, bad.ChangeID, topicChanges)
	}
	for _, want := range []string{"400 Bad Request", "unknown field severity", "not retried"} {
		if !strings.Contains(d.Reason, want) {
			t.Errorf("reason %q does not say %q", d.Reason, want)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(rc.requests()); n != 2 {
		t.Errorf("%d requests, want 2 (no retry of a 400)", n)
	}
	host := strings.TrimPrefix(rc.URL, "http://")
	if got := r.metric(t, "sitewatch_notifications_failed_total", "destination", host, "reason", "rejected"); got != 1 {
		t.Errorf("failed{rejected} = %v, want 1", got)
	}
}

// TestGivesUpAfterMaxAge: a change older than -alert-max-age is not sent;
// one the receiver keeps refusing with 503 is retried until it is that
// old; both are dead-lettered saying so.
func TestGivesUpAfterMaxAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return true
	})
	const maxAge = 3 * time.Second
	r := e.start(notify.Config{Webhooks: []string{rc.URL}, MaxAge: maxAge})
	stale := change("https://stale.example/", 0, time.Now().Add(-maxAge-time.Second))
	fresh := change("https://fresh.example/", 0, time.Now())
	e.produce(stale, fresh)
	dls := e.deadLetters(2)
	reasons := map[string]string{}
	for _, d := range dls {
		reasons[decodeBody(t, d.Value).ChangeID] = d.Reason
	}
	if !strings.Contains(reasons[stale.ChangeID], "not sent") {
		t.Errorf("stale change: reason %q, want not sent", reasons[stale.ChangeID])
	}
	if !strings.Contains(reasons[fresh.ChangeID], "gave up after") || !strings.Contains(reasons[fresh.ChangeID], "503") {
		t.Errorf("fresh change: reason %q, want gave up … 503", reasons[fresh.ChangeID])
	}
	for _, q := range rc.requests() {
		if q.key == stale.ChangeID {
			t.Fatalf("a change older than -alert-max-age was sent")
		}
		if q.at.After(fresh.ChangedAt.Add(maxAge)) {
			t.Errorf("attempt at %s, after changed_at + max age %s", q.at, fresh.ChangedAt.Add(maxAge))
		}
	}
	if n := len(rc.requests()); n < 2 {
		t.Errorf("%d attempts for the fresh change, want retries", n)
	}
	host := strings.TrimPrefix(rc.URL, "http://")
	if got := r.metric(t, "sitewatch_notifications_failed_total", "destination", host, "reason", "expired"); got != 2 {
		t.Errorf("failed{expired} = %v, want 2", got)
	}
}

// TestHangingReceiverIsBounded: a receiver that never answers costs one
// -alert-timeout per attempt, and does not hold back another destination,
// which gets every change while the first hangs.
func TestHangingReceiverIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	release := make(chan struct{})
	hang := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
			return false
		case <-r.Context().Done():
			return true
		}
	})
	healthy := newReceiver(t, nil)
	const timeout = 300 * time.Millisecond
	r := e.start(notify.Config{Webhooks: []string{hang.URL, healthy.URL}, Timeout: timeout})
	var cs []*codecs.StatusChange
	for i := range 6 {
		cs = append(cs, change("https://hung.example/", i, time.Now()))
	}
	e.produce(cs...)
	healthy.waitRequests(t, len(cs), 30*time.Second, r.logs)
	got := hang.waitRequests(t, 3, 30*time.Second, r.logs)
	for i := 1; i < len(got); i++ {
		if got[i].key != cs[0].ChangeID {
			t.Fatalf("attempt %d is for %q while %q was not accepted: out of order", i+1, got[i].key, cs[0].ChangeID)
		}
		if gap := got[i].at.Sub(got[i-1].at); gap < timeout {
			t.Errorf("attempt %d came %s after the previous, before its timeout %s", i+1, gap, timeout)
		}
	}
	if !strings.Contains(r.logs.String(), "no answer within -alert-timeout") {
		t.Errorf("the logs do not say the receiver did not answer:\n%s", tail(r.logs.String(), 2000))
	}
	close(release)
	var keys []string
	waitFor(t, 30*time.Second, "the released receiver to get every change", func() bool {
		seen := map[string]bool{}
		for _, q := range hang.requests() {
			seen[q.key] = true
		}
		return len(seen) == len(cs)
	})
	for _, q := range hang.requests() {
		if len(keys) == 0 || keys[len(keys)-1] != q.key {
			keys = append(keys, q.key)
		}
	}
	for i, c := range cs {
		if i >= len(keys) || keys[i] != c.ChangeID {
			t.Fatalf("hung receiver got %v, want each change in order", keys)
		}
	}
}

// TestSlackMessage: the sentence names the site, what happened, since
// when and why; a site name and error message with markup, mentions and
// newlines arrive inert.
func TestSlackMessage(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 12, 1, 9, 58, 0, 0, time.UTC)
	kind, msg := codecs.ErrStatus, "status 500\n<!channel> & @here"
	c := &codecs.StatusChange{
		ChangeID: "x", URL: "https://shop.example/<b>", Name: "Shop <script>alert(1)</script>\n*Fake line* <@U123> @everyone",
		Kind: codecs.ChangeDown, State: codecs.StateDown, PreviousState: codecs.StateUp,
		Since: since, ChangedAt: since.Add(time.Minute), Consecutive: 3, EventID: "e",
		ErrorKind: &kind, ErrorMessage: &msg, StatusCode: 500,
	}
	got := notify.SlackText(c)
	for _, want := range []string{
		"Shop &lt;script&gt;alert(1)&lt;/script&gt; *Fake line* &lt;@\u200bU123&gt; @\u200beveryone",
		"is DOWN since 2026-12-01 09:58:00 UTC", "3 failed checks in a row",
		"status 500 &lt;!channel&gt; &amp; @\u200bhere", "https://shop.example/&lt;b&gt;",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("slack text %q\ndoes not contain %q", got, want)
		}
	}
	if strings.ContainsAny(got, "<>\n\r") || strings.Contains(got, "@here") || strings.Contains(got, "@everyone") {
		t.Errorf("slack text %q has live markup, a mention or a newline", got)
	}

	up := *c
	up.Kind, up.State, up.PreviousState, up.Consecutive, up.Name = codecs.ChangeUp, codecs.StateUp, codecs.StateDown, 2, "Shop"
	if got := notify.SlackText(&up); !strings.Contains(got, "Shop is UP again since 2026-12-01 09:58:00 UTC (2 successful checks in a row)") {
		t.Errorf("up: %q", got)
	}
	notAfter := c.ChangedAt.Add(3*24*time.Hour + time.Hour)
	cert := up
	cert.Kind, cert.TLSNotAfter = codecs.ChangeCertExpiring, &notAfter
	if got := notify.SlackText(&cert); !strings.Contains(got, "certificate of Shop expires on 2026-12-04") || !strings.Contains(got, "(in 3 days)") {
		t.Errorf("cert_expiring: %q", got)
	}

	// And through a real Slack-style endpoint.
	e := newEnv(t)
	rc := newReceiver(t, nil)
	r := e.start(notify.Config{SlackWebhooks: []string{rc.URL + "/services/T/B/X"}})
	c.ChangedAt, c.Since = time.Now(), time.Now().Add(-time.Minute)
	e.produce(c)
	q := rc.waitRequests(t, 1, 30*time.Second, r.logs)[0]
	var body struct{ Text string }
	if err := json.Unmarshal(q.body, &body); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(body.Text, "<>\n") || !strings.Contains(body.Text, "&lt;script&gt;") {
		t.Errorf("posted text %q is not escaped", body.Text)
	}
}

// TestNoSecretInLogsMetricsOrDeadLetters: destinations whose path and
// query are tokens fail in every way (5xx, 4xx echoing the request, no
// listener): neither the tokens nor the signing secret appear in the
// logs (debug level), the metrics or the dead letters.
func TestNoSecretInLogsMetricsOrDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const (
		pathToken  = "T0KEN-IN-PATH-8f3a"
		queryToken = "QUERY-TOKEN-77c1"
		secret     = "HMAC-SECRET-19dd"
	)
	echo := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n < 2 {
			http.Error(w, "overloaded "+r.URL.RequestURI(), http.StatusBadGateway)
		} else {
			http.Error(w, "no such hook "+r.URL.RequestURI()+" signed "+r.Header.Get(notify.HeaderSignature), http.StatusNotFound)
		}
		return true
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	r := e.start(notify.Config{
		Webhooks:      []string{echo.URL + "/hooks/" + pathToken + "?key=" + queryToken, closed + "/hooks/" + pathToken},
		SlackWebhooks: []string{closed + "/services/" + pathToken + "?t=" + queryToken},
		Secret:        []byte(secret), MaxAge: 2 * time.Second, Timeout: 200 * time.Millisecond,
	})
	e.produce(change("https://victim.example/", 0, time.Now()))
	dls := e.deadLetters(3)
	var reasons []string
	for _, d := range dls {
		reasons = append(reasons, d.Reason)
	}
	if !strings.Contains(strings.Join(reasons, "\n"), "404") || !strings.Contains(strings.Join(reasons, "\n"), "connect") {
		t.Errorf("reasons %q: want the 404 and the refused connection", reasons)
	}
	for what, text := range map[string]string{"logs": r.logs.String(), "metrics": r.metricsText(t), "dead letters": strings.Join(reasons, "\n")} {
		for _, s := range []string{pathToken, queryToken, secret, "hooks/", "services/"} {
			if strings.Contains(text, s) {
				t.Errorf("%s contain %q:\n%s", what, s, tail(text, 3000))
			}
		}
	}
	if !strings.Contains(r.logs.String(), strings.TrimPrefix(echo.URL, "http://")) {
		t.Errorf("the logs do not name the destination's host")
	}
}

// TestBadDestinations: a URL that cannot be a destination is refused at
// start, naming the flag and its position but not the URL.
func TestBadDestinations(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		webhooks, slack []string
		want            string
	}{
		"no scheme":   {webhooks: []string{"hooks.example/TOKEN"}, want: "-alert-webhook #1: not an http or https URL"},
		"ftp":         {slack: []string{"https://ok.example/", "ftp://x/TOKEN"}, want: "-alert-slack-webhook #2: not an http or https URL"},
		"no host":     {webhooks: []string{"https:///TOKEN"}, want: "-alert-webhook #1: URL has no host"},
		"credentials": {webhooks: []string{"https://user:TOKEN@x.example/"}, want: "user:password"},
		"bad escape":  {webhooks: []string{"https://x.example/%zzTOKEN"}, want: "-alert-webhook #1: not a valid URL"},
		"twice":       {webhooks: []string{"https://x.example/TOKEN", "https://y.example/", "https://x.example/TOKEN"}, want: "-alert-webhook #3: the same URL as -alert-webhook #1"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := notify.New(notify.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", DeadLetterTopic: "d", Group: "g",
				Webhooks: tc.webhooks, SlackWebhooks: tc.slack})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "TOKEN") {
				t.Errorf("New = %v, want an error containing %q and no TOKEN", err, tc.want)
			}
		})
	}
	n, err := notify.New(notify.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", DeadLetterTopic: "d", Group: "g"})
	if err != nil || n.Destinations() != 0 {
		t.Fatalf("no destinations: %v, %d", err, n.Destinations())
	}
	if err := n.Run(t.Context()); err != nil {
		t.Errorf("Run with no destinations: %v, want nil at once", err)
	}
}
