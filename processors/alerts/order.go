package alerts

import (
	"sync"
	"time"

	"github.com/sitewatch/sitewatch/internal/kafkarun"
)

// Holding back events so that each URL's are applied in checked_at order.
//
// goka merges a partition's two input topics without regard to time:
// catching up on a backlog it may read the sparse failed topic an hour
// ahead (in event time) of the dense succeeded one, and applying those
// failures before the successes between them would make a flapping site
// look down. So an event is applied only once every other input topic of
// its partition has been processed past the event's own record timestamp
// (the url_checker produces a URL's checks in order), or has nothing left
// to read. Until then it waits in the URL's state (Pending), and a later
// event of the URL, or the flush visit, applies it.
//
// Live, both topics are caught up and nothing waits.

// holdIdle is how long (wall time) a topic that is behind may process
// nothing before it no longer holds events back: its backlog is not being
// read (a partition emptied by retention, a stuck fetch), and waiting
// would delay alerts without end.
const holdIdle = 5 * time.Second

// maxPending bounds the events a URL holds back; beyond it the oldest is
// applied anyway.
const maxPending = 256

// order tracks, per partition this instance processes, how far each input
// topic has been processed. It lives in memory and starts afresh at every
// rebalance.
type order struct {
	topics []string
	marks  *kafkarun.Marks
	now    func() time.Time

	mu    sync.Mutex
	parts map[int32]map[string]*topicPos
}

type topicPos struct {
	next     int64     // offset after the last processed (-1: none yet)
	newestTS time.Time // newest record timestamp processed
	lastSeen time.Time // wall time of the last processed message
}

func newOrder(marks *kafkarun.Marks, now func() time.Time, topics ...string) *order {
	return &order{topics: topics, marks: marks, now: now, parts: map[int32]map[string]*topicPos{}}
}

func (o *order) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.parts)
}

// processed records that a message of topic was processed.
func (o *order) processed(topic string, partition int32, offset int64, ts time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	pos := o.pos(topic, partition)
	if offset+1 > pos.next {
		pos.next = offset + 1
	}
	if ts.After(pos.newestTS) {
		pos.newestTS = ts
	}
	pos.lastSeen = o.now()
}

// pos returns the position of topic in partition; callers hold mu.
func (o *order) pos(topic string, partition int32) *topicPos {
	pp := o.parts[partition]
	if pp == nil {
		pp = map[string]*topicPos{}
		o.parts[partition] = pp
	}
	p := pp[topic]
	if p == nil {
		p = &topicPos{next: -1, lastSeen: o.now()}
		pp[topic] = p
	}
	return p
}

// ready reports whether an event of topic with record timestamp ts may be
// applied in partition: every other input topic has processed past ts,
// or has nothing left, or is idle.
func (o *order) ready(topic string, partition int32, ts time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	for _, other := range o.topics {
		if other == topic {
			continue
		}
		pos := o.pos(other, partition)
		behind, known := o.marks.Behind(other, partition, pos.next)
		switch {
		case !known || !behind:
		case pos.newestTS.After(ts):
			// Strictly after: timestamps have millisecond resolution, and
			// a burst of records shares one.
		case now.Sub(pos.lastSeen) > holdIdle:
		default:
			return false
		}
	}
	return true
}
