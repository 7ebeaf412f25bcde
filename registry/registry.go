package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/internal/kafkarun"
)

// Entry is one site of the registry and who owns it.
type Entry struct {
	Site  config.Site
	Owner string
}

// Config configures a Registry.
type Config struct {
	Brokers []string
	// Sarama is copied, never modified.
	Sarama *sarama.Config
	// Topic is sitewatch_sites (with -topic-prefix); DeadLetters the
	// dead-letter topic.
	Topic, DeadLetters string
	// Consumer names this follower in dead letters (e.g. "emitter").
	Consumer string
	Logger   *slog.Logger
	// OnChange, when set, is called with every site after the first
	// catch-up and then after each change read, in the follower's
	// goroutine: it should hand the sites on, not block.
	OnChange func([]Entry)
	// Now defaults to time.Now.
	Now func() time.Time
}

// Registry follows sitewatch_sites and writes to it.
type Registry struct {
	cfg      Config
	log      *slog.Logger
	client   sarama.Client
	producer sarama.SyncProducer

	ready     chan struct{}
	readyOnce sync.Once

	mu      sync.Mutex
	changed *sync.Cond // broadcast when pos moves
	entries map[string]Entry
	pos     map[int32]int64 // next offset to read, per partition
	runErr  error
}

// New connects to Kafka. Run follows the topic; the write methods work
// without Run, but SyncFile and the waits for one's own writes need it.
func New(cfg Config) (*Registry, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Consumer == "" {
		cfg.Consumer = "registry"
	}
	sc := kafkarun.Config(cfg.Sarama)
	// Every writer must put a key on the same partition, or a tombstone
	// would miss the record it removes: goka's hasher, as for its tables.
	sc.Producer.Partitioner = sarama.NewCustomHashPartitioner(goka.DefaultHasher())
	sc.Producer.RequiredAcks = sarama.WaitForAll
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("sites registry: connect: %w", err)
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("sites registry: producer: %w", err)
	}
	r := &Registry{
		cfg: cfg, log: cfg.Logger.With("topic", cfg.Topic), client: client, producer: producer,
		ready: make(chan struct{}), entries: map[string]Entry{}, pos: map[int32]int64{},
	}
	r.changed = sync.NewCond(&r.mu)
	return r, nil
}

// Close releases the producer and the connection.
func (r *Registry) Close() error {
	return errors.Join(r.producer.Close(), r.client.Close())
}

// Ready is closed once the registry has read the topic up to the end
// offsets it found when Run started.
func (r *Registry) Ready() <-chan struct{} { return r.ready }

// WaitReady waits for Ready, ctx or Run's failure.
func (r *Registry) WaitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sites registry: waiting for the first read of %s: %w", r.cfg.Topic, context.Cause(ctx))
	}
}

// Sites returns every site, sorted by URL.
func (r *Registry) Sites() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sortedLocked()
}

func (r *Registry) sortedLocked() []Entry {
	out := slices.Collect(maps.Values(r.entries))
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Site.URL, b.Site.URL) })
	return out
}

// Get returns the site at url.
func (r *Registry) Get(url string) (Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[url]
	return e, ok
}

// Run follows the topic until ctx ends. It returns nil on cancellation.
func (r *Registry) Run(ctx context.Context) error {
	err := r.run(ctx)
	r.mu.Lock()
	r.runErr = err
	if err == nil {
		r.runErr = context.Canceled
	}
	r.changed.Broadcast()
	r.mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (r *Registry) run(ctx context.Context) error {
	topic := r.cfg.Topic
	if err := r.client.RefreshMetadata(topic); err != nil {
		return fmt.Errorf("sites registry: metadata of %s: %w", topic, err)
	}
	parts, err := r.client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("sites registry: partitions of %s: %w", topic, err)
	}
	// The end offsets now: the first snapshot is complete once each
	// partition is read up to its own.
	targets := make(map[int32]int64, len(parts))
	for _, p := range parts {
		newest, err := r.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("sites registry: end offset of %s/%d: %w", topic, p, err)
		}
		oldest, err := r.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("sites registry: start offset of %s/%d: %w", topic, p, err)
		}
		if newest > oldest {
			targets[p] = newest
		}
	}
	consumer, err := sarama.NewConsumerFromClient(r.client)
	if err != nil {
		return fmt.Errorf("sites registry: consumer: %w", err)
	}
	defer consumer.Close()
	msgs := make(chan *sarama.ConsumerMessage, 256)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("sites registry: consume %s/%d: %w", topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case <-ctx.Done():
					return
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					select {
					case msgs <- m:
					case <-ctx.Done():
						return
					}
				case e, ok := <-pc.Errors():
					if ok {
						// sarama retries the partition itself; this is
						// for the operator.
						r.log.Warn("sites registry: reading a partition", "partition", p, "err", e.Err)
					}
				}
			}
		}()
	}
	if len(targets) == 0 {
		r.caughtUp()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			r.apply(ctx, m)
			if t, ok := targets[m.Partition]; ok && m.Offset+1 >= t {
				delete(targets, m.Partition)
				if len(targets) == 0 {
					r.caughtUp()
					continue
				}
			}
			// Hand on a burst of records as one change.
			if len(msgs) == 0 && len(targets) == 0 && r.cfg.OnChange != nil {
				r.cfg.OnChange(r.Sites())
			}
		}
	}
}

func (r *Registry) caughtUp() {
	r.readyOnce.Do(func() {
		sites := r.Sites()
		r.log.Info("sites registry read", "sites", len(sites))
		if r.cfg.OnChange != nil {
			r.cfg.OnChange(sites)
		}
		close(r.ready)
	})
}

// apply installs one record: a tombstone removes its site, a good value
// replaces it, a bad one goes to dead letters and changes nothing.
func (r *Registry) apply(ctx context.Context, m *sarama.ConsumerMessage) {
	key := string(m.Key)
	var (
		e       Entry
		remove  = m.Value == nil
		problem error
	)
	if !remove {
		e.Site, e.Owner, problem = codecs.DecodeSite(key, m.Value)
	}
	r.mu.Lock()
	switch {
	case problem != nil:
	case remove:
		delete(r.entries, key)
	default:
		r.entries[key] = e
	}
	r.pos[m.Partition] = m.Offset + 1
	r.changed.Broadcast()
	r.mu.Unlock()
	if problem != nil {
		r.deadLetter(ctx, m, problem)
	}
}

func (r *Registry) deadLetter(ctx context.Context, m *sarama.ConsumerMessage, problem error) {
	r.log.Warn("sites registry: record sent to dead letters; the site keeps its last good value",
		"partition", m.Partition, "offset", m.Offset, "key", string(m.Key), "reason", problem)
	value, err := codecs.DeadLetterCodec{}.Encode(kafkarun.MessageDeadLetter(m, problem.Error(), r.cfg.Consumer, r.cfg.Now()))
	if err == nil {
		_, _, err = r.producer.SendMessage(&sarama.ProducerMessage{
			Topic: r.cfg.DeadLetters, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(value),
		})
	}
	if err != nil && ctx.Err() == nil {
		r.log.Error("sites registry: dead letter not written", "offset", m.Offset, "err", err)
	}
}

// Put stores site, owned by owner, and waits until this registry has read
// it back when Run is running (so that a reader sees its own write).
func (r *Registry) Put(ctx context.Context, site config.Site, owner string) error {
	value, err := codecs.EncodeSite(site, owner)
	if err != nil {
		return err
	}
	return r.send(ctx, []*sarama.ProducerMessage{{
		Topic: r.cfg.Topic, Key: sarama.StringEncoder(site.URL), Value: sarama.ByteEncoder(value),
	}})
}

// Delete writes the tombstone of the site at url.
func (r *Registry) Delete(ctx context.Context, url string) error {
	return r.send(ctx, []*sarama.ProducerMessage{{Topic: r.cfg.Topic, Key: sarama.StringEncoder(url)}})
}

func (r *Registry) send(ctx context.Context, msgs []*sarama.ProducerMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := r.producer.SendMessages(msgs); err != nil {
		return fmt.Errorf("sites registry: write to %s: %w", r.cfg.Topic, err)
	}
	return r.waitRead(ctx, msgs)
}

// waitRead waits until Run has read past every message, if Run is
// following the topic.
func (r *Registry) waitRead(ctx context.Context, msgs []*sarama.ProducerMessage) error {
	select {
	case <-r.ready:
	default:
		return nil // not following (a CLI writing straight to Kafka)
	}
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.changed.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		for r.pos[m.Partition] <= m.Offset {
			if ctx.Err() != nil {
				return fmt.Errorf("sites registry: waiting to read back a write: %w", context.Cause(ctx))
			}
			if r.runErr != nil {
				return nil
			}
			r.changed.Wait()
		}
	}
	return nil
}

// SyncResult says what SyncFile changed.
type SyncResult struct {
	Published, Removed, Unchanged int
	// Skipped are the URLs the file lists that another owner has.
	Skipped []string
}

// SyncFile makes the registry hold what the sites file f says: each of its
// sites is published, owned by the file (codecs.FileOwner(f.Path)), unless
// already stored so; the sites the file published before and no longer
// lists are removed. Sites of other owners (the API, another file) are
// left alone, also when the file lists their URL: that site is skipped
// and named in the result. Needs Run to have caught up (see Ready).
func (r *Registry) SyncFile(ctx context.Context, f *config.File) (SyncResult, error) {
	if err := r.WaitReady(ctx); err != nil {
		return SyncResult{}, err
	}
	owner := codecs.FileOwner(f.Path)
	current := r.Sites()
	byURL := make(map[string]Entry, len(current))
	for _, e := range current {
		byURL[e.Site.URL] = e
	}
	var res SyncResult
	var msgs []*sarama.ProducerMessage
	listed := make(map[string]bool, len(f.Sites))
	for _, s := range f.Sites {
		listed[s.URL] = true
		value, err := codecs.EncodeSite(s, owner)
		if err != nil {
			return SyncResult{}, err
		}
		if cur, ok := byURL[s.URL]; ok {
			if cur.Owner != owner {
				res.Skipped = append(res.Skipped, s.URL)
				continue
			}
			if old, err := codecs.EncodeSite(cur.Site, cur.Owner); err == nil && bytes.Equal(old, value) {
				res.Unchanged++
				continue
			}
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: r.cfg.Topic, Key: sarama.StringEncoder(s.URL), Value: sarama.ByteEncoder(value)})
		res.Published++
	}
	for _, e := range current {
		if e.Owner == owner && !listed[e.Site.URL] {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: r.cfg.Topic, Key: sarama.StringEncoder(e.Site.URL)})
			res.Removed++
		}
	}
	if err := r.send(ctx, msgs); err != nil {
		return SyncResult{}, err
	}
	return res, nil
}

// SitesOf returns the sites of entries, in order.
func SitesOf(entries []Entry) []config.Site {
	out := make([]config.Site, len(entries))
	for i, e := range entries {
		out[i] = e.Site
	}
	return out
}
