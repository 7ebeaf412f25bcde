package kafkarun

import (
	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// Config returns a private copy of base (goka.DefaultConfig() when nil)
// with what every sitewatch consumer and producer relies on forced on:
//
//   - a group without committed offsets reads from the oldest offset, so
//     events produced before a consumer first started are not lost;
//   - consumer errors and producer successes and errors are returned, so
//     that they are logged and acknowledged rather than dropped.
//
// Each component, and each goka builder, gets its own copy: goka's builders
// write ClientID and the partitioner into the configuration they are given.
func Config(base *sarama.Config) *sarama.Config {
	var c sarama.Config
	if base == nil {
		c = *goka.DefaultConfig()
	} else {
		c = *base
	}
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Return.Errors = true
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	return &c
}

// GokaConfig is Config for a goka processor: goka's copartitioning
// assignment keeps every input and the group table of a partition on the
// same instance, which a group with a table needs.
func GokaConfig(base *sarama.Config) *sarama.Config {
	c := Config(base)
	c.Consumer.Group.Rebalance.Strategy = nil
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{goka.CopartitioningStrategy}
	return c
}

// ProcessorOptions are the goka options that connect a processor through
// copies of base: consumer group (committing in order, see InOrderCommits),
// partition consumer, producer and topic manager. tm configures the topics
// goka creates (the group table); goka's defaults when nil. A table that
// another process creates at the same moment counts as existing (see
// createRaceTolerant). marks may be nil.
func ProcessorOptions(brokers []string, base *sarama.Config, tm goka.TopicManagerBuilder, marks *Marks) []goka.ProcessorOption {
	if tm == nil {
		tm = goka.TopicManagerBuilderWithConfig(GokaConfig(base), goka.NewTopicManagerConfig())
	}
	return []goka.ProcessorOption{
		goka.WithConsumerGroupBuilder(InOrderCommits(goka.ConsumerGroupBuilderWithConfig(GokaConfig(base)), marks)),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(GokaConfig(base))),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(GokaConfig(base))),
		goka.WithTopicManagerBuilder(createRaceTolerant(tm)),
	}
}
