package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/sitewatch/sitewatch/internal/kafkarun"
	"github.com/sitewatch/sitewatch/internal/retry"
	"github.com/sitewatch/sitewatch/processors/urlchecker"
	"github.com/sitewatch/sitewatch/scheduler"
)

// Health reasons of the emitter's scheduler while it schedules nothing.
var (
	errNoAssignment = errors.New("starting: no partition of the requests topic assigned yet; scheduling no site")
	errNotMember    = errors.New("url_checker out of its group (restarting or stopping): scheduling no site")
)

// shareKeeper hands the url_checker group's assignments to the scheduler:
// the emitter schedules the sites whose requests land on the partitions
// its url_checker consumes, so that every slot is requested once whatever
// the number of emitters, and a request is consumed by the instance that
// produced it. goka reports an assignment at the start of every group
// session; the partition count comes from the topic's metadata, read
// again at each assignment (partitions added to the topic move sites).
type shareKeeper struct {
	sched  *scheduler.Scheduler
	topic  string
	client sarama.Client
	log    *slog.Logger
	health func(error)

	mu     sync.Mutex
	latest *assignment // not yet applied
	wake   chan struct{}

	count int32 // partitions of the topic, last read; owned by run
}

type assignment struct {
	parts  []int32
	member bool
}

// newShareKeeper reads the partition count of the requests topic, which
// the scheduler's first share (no partition owned) needs.
func newShareKeeper(client sarama.Client, topic string, log *slog.Logger, health func(error)) (*shareKeeper, error) {
	k := &shareKeeper{topic: topic, client: client, log: log, health: health, wake: make(chan struct{}, 1)}
	n, err := k.partitions()
	if err != nil {
		return nil, err
	}
	k.count = n
	health(errNoAssignment)
	return k, nil
}

// initial is the scheduler's share before the first assignment: nothing.
func (k *shareKeeper) initial() *scheduler.Share {
	return &scheduler.Share{Count: k.count, Partition: urlchecker.RequestPartition}
}

func (k *shareKeeper) partitions() (int32, error) {
	if err := k.client.RefreshMetadata(k.topic); err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", k.topic, err)
	}
	parts, err := k.client.Partitions(k.topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", k.topic, err)
	}
	if len(parts) == 0 {
		return 0, fmt.Errorf("topic %s has no partitions", k.topic)
	}
	return int32(len(parts)), nil
}

// assigned is urlchecker.Config.Assigned: it only records, since goka
// waits for it.
func (k *shareKeeper) assigned(parts []int32, member bool) {
	k.mu.Lock()
	k.latest = &assignment{parts: slices.Clone(parts), member: member}
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// run applies the assignments, the newest first, until ctx ends.
func (k *shareKeeper) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-k.wake:
		}
		k.mu.Lock()
		a := k.latest
		k.latest = nil
		k.mu.Unlock()
		if a != nil {
			k.apply(ctx, a)
		}
	}
}

func (k *shareKeeper) apply(ctx context.Context, a *assignment) {
	if !a.member {
		if err := k.sched.SetShare(scheduler.Share{Count: k.count, Partition: urlchecker.RequestPartition}); err != nil {
			k.log.Error("scheduler refused an empty share", "err", err) // cannot happen
		}
		k.health(errNotMember)
		k.log.Warn("url_checker left its group: this emitter schedules no site until it is assigned partitions again")
		return
	}
	// The assignment names partitions of the topic as the group saw it;
	// metadata read just before may lag a partition increase. Read until
	// it covers the assignment (or a newer assignment arrives).
	backoff := retry.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		n, err := k.partitions()
		if err == nil && (len(a.parts) == 0 || a.parts[len(a.parts)-1] < n) {
			if n != k.count {
				k.log.Info("partition count of the requests topic changed: sites move between emitters", "topic", k.topic, "was", k.count, "now", n)
			}
			k.count = n
			break
		}
		if err == nil {
			err = fmt.Errorf("assigned partition %d of %s, which has %d", a.parts[len(a.parts)-1], k.topic, n)
		}
		k.log.Warn("partition count of the requests topic not read; retrying", "err", err)
		if !retry.Sleep(ctx, backoff.Next()) || k.newer() {
			return
		}
	}
	if err := k.sched.SetShare(scheduler.Share{Count: k.count, Owned: a.parts, Partition: urlchecker.RequestPartition}); err != nil {
		k.log.Error("scheduler refused the assignment", "partitions", a.parts, "err", err)
		return
	}
	k.health(nil)
	if len(a.parts) == 0 {
		k.log.Warn("this emitter owns no partition of the requests topic (more emitters than partitions?): it schedules no site", "topic", k.topic, "partitions", k.count)
		return
	}
	k.log.Info("request partitions assigned: scheduling their sites", "topic", k.topic, "owned", a.parts, "partitions", k.count)
}

// newer reports whether an assignment newer than the one being applied
// is waiting.
func (k *shareKeeper) newer() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.latest != nil
}

// metadataClient connects the keeper's metadata reads.
func metadataClient(brokers []string, cfg *sarama.Config) (sarama.Client, error) {
	c, err := sarama.NewClient(brokers, kafkarun.Config(cfg))
	if err != nil {
		return nil, fmt.Errorf("kafka client for the requests topic's metadata: %w", err)
	}
	return c, nil
}
