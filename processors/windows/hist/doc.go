// Package hist is the compact, mergeable response-time histogram that the
// windows processor keeps for every five-minute window instead of the list
// of all samples.
//
// A Sketch buckets values logarithmically (the DDSketch construction, with
// relative accuracy RelativeAccuracy = 1%) and also keeps the exact count,
// sum, minimum and maximum. The minimum, maximum and mean it reports are
// exact; its quantiles follow PostgreSQL's percentile_cont (linear
// interpolation between the two samples around position q·(n−1)) and are
// within 1% of what percentile_cont computes over the raw check_results
// rows.
package hist
