package kafkarun

import (
	"strings"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// createRaceTolerant wraps a goka topic manager builder so that a topic
// another process created between goka's "does it exist?" and its
// CreateTopic counts as existing: two processors started at the same time
// (a scaled-out deployment, the fault suite's fleet) both find the group
// table missing, and the one that loses the race used to exit with
// "Topic with this name already exists". The topic is then checked again,
// as an existing one (partitions and config).
func createRaceTolerant(build goka.TopicManagerBuilder) goka.TopicManagerBuilder {
	return func(brokers []string) (goka.TopicManager, error) {
		tm, err := build(brokers)
		if err != nil {
			return nil, err
		}
		return CreateRaceTolerant(tm), nil
	}
}

// CreateRaceTolerant is tm, with a topic created by another process
// during its own creation counted as existing (see createRaceTolerant).
func CreateRaceTolerant(tm goka.TopicManager) goka.TopicManager {
	if _, ok := tm.(raceTolerantTM); ok {
		return tm
	}
	return raceTolerantTM{tm}
}

type raceTolerantTM struct{ goka.TopicManager }

// lostCreateRace reports whether err is goka's CreateTopic failing because
// the topic exists: goka formats sarama's error with %v, so only its text
// is left.
func lostCreateRace(err error) bool {
	return err != nil && strings.Contains(err.Error(), sarama.ErrTopicAlreadyExists.Error())
}

func (t raceTolerantTM) EnsureTableExists(topic string, npar int) error {
	err := t.TopicManager.EnsureTableExists(topic, npar)
	if lostCreateRace(err) {
		err = t.TopicManager.EnsureTableExists(topic, npar)
	}
	return err
}

func (t raceTolerantTM) EnsureStreamExists(topic string, npar int) error {
	err := t.TopicManager.EnsureStreamExists(topic, npar)
	if lostCreateRace(err) {
		err = t.TopicManager.EnsureStreamExists(topic, npar)
	}
	return err
}

func (t raceTolerantTM) EnsureTopicExists(topic string, npar, rfactor int, config map[string]string) error {
	err := t.TopicManager.EnsureTopicExists(topic, npar, rfactor, config)
	if lostCreateRace(err) {
		err = t.TopicManager.EnsureTopicExists(topic, npar, rfactor, config)
	}
	return err
}
