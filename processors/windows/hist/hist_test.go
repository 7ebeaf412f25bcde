package hist

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// percentileCont is PostgreSQL's percentile_cont over vs, computed exactly.
func percentileCont(vs []float64, q float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := math.Floor(pos)
	hi := math.Ceil(pos)
	return s[int(lo)] + (pos-lo)*(s[int(hi)]-s[int(lo)])
}

func datasets() map[string][]float64 {
	r := rand.New(rand.NewPCG(1, 2))
	lognormal := make([]float64, 1000)
	for i := range lognormal {
		lognormal[i] = math.Exp(4 + 1.2*r.NormFloat64()) // median ≈ 55 ms, long tail
	}
	uniform := make([]float64, 300)
	for i := range uniform {
		uniform[i] = 1 + 999*r.Float64()
	}
	bimodal := make([]float64, 0, 200)
	for i := range 200 {
		if i%10 == 0 {
			bimodal = append(bimodal, 5000+100*r.Float64()) // timeouts
		} else {
			bimodal = append(bimodal, 20+5*r.Float64())
		}
	}
	withZeros := []float64{0, 0, 0.0004, 3, 3, 7.25, 11, 12.5, 1000}
	return map[string][]float64{
		"lognormal 1000":    lognormal,
		"uniform 300":       uniform,
		"bimodal 200":       bimodal,
		"zeros and tiny":    withZeros,
		"single sample":     {123.456},
		"two samples":       {10, 20},
		"all equal":         {42, 42, 42, 42, 42},
		"five per window":   {88.1, 90.3, 87.7, 250.2, 91.9},
		"sub-millisecond":   {0.12, 0.13, 0.5, 0.7, 0.9, 0.95},
		"huge (timeout ms)": {1e6, 2e6, 9.99e8},
	}
}

func TestQuantileWithinRelativeAccuracyOfPercentileCont(t *testing.T) {
	qs := []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1}
	for name, vs := range datasets() {
		t.Run(name, func(t *testing.T) {
			var s Sketch
			for _, v := range vs {
				s.Add(v)
			}
			for _, q := range qs {
				got, ok := s.Quantile(q)
				if !ok {
					t.Fatalf("q=%v: empty", q)
				}
				want := percentileCont(vs, q)
				// The tiny slack absorbs float rounding at bucket edges only.
				if bound := RelativeAccuracy*want*(1+1e-9) + 1e-12; math.Abs(got-want) > bound {
					t.Errorf("q=%v: got %v, percentile_cont %v, error %v > bound %v", q, got, want, math.Abs(got-want), bound)
				}
			}
			if got, want := s.Min, slices.Min(vs); got != want {
				t.Errorf("min %v, want exact %v", got, want)
			}
			if got, want := s.Max, slices.Max(vs); got != want {
				t.Errorf("max %v, want exact %v", got, want)
			}
			var sum float64
			for _, v := range vs {
				sum += v
			}
			mean, _ := s.Mean()
			if want := sum / float64(len(vs)); math.Abs(mean-want) > 1e-12*want {
				t.Errorf("mean %v, want %v", mean, want)
			}
		})
	}
}

func TestBucketsStayCompact(t *testing.T) {
	var s Sketch
	r := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		s.Add(math.Exp(4 + 1.2*r.NormFloat64()))
	}
	// 100,000 samples over about five orders of magnitude: a few hundred
	// buckets at most, never one per sample.
	if len(s.Index) > 700 {
		t.Fatalf("%d buckets for 100000 samples", len(s.Index))
	}
	if len(s.Index) != len(s.Counts) || !slices.IsSorted(s.Index) {
		t.Fatalf("buckets not sorted or mismatched: %d index, %d counts", len(s.Index), len(s.Counts))
	}
}

func TestMergeEqualsAddingAll(t *testing.T) {
	vs := datasets()["lognormal 1000"]
	var all, a, b Sketch
	for i, v := range vs {
		all.Add(v)
		if i%3 == 0 {
			a.Add(v)
		} else {
			b.Add(v)
		}
	}
	a.Merge(&b)
	a.Merge(nil)
	a.Merge(&Sketch{})
	if a.Count != all.Count || a.Min != all.Min || a.Max != all.Max || a.Zeros != all.Zeros {
		t.Fatalf("merged summary %+v differs from %+v", a, all)
	}
	if !slices.Equal(a.Index, all.Index) || !slices.Equal(a.Counts, all.Counts) {
		t.Fatal("merged buckets differ from adding all values")
	}
	if math.Abs(a.Sum-all.Sum) > 1e-9*all.Sum {
		t.Fatalf("merged sum %v, want %v", a.Sum, all.Sum)
	}
}

func TestEmptyAndJSONRoundTrip(t *testing.T) {
	var empty Sketch
	if _, ok := empty.Quantile(0.5); ok {
		t.Fatal("quantile of an empty sketch reported ok")
	}
	if _, ok := empty.Mean(); ok {
		t.Fatal("mean of an empty sketch reported ok")
	}

	var s Sketch
	for _, v := range datasets()["bimodal 200"] {
		s.Add(v)
	}
	data, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	var back Sketch
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for _, q := range []float64{0.5, 0.95, 0.99} {
		a, _ := s.Quantile(q)
		b, _ := back.Quantile(q)
		if a != b {
			t.Fatalf("q=%v after JSON round trip: %v, want %v", q, b, a)
		}
	}
}
