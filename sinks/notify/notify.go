package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/retry"
	"github.com/sitewatch/sitewatch/sinks"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxAge      = time.Hour
	DefaultTimeout     = 10 * time.Second
	DefaultBackoffMin  = time.Second
	DefaultBackoffMax  = time.Minute
	DefaultConcurrency = 8
	// DefaultFlushInterval is how long the first change of a batch waits
	// for more: short, since an alert should not wait for company.
	DefaultFlushInterval = 5 * time.Millisecond
	DefaultBatchSize     = 100
)

// Destination kinds.
const (
	KindWebhook = "webhook"
	KindSlack   = "slack"
)

// Config configures a Notifier. Zero durations and sizes take the defaults.
type Config struct {
	// Brokers and Sarama are as for sinks.Config.
	Brokers []string
	Sarama  *sarama.Config
	// Topic is status_changes (with the topic prefix).
	Topic string
	// DeadLetterTopic receives changes that could not be delivered.
	DeadLetterTopic string
	// Group is the base of the consumer groups (with the topic prefix):
	// each destination's group is Group_<kind>_<hash of its URL>.
	Group string
	// Webhooks get the change event as JSON; SlackWebhooks a sentence.
	Webhooks, SlackWebhooks []string
	// Secret, when set, signs webhook bodies (X-Sitewatch-Signature).
	Secret []byte
	// MaxAge is how long after its changed_at a change is still tried
	// (default 1h).
	MaxAge time.Duration
	// Timeout bounds each request, so a receiver that hangs costs one
	// timeout per attempt (default 10s).
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the wait between attempts (default
	// 1s and 1m); a Retry-After longer than the backoff wins.
	BackoffMin, BackoffMax time.Duration
	// Concurrency is how many URLs of a batch a destination delivers at
	// once (default 8); one URL's changes always go one after the other.
	Concurrency int
	// BatchSize and FlushInterval are the sinks' (default 100 and 5ms).
	BatchSize     int
	FlushInterval time.Duration
	// Transport carries the requests (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
	// Logger and Registerer receive the logs and metrics.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Notifier delivers status changes to its destinations, one sink each.
type Notifier struct {
	dests []*destination
	sinks []*sinks.Sink
	log   *slog.Logger
}

// New checks cfg and builds one sink per destination. A URL that is not
// absolute http(s) is an error naming the flag and the position, never
// the URL (it may hold a token).
func New(cfg Config) (*Notifier, error) {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffMin)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	var errs []error
	switch {
	case cfg.MaxAge < 0:
		errs = append(errs, fmt.Errorf("-alert-max-age %s: must be positive", cfg.MaxAge))
	case cfg.Timeout < 0:
		errs = append(errs, fmt.Errorf("-alert-timeout %s: must be positive", cfg.Timeout))
	case cfg.Concurrency < 0:
		errs = append(errs, fmt.Errorf("concurrency %d: must be positive", cfg.Concurrency))
	case cfg.BackoffMax < cfg.BackoffMin:
		errs = append(errs, fmt.Errorf("backoff max %s is below backoff min %s", cfg.BackoffMax, cfg.BackoffMin))
	}
	transport := cfg.Transport
	if transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Keep a connection per concurrent delivery: the default of two
		// idle ones per host would reconnect for most requests.
		t.MaxIdleConnsPerHost = max(cfg.Concurrency, 2)
		transport = t
	}
	client := &http.Client{
		Transport: transport,
		// A redirect is answered, not followed: the body and its
		// signature go to the configured host only.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	n := &Notifier{log: cfg.Logger.With("component", "notify")}
	parsed, err := parseDestinations(cfg.Webhooks, cfg.SlackWebhooks)
	errs = append(errs, err)
	hosts := map[string]int{}
	for _, p := range parsed {
		// The label is the host, numbered when two destinations share
		// one (two Slack channels): unique, and no secret.
		label := p.url.Host
		hosts[label]++
		if c := hosts[label]; c > 1 {
			label = fmt.Sprintf("%s#%d", label, c)
		}
		n.dests = append(n.dests, &destination{
			kind: p.kind, url: p.url, label: label, cfg: &cfg, client: client,
			log:      n.log.With("destination", label, "kind", p.kind),
			done:     newOutcomes(outcomeMemory),
			retryLog: retry.RateLog{Every: retryLogEvery},
		})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	if len(n.dests) == 0 {
		return n, nil
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	for _, d := range n.dests {
		d.m = m.forDestination(d.label)
		s, err := sinks.NewChanges(sinks.Config{
			Brokers: cfg.Brokers, Sarama: cfg.Sarama,
			Group:  groupID(cfg.Group, d.kind, d.url),
			Topics: []string{cfg.Topic}, DeadLetterTopic: cfg.DeadLetterTopic,
			Name:      "notify:" + d.label,
			BatchSize: cfg.BatchSize, FlushInterval: cfg.FlushInterval,
			Logger: cfg.Logger, Registerer: cfg.Registerer,
		}, d)
		if err != nil {
			return nil, fmt.Errorf("notify %s: %w", d.label, err)
		}
		n.sinks = append(n.sinks, s)
	}
	return n, nil
}

// Destinations is the number of destinations configured.
func (n *Notifier) Destinations() int { return len(n.dests) }

// Run delivers until ctx ends. With no destination it returns at once: the
// notify part is then harmless in the default set.
func (n *Notifier) Run(ctx context.Context) error {
	if len(n.sinks) == 0 {
		n.log.Info("no notification destinations (-alert-webhook, -alert-slack-webhook); status changes are not sent")
		return nil
	}
	for _, d := range n.dests {
		d.log.Info("notifying")
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range n.sinks {
		g.Go(func() error { return s.Run(gctx) })
	}
	return g.Wait()
}

type parsedURL struct {
	kind string
	url  *url.URL
}

// CheckDestinations checks the webhook and Slack URLs, refusing one that
// is not absolute http(s) or that is given twice (the two would share a
// consumer group and each get half the changes). Errors name the flag and
// the position, never the URL: it may hold a token.
func CheckDestinations(webhooks, slack []string) error {
	_, err := parseDestinations(webhooks, slack)
	return err
}

func parseDestinations(webhooks, slack []string) ([]parsedURL, error) {
	var out []parsedURL
	var errs []error
	seen := map[string]string{}
	for _, list := range []struct {
		kind, flag string
		urls       []string
	}{
		{KindWebhook, "-alert-webhook", webhooks},
		{KindSlack, "-alert-slack-webhook", slack},
	} {
		for i, raw := range list.urls {
			at := fmt.Sprintf("%s #%d", list.flag, i+1)
			u, err := ParseURL(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", at, err))
				continue
			}
			key := list.kind + " " + u.String()
			if first, dup := seen[key]; dup {
				errs = append(errs, fmt.Errorf("%s: the same URL as %s", at, first))
				continue
			}
			seen[key] = at
			out = append(out, parsedURL{list.kind, u})
		}
	}
	return out, errors.Join(errs...)
}

// ParseURL checks a destination URL: absolute http or https with a host.
// Its errors never quote the URL.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("not an http or https URL")
	}
	if u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	if u.User != nil {
		// net/http would send it as basic auth, but it would also have
		// to be kept out of every message: one place for a secret is
		// enough, the path or query.
		return nil, errors.New("user:password in the URL is not supported; put the token in the path or query")
	}
	return u, nil
}

// groupID is the destination's consumer group: stable for a URL, and
// naming no part of it but a hash.
func groupID(base, kind string, u *url.URL) string {
	sum := sha256.Sum256([]byte(u.String()))
	return fmt.Sprintf("%s_%s_%s", base, kind, hex.EncodeToString(sum[:6]))
}

// destination is one receiver, and the sinks.ChangeWriter of its sink.
type destination struct {
	kind   string
	url    *url.URL
	label  string
	cfg    *Config
	client *http.Client
	log    *slog.Logger
	m      destMetrics
	// done remembers the outcome of recent changes, so that a flush
	// resumed after an interruption (shutdown drain, rebalance back to
	// this member) does not send again what was just delivered.
	done *outcomes
	// logMu guards retryLog, which keeps an outage of the receiver to a
	// log line every few seconds.
	logMu    sync.Mutex
	retryLog retry.RateLog
}

var _ sinks.ChangeWriter = (*destination)(nil)

// WriteChanges delivers a partition's batch: URL by URL (up to
// Concurrency at once), each URL's changes in order. It returns when every
// change is delivered or rejected, or with ctx's error.
func (d *destination) WriteChanges(ctx context.Context, cs []*codecs.StatusChange) ([]sinks.Rejected, error) {
	var order []string
	byURL := map[string][]int{}
	for i, c := range cs {
		if _, ok := byURL[c.URL]; !ok {
			order = append(order, c.URL)
		}
		byURL[c.URL] = append(byURL[c.URL], i)
	}
	var mu sync.Mutex
	var rejected []sinks.Rejected
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.cfg.Concurrency)
	for _, u := range order {
		g.Go(func() error {
			for _, i := range byURL[u] {
				reason, err := d.deliverOnce(gctx, cs[i])
				if err != nil {
					return err
				}
				if reason != "" {
					mu.Lock()
					rejected = append(rejected, sinks.Rejected{Index: i, Reason: reason})
					mu.Unlock()
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return rejected, nil
}

// deliverOnce is deliver, unless the change's outcome is remembered.
func (d *destination) deliverOnce(ctx context.Context, c *codecs.StatusChange) (string, error) {
	if reason, ok := d.done.get(c.ChangeID); ok {
		return reason, nil
	}
	reason, err := d.deliver(ctx, c)
	if err == nil {
		d.done.put(c.ChangeID, reason)
	}
	return reason, err
}

// outcomeMemory is how many outcomes a destination remembers: more than a
// few batches, a few hundred kilobytes at most.
const outcomeMemory = 4096

// outcomes is a bounded map of change_id to rejection reason ("" for
// delivered), forgetting the oldest first.
type outcomes struct {
	mu   sync.Mutex
	m    map[string]string
	ring []string
	next int
}

func newOutcomes(n int) *outcomes {
	return &outcomes{m: make(map[string]string, n), ring: make([]string, n)}
}

func (o *outcomes) get(id string) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.m[id]
	return r, ok
}

func (o *outcomes) put(id, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.m[id]; ok {
		return
	}
	if old := o.ring[o.next]; old != "" {
		delete(o.m, old)
	}
	o.ring[o.next] = id
	o.next = (o.next + 1) % len(o.ring)
	o.m[id] = reason
}
