package testkit

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka starts an in-process Kafka cluster speaking the real wire protocol
// and stops it when the test ends. It returns the cluster (for fault
// injection) and its bootstrap addresses.
func Kafka(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(3)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// JoinAddrs formats addresses as a -brokers flag value.
func JoinAddrs(addrs []string) string { return strings.Join(addrs, ",") }
