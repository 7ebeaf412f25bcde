// Package faults is sitewatch's fault-injection suite: it runs the real
// emitter and processor binaries as child processes against an in-process
// Kafka (kfake) and a PostgreSQL database per test, injects faults (kill -9
// at random points, Kafka errors and broker restarts, a cut or locked
// database, malformed messages, a broken sites file, hostile websites) and
// checks that afterwards every event is stored exactly once and every
// closed window equals what SQL recomputes from the stored events.
//
// It has no code of its own outside its tests; `go test ./test/faults/`
// builds the binaries once, runs the scenarios in parallel and prints a
// table of the faults injected and how the pipeline recovered. It is
// skipped under -short.
package faults
