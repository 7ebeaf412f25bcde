package windows

import (
	"sync"
	"time"
)

// topicIdle is how long (wall time) an input topic of a partition may
// deliver nothing before it no longer holds back the drop mark. A topic
// that lags behind the other delivers continuously (it has a backlog), so
// only a topic without traffic goes idle.
const topicIdle = 30 * time.Second

// holdAll is the low mark of a partition with an input topic that has not
// delivered yet but may still: no window is dropped meanwhile.
var holdAll = time.Unix(0, 0).UTC()

// progress tracks, for each partition this instance consumes, how far in
// event time each input topic has been read. goka merges a partition's two
// input topics into one stream without regard to event time: catching up
// on a backlog, it reads the sparse failed topic much faster (in event
// time) than the dense succeeded one, or reads one topic's whole backlog
// before the other's first message. The low mark, the position of the
// topic furthest behind, keeps the other topic's newer events from
// dropping windows the lagging topic still has events for.
//
// It lives in memory only and starts afresh at every rebalance; the table
// keeps only what is true of a URL whatever the partition's read position.
type progress struct {
	topics []string
	mu     sync.Mutex
	parts  map[int32]*partProgress
}

type partProgress struct {
	// since is the wall time of the partition's first delivery since the
	// last rebalance.
	since time.Time
	marks map[string]*topicMark
}

type topicMark struct {
	newest   time.Time // newest checked_at read (capped like the watermark)
	lastSeen time.Time // wall time of the last delivery
}

func newProgress(topics ...string) *progress {
	return &progress{topics: topics, parts: map[int32]*partProgress{}}
}

// reset forgets every position: after a rebalance, reading resumes at the
// committed offsets, which may be behind the positions seen.
func (pr *progress) reset() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	clear(pr.parts)
}

// observe records that topic delivered an event with event time t to
// partition at wall time now, and returns the partition's low mark: the
// oldest position among its input topics that delivered within topicIdle,
// or holdAll while a topic has not delivered yet since the partition
// started. The zero time means no constraint.
func (pr *progress) observe(partition int32, topic string, t, now time.Time) time.Time {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pp := pr.parts[partition]
	if pp == nil {
		pp = &partProgress{since: now, marks: map[string]*topicMark{}}
		pr.parts[partition] = pp
	}
	m := pp.marks[topic]
	switch {
	case m == nil:
		m = &topicMark{newest: t}
		pp.marks[topic] = m
	case now.Sub(m.lastSeen) > topicIdle:
		// After a pause the old position says nothing about where reading
		// resumed.
		m.newest = t
	case t.After(m.newest):
		m.newest = t
	}
	m.lastSeen = now

	var low time.Time
	for _, name := range pr.topics {
		m := pp.marks[name]
		switch {
		case m == nil:
			if now.Sub(pp.since) <= topicIdle {
				return holdAll
			}
		case now.Sub(m.lastSeen) > topicIdle:
			// Idle: no backlog, so nothing of it is behind.
		case low.IsZero() || m.newest.Before(low):
			low = m.newest
		}
	}
	return low
}
