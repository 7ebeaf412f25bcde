package kafkarun

import (
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
)

// DeadLetter is the dead-letter event for a message consumed from topic at
// partition and offset that consumer could not use, for reason.
func DeadLetter(topic string, partition int32, offset int64, key, value []byte, reason, consumer string, at time.Time) *codecs.DeadLetter {
	return &codecs.DeadLetter{
		Topic:     topic,
		Partition: partition,
		Offset:    offset,
		Key:       key,
		Value:     value,
		Reason:    reason,
		Consumer:  consumer,
		FailedAt:  at.UTC(),
	}
}

// MessageDeadLetter is DeadLetter for a message read with sarama.
func MessageDeadLetter(msg *sarama.ConsumerMessage, reason, consumer string, at time.Time) *codecs.DeadLetter {
	return DeadLetter(msg.Topic, msg.Partition, msg.Offset, msg.Key, msg.Value, reason, consumer, at)
}

// DeadLetters sends the messages a goka processor cannot use to the
// dead-letter topic (the processor's graph declares it as an output with
// codecs.DeadLetterCodec), counted and logged, and consumption goes on.
type DeadLetters struct {
	// Topic is the dead-letter topic, Consumer the name recorded in each
	// dead letter: the goka group, with its -topic-prefix.
	Topic    goka.Stream
	Consumer string
	Log      *slog.Logger
	// Count, when not nil, counts the dead letters.
	Count prometheus.Counter
	// Now defaults to time.Now.
	Now func() time.Time
}

// Send emits the dead letter of the message gctx is processing, whose raw
// value is value.
func (d DeadLetters) Send(gctx goka.Context, value []byte, reason error) {
	if d.Count != nil {
		d.Count.Inc()
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	d.Log.Warn("message sent to dead letters",
		"topic", string(gctx.Topic()), "partition", gctx.Partition(), "offset", gctx.Offset(),
		"key", gctx.Key(), "reason", reason)
	gctx.Emit(d.Topic, gctx.Key(), DeadLetter(string(gctx.Topic()), gctx.Partition(), gctx.Offset(),
		[]byte(gctx.Key()), value, reason.Error(), d.Consumer, now()))
}
