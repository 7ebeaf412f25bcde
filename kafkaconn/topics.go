package kafkaconn

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/internal/kafkarun"
	"github.com/sitewatch/sitewatch/internal/retry"
)

// Default topic names from the contract; codecs holds them next to the
// payloads they carry.
const (
	TopicRequests    = codecs.TopicRequests
	TopicSucceeded   = codecs.TopicSucceeded
	TopicFailed      = codecs.TopicFailed
	TopicWindows     = codecs.TopicWindows
	TopicDeadLetters = codecs.TopicDeadLetters
	// TopicStatusChanges carries the alerts processor's state changes
	// (codecs.StatusChange), keyed by URL.
	TopicStatusChanges = "status_changes"
	// TopicSites is the sites registry (compacted; see EnsureSitesTopic).
	TopicSites = codecs.TopicSites
)

// Topics are the names sitewatch uses, with the prefix applied.
type Topics struct {
	Requests, Succeeded, Failed, Windows, DeadLetters, StatusChanges goka.Stream
	// Sites is compacted, unlike the streams: it is not in All; create it
	// with EnsureSitesTopic.
	Sites goka.Stream
}

// Topics returns the topic names with -topic-prefix prepended.
func (o *Options) Topics() Topics {
	p := o.TopicPrefix
	return Topics{
		Requests:      goka.Stream(p + TopicRequests),
		Succeeded:     goka.Stream(p + TopicSucceeded),
		Failed:        goka.Stream(p + TopicFailed),
		Windows:       goka.Stream(p + TopicWindows),
		DeadLetters:   goka.Stream(p + TopicDeadLetters),
		StatusChanges: goka.Stream(p + TopicStatusChanges),
		Sites:         goka.Stream(p + TopicSites),
	}
}

// All lists every stream topic.
func (t Topics) All() []goka.Stream {
	return []goka.Stream{t.Requests, t.Succeeded, t.Failed, t.Windows, t.DeadLetters, t.StatusChanges}
}

// RegionRequests is the check requests topic of a region, prefixed
// (codecs.RequestsTopic: the default region's is Topics().Requests).
func (o *Options) RegionRequests(region string) goka.Stream {
	return goka.Stream(o.TopicPrefix + codecs.RequestsTopic(region))
}

// CheckerGroup is the url_checker consumer group of a region, prefixed
// (codecs.CheckerGroup).
func (o *Options) CheckerGroup(region string) goka.Group {
	return o.Group(codecs.CheckerGroup(region))
}

// Group prefixes a consumer group (and thereby its goka table topic) so
// that two deployments sharing a cluster under different prefixes do not
// share state.
func (o *Options) Group(name string) goka.Group { return goka.Group(o.TopicPrefix + name) }

// TopicManagerConfig is goka's topic manager configuration for these
// options: our replication and retention instead of goka's defaults
// (replication 2, one hour of retention), and a warning, not silence, when
// an existing topic differs.
func (o *Options) TopicManagerConfig() *goka.TopicManagerConfig {
	tm := goka.NewTopicManagerConfig()
	tm.Table.Replication = o.Replication
	tm.Stream.Replication = o.Replication
	tm.Stream.Retention = o.Retention
	if tm.Stream.Retention <= 0 {
		tm.Stream.Retention = 7 * 24 * time.Hour
	}
	tm.CreateTopicTimeout = 30 * time.Second
	tm.MismatchBehavior = goka.TMConfigMismatchBehaviorWarn
	return tm
}

// TopicManagerBuilder is the builder to hand to goka processors, views and
// emitters so that the tables they create follow these options.
func (o *Options) TopicManagerBuilder(cfg *sarama.Config) goka.TopicManagerBuilder {
	return goka.TopicManagerBuilderWithConfig(cfg, o.TopicManagerConfig())
}

// EnsureTopics creates the given stream topics when missing (partitions,
// replication and retention from the options) and checks existing ones,
// logging a warning when they differ. A broker that is not reachable yet is
// retried with backoff until ctx ends; an authentication or TLS failure is
// returned at once, since waiting cannot fix it.
func (o *Options) EnsureTopics(ctx context.Context, cfg *sarama.Config, logger *slog.Logger, topics ...goka.Stream) error {
	return o.ensure(ctx, cfg, logger, o.TopicManagerConfig(), "create kafka topics", func(tm goka.TopicManager) error {
		for _, t := range topics {
			if err := tm.EnsureStreamExists(string(t), o.Partitions); err != nil {
				return fmt.Errorf("topic %s: %w", t, err)
			}
		}
		return nil
	})
}

// EnsureSitesTopic creates the sites registry topic when missing, compacted
// (cleanup.policy=compact, so every site's latest record is kept however
// old), with the options' partitions and replication, and checks an
// existing one. Retries as EnsureTopics does.
func (o *Options) EnsureSitesTopic(ctx context.Context, cfg *sarama.Config, logger *slog.Logger) error {
	topic := string(o.Topics().Sites)
	tmc := o.TopicManagerConfig()
	// The registry's partition count is the first creator's (the
	// all-in-one makes 3, a processor 12): any works, since every writer
	// hashes by the topic's real count. goka would warn of the mismatch on
	// the standard log, which reaches a `sitewatch sites` user's terminal
	// unformatted.
	tmc.MismatchBehavior = goka.TMConfigMismatchBehaviorIgnore
	return o.ensure(ctx, cfg, logger, tmc, "create the sites topic", func(tm goka.TopicManager) error {
		// goka's table topics are exactly this: compacted and keyed.
		if err := tm.EnsureTableExists(topic, o.Partitions); err != nil {
			return fmt.Errorf("topic %s: %w", topic, err)
		}
		return nil
	})
}

// ensure runs fn with a topic manager, retrying an unreachable broker with
// backoff until ctx or -kafka-start-timeout ends.
func (o *Options) ensure(ctx context.Context, cfg *sarama.Config, logger *slog.Logger, tmc *goka.TopicManagerConfig, what string, fn func(goka.TopicManager) error) error {
	if o.StartTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.StartTimeout, fmt.Errorf("no answer within -kafka-start-timeout %v", o.StartTimeout))
		defer cancel()
	}
	return retry.Do(ctx, logger, what, retry.Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second}, func(ctx context.Context) error {
		if err := o.Probe(ctx, cfg); err != nil {
			return err
		}
		tm, err := goka.NewTopicManager(o.Brokers, cfg, tmc)
		if err != nil {
			return Explain(o, err)
		}
		defer tm.Close()
		return fn(kafkarun.CreateRaceTolerant(tm))
	})
}
