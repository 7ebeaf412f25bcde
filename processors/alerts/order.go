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
// its partition has been processed past the event's checked_at (plus
// orderSlack), or has nothing left to read. Until then it waits in the
// URL's state (state.held), and a later event of the URL, or the flush visit,
// applies it. Event time rather than the records' timestamps: two
// producers (one per topic) stamp a burst of records in no particular
// order across topics.
//
// Live, both topics are caught up and nothing waits.

// holdIdle is how long (wall time) a topic that is behind may process
// nothing before it no longer holds events back: its backlog is not being
// read (a partition emptied by retention), and waiting would delay alerts
// without end. Long enough that a slow first fetch after a start or a
// rebalance does not count as idle.
const holdIdle = 30 * time.Second

// orderSlack is how far apart in checked_at two checks of different URLs
// may reach a topic out of order: a check is produced when it ends, up to
// its timeout after it started.
const orderSlack = 30 * time.Second

// settle is how long an event waits before a caught-up other topic lets
// it pass: the records of one burst (an emitter's buffer sent after an
// outage) reach the two topics through separate batches, so a check's
// predecessor on the other topic may land a little after it.
const settle = time.Second

// quietFor is how long after an event was read, with the other topic's
// high-water mark standing still meanwhile, a caught-up other topic that
// has not reached the event's checked_at lets it pass. settle alone is not
// enough there: the two halves of a burst come from separate producers,
// and one half may start landing seconds after the other has (the
// emitter's buffer after a 30 s broker outage: bench/alerts -outage lost
// up to 2 % of the changes so, the first cycle after the outage; the
// cmd/processor alert tests under -race). A caught-up other topic that
// has processed a check at or after the event's checked_at needs only
// settle: its producer has reached the event's time. Live with many
// sites that is the common case; a lone site's change waits quietFor.
const quietFor = 5 * time.Second

// maxPending bounds the events a URL holds back; beyond it the oldest is
// applied anyway.
const maxPending = 256

// order tracks, per partition this instance processes, how far each input
// topic has been processed. It lives in memory and starts afresh at every
// rebalance.
type order struct {
	topics []string
	marks  positions
	now    func() time.Time

	mu    sync.Mutex
	parts map[int32]map[string]*topicPos
	// snaps are each partition's last high-water marks as asked of the
	// broker, oldest first: a claim learns of new records only with its
	// next fetch, so "nothing left to read" holds only for events known to
	// have landed settle before the marks were asked (see ready).
	snaps map[int32][]snapshot
}

// snapshot is a partition's high-water marks by topic, asked at at.
type snapshot struct {
	at time.Time
	hw map[string]int64
}

type topicPos struct {
	next     int64     // offset after the last processed (-1: none yet)
	newest   time.Time // newest checked_at processed
	lastSeen time.Time // wall time of the last processed message
}

// positions tells whether a partition has messages not processed yet:
// *kafkarun.Marks, from the consumer group's claims.
type positions interface {
	Behind(topic string, partition int32, next int64) (behind, known bool)
}

var _ positions = (*kafkarun.Marks)(nil)

func newOrder(marks positions, now func() time.Time, topics ...string) *order {
	return &order{topics: topics, marks: marks, now: now, parts: map[int32]map[string]*topicPos{}, snaps: map[int32][]snapshot{}}
}

func (o *order) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.parts)
	clear(o.snaps)
}

// refreshedAt records partition's high-water marks, asked of the broker
// at t. It keeps the newest snapshot at least settle older than t and
// those after it: ready needs no older one.
func (o *order) refreshedAt(partition int32, t time.Time, hw map[string]int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	snaps := append(o.snaps[partition], snapshot{at: t, hw: hw})
	if i := snapshotBefore(snaps, quietFor); i > 0 {
		snaps = append(snaps[:0], snaps[i:]...)
	}
	o.snaps[partition] = snaps
}

// snapshotBefore returns the index of the newest snapshot taken at least
// d before the newest one, or -1.
func snapshotBefore(snaps []snapshot, d time.Duration) int {
	if len(snaps) == 0 {
		return -1
	}
	latest := snaps[len(snaps)-1].at
	for i := len(snaps) - 1; i >= 0; i-- {
		if !snaps[i].at.Add(d).After(latest) {
			return i
		}
	}
	return -1
}

// quiet reports whether topic's high-water mark in the snapshots stood
// still for at least quietFor up to the newest one; callers hold mu.
func quiet(snaps []snapshot, topic string) bool {
	i := snapshotBefore(snaps, quietFor)
	if i < 0 {
		return false
	}
	then, ok1 := snaps[i].hw[topic]
	now, ok2 := snaps[len(snaps)-1].hw[topic]
	return ok1 && ok2 && then == now
}

// landedBeforeQuiet reports whether the message of topic at offset was in
// its topic (below its high-water mark) at the newest snapshot taken
// quietFor before the newest one; callers hold mu.
func landedBeforeQuiet(snaps []snapshot, topic string, offset int64) bool {
	i := snapshotBefore(snaps, quietFor)
	if i < 0 || offset < 0 {
		return false
	}
	hw, ok := snaps[i].hw[topic]
	return ok && offset < hw
}

// processed records that a message of topic was processed.
func (o *order) processed(topic string, partition int32, offset int64, checkedAt time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	pos := o.pos(topic, partition)
	if offset+1 > pos.next {
		pos.next = offset + 1
	}
	if checkedAt.After(pos.newest) {
		pos.newest = checkedAt
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

// ready reports whether an event of topic at offset, checked at t, held
// since heldAt, may be applied in partition: every other input topic has
// processed past t+orderSlack; or had nothing left to read when its marks
// were asked settle after heldAt and has processed a check from t on; or
// had nothing left to read when its marks were asked quietFor after heldAt
// and no new records landed in it over the last quietFor; or has nothing
// left to read, no new records landed in it over the last quietFor, and
// the event had landed already when that quiet time began (a backlog:
// any half of its burst on the other topic landed within quietFor of it,
// and so before the newest marks, and has been processed); or is idle. A
// negative offset is unknown (an event held by an older version).
//
// The backlog rule is what keeps a processor that catches up from holding
// every event quietFor: with one topic dense and the other quiet (an hour
// of successes, no failures) each URL held maxPending events, and its
// table value, rewritten at every event, grew to ~24 KB. It needs
// quietFor, not settle: settle after the landing lost order when one
// topic's half of a burst landed more than settle after the other's
// (cmd/processor TestAlertsOnePerChange under -race).
func (o *order) ready(topic string, partition int32, offset int64, t, heldAt time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	snaps := o.snaps[partition]
	var latest time.Time
	if len(snaps) > 0 {
		latest = snaps[len(snaps)-1].at
	}
	for _, other := range o.topics {
		if other == topic {
			continue
		}
		pos := o.pos(other, partition)
		behind, known := o.marks.Behind(other, partition, pos.next)
		switch {
		case !known: // goka's tester: one topic at a time, in order
		case pos.newest.After(t.Add(orderSlack)):
		case !behind && latest.After(heldAt.Add(settle)) && !pos.newest.Before(t):
		case !behind && latest.After(heldAt.Add(quietFor)) && quiet(snaps, other):
		case !behind && landedBeforeQuiet(snaps, topic, offset) && quiet(snaps, other):
		case now.Sub(pos.lastSeen) > holdIdle:
		default:
			return false
		}
	}
	return true
}
