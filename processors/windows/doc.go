// Package windows is the goka group "windows": it turns the check results
// on status_request_succeeded and status_request_failed into five-minute
// aggregates per URL on status_windows, which the sinks write to the
// check_windows table.
//
// # What a window holds
//
// A window is [start, start+5m), aligned to the Unix epoch in UTC, and
// holds every check of one URL whose own checked_at falls in it (event
// time, so a replay cuts the same windows). Each emitted codecs.Window
// equals what SQL computes from check_results for the same URL and range:
//
//   - checks: all results; failures: outcome "down";
//   - regexp_failures: error_kind = 'regexp' (not regexp_matched = false: a
//     check that failed before its body was matched is not a regexp
//     failure);
//   - responses, response_min/avg/max_ms: exact, over the non-null
//     response_time_ms (count, sum, min and max are kept exactly);
//   - response_p50/p95/p99_ms: percentile_cont (linear interpolation
//     between the two nearest ranks, as check_windows_recomputed), computed
//     from the window's response times themselves, which the window keeps
//     up to MaxExactResponses (4,096; a site checked every second has 300):
//     equal to SQL's within 0.001 ms, and percentiles_exact is true. Above
//     the cap the window falls back to a mergeable log-bucketed histogram
//     (package hist), within 1 % relative error, and percentiles_exact is
//     false;
//   - status_counts: code as a string → count over all checks, with "0"
//     for checks that got no response, i.e. GROUP BY status_code.
//
// # When a window is emitted
//
// Each URL's group-table value keeps its watermark (newest checked_at),
// the windows still open to late events, and the events (by slot, or by
// event_id for ids that are not a slot's: see window.Slots) and response
// times counted in each, in a compact binary form (see stateCodec).
// A window is emitted as soon as the URL's watermark reaches its end. It
// stays in the table until the watermark passes end+grace (Config.Grace,
// default one minute); a late event in that time updates it and re-emits it
// with a higher revision, so a sink keeps the highest revision. The
// revision is the window's number of checks, which grows with every
// emission even across a crash that lost table writes (see Delivery). Later events are too late: they are counted
// (sitewatch_windows_too_late_events_total), logged and not applied.
//
// One refinement keeps a backlog from turning into "too late" events: goka
// interleaves a partition's two input topics by message, not by event
// time, so catching up it may read the sparse failed topic half an hour
// further (in event time) than the dense succeeded one. The drop therefore
// waits for the input topic furthest behind in the URL's partition (see
// progress); windows are still emitted at the URL's own watermark and
// corrected by later revisions.
//
// A URL that stops sending events (a site removed from the sites file) has
// no watermark to close its last window, so a ticker (Config.IdleCheck)
// visits the table and emits the changed windows of every URL that has
// been silent for IdleAfter of wall time, once grace+IdleAfter have passed
// after their end. Those windows stay in the table: a processor catching up
// on a backlog is "silent" in wall time too, and its delayed events must
// still count, so they update the window and re-emit it. A URL silent for
// ForgetAfter (default a day) is deleted from the table.
//
// # Delivery
//
// goka writes the table and status_windows independently and commits an
// input offset once both are acknowledged; a crash can come in between,
// and the processor is built so that every window still ends complete in
// status_windows, with the highest revision:
//
//   - Input offsets are committed in order (kafkarun.InOrderCommits, and
//     the delivery rule stated in internal/kafkarun): goka alone marks
//     each message when its own writes are acknowledged and Kafka keeps
//     the highest mark, so a crash could skip an earlier message whose
//     writes were still in flight.
//   - An event delivered twice (read again after a crash or rebalance,
//     which the table may already reflect, or a producer retry) is
//     recognised by its event_id and not counted again; the windows
//     already emitted are re-sent unchanged, in case the crash lost the
//     emission but not the table write.
//   - A slot checked twice (the url_checker re-checks a request
//     redelivered after a crash: same event_id, later checked_at, maybe in
//     the next window) counts once, as its first check: the event_id is
//     looked up in every window kept, and in the window last dropped when
//     it held few checks (see state.seen). check_results keeps the first
//     stored row of a slot too; both read the partition in order, so they
//     agree as long as both checks are on the same topic. A repeat whose
//     outcome changed (up, then down) is on the other result topic, and
//     the order between the two topics is not defined: then the store and
//     the windows may keep different checks of that slot.
//   - So that there is still a window to re-send, a window whose grace is
//     over is dropped from the table only once the message that last
//     emitted it is done (see params.advance).
//   - The opposite loss, an emission in status_windows whose table write
//     was lost, makes the next processor replay the events onto the older
//     state and emit the window again; the revision is the number of
//     checks, not of emissions, so the complete replay outranks what the
//     crashed run emitted.
//
// After a crash, events read again whose windows were dropped are counted
// as too late (and logged) although they were counted before the crash.
//
// A message that cannot be decoded, or whose key is not its url, goes to
// the dead-letter topic, naming the group (with its -topic-prefix) as the
// consumer, and processing goes on: the inputs use a pass-through bytes
// codec, since a goka codec error would stop the processor.
//
// A goka processor that fails is rebuilt with backoff by a
// kafkarun.Supervisor, which also tells Config.Health (and so /healthz)
// while the group is starting or restarting.
//
// # Partitioning
//
// goka writes a URL's table value to the partition its own hasher picks
// (FNV-1a of the key), and recovers each input partition's state from the
// same table partition. The result producers must therefore partition by
// goka's hasher too (a goka processor or emitter does; a plain sarama
// producer needs sarama.NewCustomHashPartitioner(goka.DefaultHasher())), or
// state recovered after a restart lands in the wrong partition.
package windows
