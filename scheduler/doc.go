// Package scheduler turns the sites of the sites file into check requests:
// one codecs.Request per site and interval, handed to an injected Emit
// function that puts it on status_request_created for the url_checker
// group.
//
// Slots are aligned to the Unix epoch: slot k of a site starts at
// k*interval + phase, where phase is a hash of the site's URL modulo its
// interval. The phase spreads sites evenly over the interval (10,000 sites
// with a 60 s interval do not all fire at second 0), and because it depends
// only on the URL and the interval it is the same after a restart, after a
// reload and in every emitter instance. Every instance therefore produces
// the same scheduled_at and request_id for the same slot, and url_checker's
// group table can drop the second request for a slot it has already seen.
//
// With several emitters each schedules only its Share: the sites whose
// requests land on the partitions its url_checker owns in the consumer
// group, so requests per slot are the sites whatever the number of
// instances. SetShare applies a new assignment: sites that stay keep their
// next slot, sites taken over start at their next slot (their previous
// owner requested the earlier ones), sites handed over get no further
// request here. Registry changes (Replace) are kept for every site and
// reach the requests of the owned ones, so a site taken over later is
// requested as the registry has it then.
//
// One goroutine keeps all sites in a min-heap ordered by their next slot and
// sleeps until the earliest one, so the cost is one timer, not one per site.
// A slot whose whole interval passed without being requested (the process
// was suspended, the clock jumped) is counted as missed rather than
// requested late: its request would be stale anyway.
package scheduler
