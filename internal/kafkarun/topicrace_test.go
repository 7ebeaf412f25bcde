package kafkarun

import (
	"fmt"
	"sync"
	"testing"

	"github.com/lovoo/goka"

	"github.com/sitewatch/sitewatch/internal/testkit"
)

// Processors started at the same moment all find their group table
// missing and create it; the ones that lose that race must carry on with
// the table the winner made (the fault suite's fleet saw a processor exit
// with "Topic with this name already exists").
func TestTableCreatedByConcurrentProcessors(t *testing.T) {
	_, brokers := testkit.Kafka(t)
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication, tmc.Stream.Replication = 1, 1
	build := createRaceTolerant(goka.TopicManagerBuilderWithConfig(goka.DefaultConfig(), tmc))
	for round := range 4 {
		topic := fmt.Sprintf("race-%d-table", round)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tm, err := build(brokers)
				if err != nil {
					errs <- err
					return
				}
				defer tm.Close()
				if err := tm.EnsureTableExists(topic, 3); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
	}
}
