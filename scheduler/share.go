package scheduler

import (
	"errors"
	"fmt"
	"slices"
)

// PartitionFunc maps a site's URL to the partition of the requests topic,
// of count partitions, that its requests land on. It must be the request
// producer's own partitioner (urlchecker.RequestPartition): a site
// scheduled by the owner of another partition would be requested by two
// instances, or by none.
type PartitionFunc func(url string, count int32) int32

// Share is the part of the sites one of several instances schedules: the
// sites whose requests land on a partition it owns in the url_checker
// consumer group. The group gives each partition to one instance, so each
// site is scheduled once per slot whatever the number of instances, and
// the requests of a site are consumed by the instance that produced them.
type Share struct {
	// Count is the number of partitions of the requests topic, from the
	// topic's metadata.
	Count int32
	// Owned are the partitions this instance owns (any order); none while
	// it has no assignment (joining, out of the group).
	Owned []int32
	// Partition maps a URL to its partition. Required.
	Partition PartitionFunc
}

func (sh *Share) validate() error {
	if sh.Partition == nil {
		return errors.New("scheduler: Share.Partition is required")
	}
	if sh.Count < 0 || (sh.Count == 0 && len(sh.Owned) > 0) {
		return fmt.Errorf("scheduler: share of %d partitions owning %v", sh.Count, sh.Owned)
	}
	for _, p := range sh.Owned {
		if p < 0 || p >= sh.Count {
			return fmt.Errorf("scheduler: owned partition %d is not one of the %d partitions", p, sh.Count)
		}
	}
	return nil
}

// owner answers whether a URL is in the share, in constant time.
type owner struct {
	count     int32
	owned     []bool // by partition
	partition PartitionFunc
}

// newOwner returns nil for nil: every site is owned.
func newOwner(sh *Share) *owner {
	if sh == nil {
		return nil
	}
	o := &owner{count: sh.Count, owned: make([]bool, sh.Count), partition: sh.Partition}
	for _, p := range sh.Owned {
		o.owned[p] = true
	}
	return o
}

func (o *owner) owns(url string) bool {
	if o == nil {
		return true
	}
	if o.count == 0 {
		return false
	}
	return o.owned[o.partition(url, o.count)]
}

// ownedPartitions is the number of partitions owned.
func (o *owner) ownedPartitions() int {
	if o == nil {
		return 0
	}
	n := 0
	for _, b := range o.owned {
		if b {
			n++
		}
	}
	return n
}

// SetShare makes the scheduler schedule only the sites of sh from now on
// (a new assignment of the url_checker group). A site that stays in the
// share keeps its next slot, so a rebalance that leaves a partition where
// it was neither skips nor repeats its slots. A site that enters the share
// starts at its next slot: its previous owner requested the slots until
// its own assignment changed, and a slot begun before this one would
// arrive late. A site that leaves it gets no further request from this
// instance. An invalid share is refused and the current one kept. Safe to
// call from any goroutine, before or while Run runs.
func (s *Scheduler) SetShare(sh Share) error {
	if err := sh.validate(); err != nil {
		return err
	}
	sh.Owned = slices.Clone(sh.Owned)
	s.mu.Lock()
	s.pendingShare = &sh
	s.mu.Unlock()
	s.notify()
	return nil
}
