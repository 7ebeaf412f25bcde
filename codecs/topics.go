package codecs

// The contract's default topic names; a -topic-prefix may be prepended.
// Each carries one payload of this package, keyed by the site's URL
// (dead letters by the key of the message they carry).
const (
	// TopicRequests carries Request.
	TopicRequests = "status_request_created"
	// TopicSucceeded and TopicFailed carry Result, up and down.
	TopicSucceeded = "status_request_succeeded"
	TopicFailed    = "status_request_failed"
	// TopicWindows carries Window.
	TopicWindows = "status_windows"
	// TopicDeadLetters carries DeadLetter.
	TopicDeadLetters = "sitewatch_dead_letters"
	// TopicSites is the sites registry, compacted: SiteValue, a tombstone
	// removing the site.
	TopicSites = "sitewatch_sites"
)
