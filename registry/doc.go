// Package registry is the sites registry: the sites to check, kept on the
// compacted topic sitewatch_sites (key: the URL; value: codecs.SiteValue;
// a tombstone removes the site) instead of in each emitter's file.
//
// A Registry follows the topic from its earliest offset with a plain
// consumer of every partition (no consumer group: every follower needs
// every site). It reads up to the end offsets it saw at start before it
// reports Ready and hands out its first snapshot, so an emitter never
// starts from half the sites; after that, every change is handed on as it
// is read. A record that does not decode goes to the dead-letter topic
// with the reason, and the site keeps its last good value.
//
// Writers (the sites API, `sitewatch sites` with -brokers, an emitter
// publishing its -sites file) put and delete sites through the same
// Registry, so that every writer partitions keys alike: a tombstone must
// land on the partition of the record it removes.
package registry
