// Package config reads the sites file: the YAML list of websites that
// sitewatch checks, with their intervals, timeouts, expected statuses,
// regexps, methods and headers.
//
// It sits at the very start of the data flow: the emitter loads the file
// once at start, the scheduler turns every [Site] into one check request
// per interval, and the checker uses the same [Site] fields to decide
// whether a response is up or down.
//
// Decoding is strict so that the configuration never lies: an unknown or
// repeated key, a duplicate URL, a bad duration, an interval under one
// second, a timeout longer than the interval, a regexp that does not
// compile, a URL that is not http(s), a method other than GET or HEAD, a
// status outside 100..599, an invalid header and an empty file are all
// errors. Each is reported as an [*Error] whose message is one line naming
// the file, the line, the site and the field, for example
//
//	sites.yaml:12: site "https://x/": interval: "5x" is not a duration (e.g. 30s, 5m)
//
// Defaults are applied and the result validated in one place ([Parse]), and
// regexps are compiled at load, so the rest of the program can trust every
// [Site] it is given.
package config
