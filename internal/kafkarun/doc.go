// Package kafkarun is the Kafka runtime plumbing shared by sitewatch's goka
// processors (processors/urlchecker, processors/windows) and its sarama
// sinks (sinks/), written once:
//
//   - Supervisor runs a goka processor, rebuilds it with backoff after a
//     failure, and reports readiness (and its loss) to the health report;
//   - InOrderCommits commits each input partition in offset order, however
//     out of order its messages finish;
//   - Config and GokaConfig are the private sarama configuration copies
//     every component takes, ProcessorOptions the goka options built on them;
//   - DeadLetter and DeadLetters build and send dead-letter events;
//   - Printer routes goka's and sarama's logs into slog.
//
// # Delivery rule
//
// This is the one statement of how sitewatch delivers; the processors'
// docs, docs/CONTRACT.md and the tests refer to it.
//
// Every input offset of a goka processor or a sink is committed only after
// its message is done: its outputs (results, windows, dead letters, table
// writes) acknowledged by Kafka, or its rows committed in the store. And
// it is committed in order: an offset is committed only after every
// earlier offset of its partition is done (InOrderCommits; a sink commits
// the last message of a batch only after the whole batch is stored). A
// crash (kill -9, a lost broker connection, a rebalance) therefore
// redelivers every message from the first one not done, and loses none.
// A processor that holds a key's state in memory for a while, writing it
// behind (WriteBehind: the windows and alerts processors, while they drain
// a backlog), holds the
// messages applied to it (Marks.Hold): they are not done, whatever goka
// thinks, until the write that has them is acknowledged (ReleaseAfter,
// Release).
//
// So a slot is checked at least once: a request redelivered after a crash
// may be checked again, and its new result carries the same event_id (the
// request id). Each slot is stored exactly once: check_results keeps one
// row per event_id (the first stored wins), and the windows processor
// counts each event_id once. At-least-once check, exactly-once row.
package kafkarun
