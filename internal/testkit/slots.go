package testkit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/scheduler"
)

// SlotLog follows the request and result topics of a running pipeline
// and counts, per check group, site and slot, the requests produced and
// the checks reported: the proof that each slot is requested and checked
// once whatever the number of emitters (the fleet test and bench/fleet).
type SlotLog struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	// requestGroup and resultGroup name the check group (region) of a
	// record.
	requestGroup map[string]string
	resultGroup  func(*codecs.Result) string

	admin  sarama.Client
	topics []string

	mu       sync.Mutex
	next     map[string]map[int32]int64 // offset after the last record read
	requests map[SlotKey]int
	checks   map[SlotKey][]Check
	bad      int
}

// SlotKey is one slot of one site in one check group.
type SlotKey struct {
	Group string
	URL   string
	Slot  int64 // scheduled_at, ns since the epoch
}

// Check is one result as read back.
type Check struct {
	Checker   string
	CheckedAt time.Time
}

// FollowSlots reads requestTopics (each naming its check group) and
// resultTopics from their start until Close. resultGroup tells a result's
// group; nil puts every result in group "".
func FollowSlots(addrs []string, requestTopics map[string]string, resultTopics []string, resultGroup func(*codecs.Result) string) (*SlotLog, error) {
	topics := append([]string(nil), resultTopics...)
	for tp := range requestTopics {
		topics = append(topics, tp)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		return nil, fmt.Errorf("follow slots: %w", err)
	}
	if resultGroup == nil {
		resultGroup = func(*codecs.Result) string { return "" }
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClient(addrs, sc)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("follow slots: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &SlotLog{cl: cl, cancel: cancel, done: make(chan struct{}), requestGroup: requestTopics, resultGroup: resultGroup,
		admin: admin, topics: topics, next: map[string]map[int32]int64{},
		requests: map[SlotKey]int{}, checks: map[SlotKey][]Check{}}
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			l.cl.PollFetches(ctx).EachRecord(l.add)
		}
	}()
	return l, nil
}

func (l *SlotLog) add(r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next[r.Topic] == nil {
		l.next[r.Topic] = map[int32]int64{}
	}
	l.next[r.Topic][r.Partition] = r.Offset + 1
	if group, ok := l.requestGroup[r.Topic]; ok {
		req, err := codecs.DecodeRequest(r.Value)
		if err != nil {
			l.bad++
			return
		}
		l.requests[SlotKey{group, req.URL, req.ScheduledAt.UnixNano()}]++
		return
	}
	res, err := codecs.DecodeResult(r.Value)
	if err != nil {
		l.bad++
		return
	}
	k := SlotKey{l.resultGroup(res), res.URL, res.ScheduledAt.UnixNano()}
	l.checks[k] = append(l.checks[k], Check{Checker: res.Checker, CheckedAt: res.CheckedAt})
}

// Close stops following.
func (l *SlotLog) Close() {
	l.cancel()
	<-l.done
	l.cl.Close()
	_ = l.admin.Close()
}

// Sync waits until everything produced before it was called has been
// read, so that a tally after it is complete.
func (l *SlotLog) Sync(ctx context.Context) error {
	ends := map[string]map[int32]int64{}
	for _, tp := range l.topics {
		ps, err := l.admin.Partitions(tp)
		if err != nil {
			return fmt.Errorf("partitions of %s: %w", tp, err)
		}
		ends[tp] = map[int32]int64{}
		for _, p := range ps {
			if ends[tp][p], err = l.admin.GetOffset(tp, p, sarama.OffsetNewest); err != nil {
				return fmt.Errorf("end offset of %s/%d: %w", tp, p, err)
			}
		}
	}
	for {
		behind := 0
		l.mu.Lock()
		for tp, m := range ends {
			for p, end := range m {
				if l.next[tp][p] < end {
					behind++
				}
			}
		}
		l.mu.Unlock()
		if behind == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("follow slots: %d partitions not read up to their end: %w", behind, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Site is what the slot arithmetic needs of a site.
type Site struct {
	URL      string
	Interval time.Duration
}

// Slots lists the slots of a site that begin in [from, to).
func (s Site) Slots(from, to time.Time) []time.Time {
	var out []time.Time
	at := scheduler.SlotStart(s.URL, s.Interval, from)
	if at.Before(from) {
		at = at.Add(s.Interval)
	}
	for ; at.Before(to); at = at.Add(s.Interval) {
		out = append(out, at)
	}
	return out
}

// SlotTally counts what happened to the slots of a window.
type SlotTally struct {
	Slots     int // slots that began in the window, over the sites
	Requests  int // requests produced for them (copies included)
	Requested int // slots with at least one request
	Checks    int // results for them (copies included)
	Checked   int // slots with at least one result
	Twice     int // results beyond the first of a slot
	Late      int // results checked after their slot had ended
	// Checkers counts the slots checked by each checker instance.
	Checkers map[string]int
	// Unrequested and Unchecked are a few of the slots without a request
	// and without a check, for the diagnosis.
	Unrequested, Unchecked []SlotKey
}

// RequestsPerSlot is Requests / Slots: 1 when every slot was requested
// once, N when N emitters each requested every site.
func (t SlotTally) RequestsPerSlot() float64 { return ratio(t.Requests, t.Slots) }

// ChecksPerSlot is Checks / Slots.
func (t SlotTally) ChecksPerSlot() float64 { return ratio(t.Checks, t.Slots) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (t SlotTally) String() string {
	return fmt.Sprintf("%d slots: %d requests (%.3f per slot), %d requested; %d checks (%.3f per slot), %d checked, %d twice, %d late",
		t.Slots, t.Requests, t.RequestsPerSlot(), t.Requested, t.Checks, t.ChecksPerSlot(), t.Checked, t.Twice, t.Late)
}

// Tally counts the requests and checks of group for the slots of sites
// that began in [from, to).
func (l *SlotLog) Tally(group string, sites []Site, from, to time.Time) SlotTally {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := SlotTally{Checkers: map[string]int{}}
	for _, s := range sites {
		for _, slot := range s.Slots(from, to) {
			k := SlotKey{group, s.URL, slot.UnixNano()}
			t.Slots++
			if n := l.requests[k]; n > 0 {
				t.Requests += n
				t.Requested++
			} else if len(t.Unrequested) < 5 {
				t.Unrequested = append(t.Unrequested, k)
			}
			cs := l.checks[k]
			if len(cs) == 0 {
				if len(t.Unchecked) < 5 {
					t.Unchecked = append(t.Unchecked, k)
				}
				continue
			}
			t.Checks += len(cs)
			t.Checked++
			t.Twice += len(cs) - 1
			t.Checkers[cs[0].Checker]++
			for _, c := range cs {
				if !c.CheckedAt.Before(slot.Add(s.Interval)) {
					t.Late++
				}
			}
		}
	}
	return t
}

// CheckedBy returns the sites of group whose slots in [from, to) were
// checked by checker.
func (l *SlotLog) CheckedBy(group, checker string, sites []Site, from, to time.Time) []Site {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Site
	for _, s := range sites {
		for _, slot := range s.Slots(from, to) {
			if cs := l.checks[SlotKey{group, s.URL, slot.UnixNano()}]; len(cs) > 0 && cs[0].Checker == checker {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// FirstChecked returns, for each site, the start of its first slot
// beginning at or after from that a checker other than except checked;
// sites without one are missing from the map.
func (l *SlotLog) FirstChecked(group, except string, sites []Site, from, to time.Time) map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]time.Time{}
	for _, s := range sites {
		for _, slot := range s.Slots(from, to) {
			cs := l.checks[SlotKey{group, s.URL, slot.UnixNano()}]
			if len(cs) > 0 && cs[0].Checker != except {
				out[s.URL] = slot
				break
			}
		}
	}
	return out
}

// FirstRequested returns, for each site, the start of its first slot
// beginning at or after from that was requested; sites without one are
// missing from the map.
func (l *SlotLog) FirstRequested(group string, sites []Site, from, to time.Time) map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]time.Time{}
	for _, s := range sites {
		for _, slot := range s.Slots(from, to) {
			if l.requests[SlotKey{group, s.URL, slot.UnixNano()}] > 0 {
				out[s.URL] = slot
				break
			}
		}
	}
	return out
}

// Undecodable is the number of records that did not decode.
func (l *SlotLog) Undecodable() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bad
}

// RequestedSlots lists, in order, the slots of url in group beginning in
// [from, to) that were requested, whatever the interval they were
// scheduled at: what a site's edit or removal did to its requests.
func (l *SlotLog) RequestedSlots(group, url string, from, to time.Time) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Time
	for k, n := range l.requests {
		if n > 0 && k.Group == group && k.URL == url && k.Slot >= from.UnixNano() && k.Slot < to.UnixNano() {
			out = append(out, time.Unix(0, k.Slot))
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}
