// Package app wires sitewatch's parts into the three programs: the
// emitter, the processor and the all-in-one sitewatch command. The mains in
// cmd/ only parse flags and call into here, so the all-in-one command runs
// exactly the code paths of the separate ones and end-to-end tests drive the
// real wiring.
package app
