package hist

import (
	"math"
	"slices"
)

// RelativeAccuracy is the bound on the relative error of every value the
// sketch estimates: for a sample whose exact value is x ≥ 0, the estimate e
// satisfies |e − x| ≤ RelativeAccuracy·x. Zero is kept exactly.
const RelativeAccuracy = 0.01

var (
	// gamma is the ratio between consecutive bucket boundaries: bucket i
	// holds (gamma^(i-1), gamma^i], and its representative value
	// 2·gamma^i/(gamma+1) is within RelativeAccuracy of every value in it.
	gamma    = (1 + RelativeAccuracy) / (1 - RelativeAccuracy)
	logGamma = math.Log(gamma)
)

// Sketch is a mergeable, log-bucketed histogram of non-negative values (the
// DDSketch construction) together with the exact count, sum, minimum and
// maximum. Its size grows with the spread of the values, not their number:
// response times from 1 µs to 1000 s fit in about 1,400 buckets, and the
// few hundred checks of one window usually fill a few dozen.
//
// The zero value is an empty sketch ready to use. Fields are exported so
// that the sketch can be stored as JSON; use the methods to change them.
type Sketch struct {
	Count int64   `json:"count"`
	Sum   float64 `json:"sum"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	// Zeros counts values ≤ 0, which have no logarithm and are kept exact.
	Zeros int64 `json:"zeros,omitempty"`
	// Index and Counts are the non-empty buckets, Index ascending.
	Index  []int32 `json:"index,omitempty"`
	Counts []int64 `json:"counts,omitempty"`
}

// bucket returns the index of the bucket holding v > 0.
func bucket(v float64) int32 {
	return int32(math.Ceil(math.Log(v) / logGamma))
}

// representative returns the value that stands for every sample in bucket i.
func representative(i int32) float64 {
	return 2 * math.Pow(gamma, float64(i)) / (gamma + 1)
}

// Add records one value. Negative values and NaN are recorded as zero: the
// callers' values (response times) are validated non-negative upstream.
func (s *Sketch) Add(v float64) {
	if !(v > 0) {
		v = 0
	}
	if s.Count == 0 || v < s.Min {
		s.Min = v
	}
	if s.Count == 0 || v > s.Max {
		s.Max = v
	}
	s.Count++
	s.Sum += v
	if v == 0 {
		s.Zeros++
		return
	}
	s.addBucket(bucket(v), 1)
}

func (s *Sketch) addBucket(i int32, n int64) {
	pos, found := slices.BinarySearch(s.Index, i)
	if found {
		s.Counts[pos] += n
		return
	}
	s.Index = slices.Insert(s.Index, pos, i)
	s.Counts = slices.Insert(s.Counts, pos, n)
}

// Merge adds every value recorded in o to s, as if they had been added one
// by one (up to the order of the floating-point sum).
func (s *Sketch) Merge(o *Sketch) {
	if o == nil || o.Count == 0 {
		return
	}
	if s.Count == 0 || o.Min < s.Min {
		s.Min = o.Min
	}
	if s.Count == 0 || o.Max > s.Max {
		s.Max = o.Max
	}
	s.Count += o.Count
	s.Sum += o.Sum
	s.Zeros += o.Zeros
	for k, i := range o.Index {
		s.addBucket(i, o.Counts[k])
	}
}

// Mean returns the exact mean (sum/count) and false when the sketch is empty.
func (s *Sketch) Mean() (float64, bool) {
	if s.Count == 0 {
		return 0, false
	}
	return s.Sum / float64(s.Count), true
}

// valueAtRank estimates the rank-th smallest value (0-based). The exact
// value lies in the bucket found, so the estimate is within
// RelativeAccuracy of it; the ends are the exact minimum and maximum.
func (s *Sketch) valueAtRank(rank int64) float64 {
	switch {
	case rank <= 0:
		return s.Min
	case rank >= s.Count-1:
		return s.Max
	case rank < s.Zeros:
		return 0
	}
	seen := s.Zeros
	for k, n := range s.Counts {
		seen += n
		if rank < seen {
			// Clamping keeps the estimate inside [Min, Max], where the
			// exact value is, so it can only move closer to it.
			return min(max(representative(s.Index[k]), s.Min), s.Max)
		}
	}
	return s.Max
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) with the semantics of
// PostgreSQL's percentile_cont: the values are sorted, the position
// q·(count−1) is taken, and the two values around it are interpolated
// linearly. Each of the two values is estimated within RelativeAccuracy and
// the interpolation of two non-negative values keeps that bound, so the
// result is within RelativeAccuracy of what percentile_cont returns for the
// same values. It returns false when the sketch is empty.
func (s *Sketch) Quantile(q float64) (float64, bool) {
	if s.Count == 0 {
		return 0, false
	}
	q = min(max(q, 0), 1)
	pos := q * float64(s.Count-1)
	lo := math.Floor(pos)
	frac := pos - lo
	vlo := s.valueAtRank(int64(lo))
	if frac == 0 {
		return vlo, true
	}
	vhi := s.valueAtRank(int64(lo) + 1)
	return vlo + frac*(vhi-vlo), true
}
