// Package kafkaconn holds everything sitewatch needs to talk to a Kafka
// cluster: the connection flags shared by every command (brokers, TLS
// client certificates, SASL), the sarama and goka configuration built from
// them, the topic names, topic creation and checking, and a connection
// probe that turns sarama's vague "run out of available brokers" into an
// error that says which connection failed and why.
//
// Every consumer group built from Options.Sarama starts from the oldest
// offset when it has none committed, so events produced before a processor
// first started are never skipped.
package kafkaconn
