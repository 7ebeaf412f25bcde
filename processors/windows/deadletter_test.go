package windows

import (
	"log/slog"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitewatch/sitewatch/codecs"
)

// TestDeadLetterNamesThePrefixedGroup: a deployment under -topic-prefix
// runs the group "<prefix>windows"; its dead letters must name that group,
// so that an operator sharing a cluster between deployments can tell whose
// they are.
func TestDeadLetterNamesThePrefixedGroup(t *testing.T) {
	tt := tester.New(t)
	p, err := New(Config{
		Topics: testTopics, Group: "staging_windows",
		Now: func() time.Time { return at(12, 0, 0) }, Registerer: prometheus.NewRegistry(),
		Logger: testLogger(t, slog.LevelError), IdleCheck: time.Hour,
		GokaOptions: []goka.ProcessorOption{goka.WithTester(tt)},
	})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, p)
	dead := tt.NewQueueTracker(string(testTopics.DeadLetters))
	tt.Consume(string(testTopics.Failed), site, []byte("{not json"))
	_, v, ok := dead.Next()
	if !ok {
		t.Fatal("no dead letter")
	}
	if dl := v.(*codecs.DeadLetter); dl.Consumer != "staging_windows" {
		t.Errorf("dead letter names consumer %q, want the group staging_windows", dl.Consumer)
	}
}
