//go:build race

package faults

// raceEnabled builds the children with -race too when the suite runs
// under it, so that a data race in a program under fault shows up.
const raceEnabled = true
