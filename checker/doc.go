// Package checker performs one HTTP check of one site and describes it as
// one codecs.Result.
//
// It sits inside the url_checker processor: the processor turns a
// codecs.Request into a Target, calls Checker.Check, stamps the event id,
// scheduled time and checker id on the result, and emits it to
// status_request_succeeded or status_request_failed.
//
// A check is modelled on the HTTP prober of the Prometheus blackbox
// exporter: a per-check timeout context covers the whole check (DNS,
// connect, TLS, request, headers and body), httptrace hooks time the
// phases, the body is read only up to a limit before the regexp runs, and a
// failure is reported with one of the contract's error kinds and a message
// a person can act on ("connect: connection refused", "timeout after 5s
// while reading body").
//
// Every check dials a fresh connection (nothing is reused between checks),
// so the connect and TLS times are those a first-time visitor would see.
// Only HTTP/1.1 is spoken. Environment proxies are ignored: a check
// measures the site, not a proxy.
package checker
