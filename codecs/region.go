package codecs

import (
	"errors"
	"fmt"
)

// Regions. Each region is its own check group: its emitters schedule and
// check every site once per slot, on their own requests topic and in their
// own consumer group; the result topics and everything downstream are
// shared, each result carrying its region. This file is the one home of
// the region rules: the name rule, the default, and the names of a
// region's topic and group.

// DefaultRegion is the region of an emitter without -region, and of every
// result written before results carried a region.
const DefaultRegion = "default"

// GroupURLChecker is the consumer group of the default region's checkers.
const GroupURLChecker = "url_checker"

// MaxRegionLen is the longest region name.
const MaxRegionLen = 32

// CheckRegion returns what is wrong with a region name, or nil: 1 to 32
// characters of a-z, 0-9 and '-', starting with a letter or digit (so that
// a region name is safe in a topic or group name and in a SQL identifier's
// neighbourhood, and reads the same everywhere).
func CheckRegion(name string) error {
	if name == "" {
		return errors.New("empty; want 1 to 32 characters of a-z, 0-9 and -")
	}
	if len(name) > MaxRegionLen {
		return fmt.Errorf("%q is longer than %d characters", name, MaxRegionLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		case c == '-':
			return fmt.Errorf("%q starts with '-'; want a letter or digit first", name)
		default:
			return fmt.Errorf("%q has %q; want only a-z, 0-9 and -", name, rune(c))
		}
	}
	return nil
}

// RequestsTopic is the check requests topic of a region, without the
// topic prefix: TopicRequests for DefaultRegion (the name it had before
// regions), TopicRequests + "_" + region otherwise.
func RequestsTopic(region string) string {
	if region == DefaultRegion || region == "" {
		return TopicRequests
	}
	return TopicRequests + "_" + region
}

// CheckerGroup is the url_checker consumer group of a region, without the
// topic prefix: GroupURLChecker for DefaultRegion, GroupURLChecker + "_" +
// region otherwise (its goka table is the group's name + "-table").
func CheckerGroup(region string) string {
	if region == DefaultRegion || region == "" {
		return GroupURLChecker
	}
	return GroupURLChecker + "_" + region
}

// RegionOrDefault is the region an event stands for: one without a region
// was written before regions, by the default region. Stores write it for
// values made in memory without one.
func RegionOrDefault(r string) string {
	if r == "" {
		return DefaultRegion
	}
	return r
}

func validRegion(field, r string) error {
	if err := CheckRegion(r); err != nil {
		return fmt.Errorf("field %q: %v", field, err)
	}
	return nil
}
