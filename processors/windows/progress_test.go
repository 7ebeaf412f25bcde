package windows

import (
	"testing"
	"time"
)

func TestProgressLowMark(t *testing.T) {
	const s, f = "succeeded", "failed"
	t0 := at(13, 0, 0) // wall clock
	pr := newProgress(s, f)
	steps := []struct {
		name      string
		topic     string
		eventTime time.Time
		wall      time.Time
		want      time.Time
	}{
		{"a topic not read yet holds every window", s, at(12, 10, 0), t0, holdAll},
		{"still within topicIdle of the start", s, at(12, 20, 0), t0.Add(topicIdle), holdAll},
		{"both read: the one behind", f, at(12, 1, 0), t0.Add(topicIdle), at(12, 1, 0)},
		{"the lagging topic advances", f, at(12, 5, 0), t0.Add(topicIdle + time.Second), at(12, 5, 0)},
		{"the leading topic's position stays the newest", s, at(12, 15, 0), t0.Add(topicIdle + 2*time.Second), at(12, 5, 0)},
		{"a topic silent for topicIdle no longer holds back", s, at(12, 25, 0), t0.Add(2*topicIdle + 2*time.Second), at(12, 25, 0)},
		{"after a pause its position restarts where it resumed", f, at(12, 2, 0), t0.Add(2*topicIdle + 3*time.Second), at(12, 2, 0)},
	}
	for _, st := range steps {
		if got := pr.observe(0, st.topic, st.eventTime, st.wall); !got.Equal(st.want) {
			t.Fatalf("%s: low mark %v, want %v", st.name, got, st.want)
		}
	}
	if got := pr.observe(1, s, at(12, 0, 0), t0); !got.Equal(holdAll) {
		t.Fatalf("another partition: low mark %v, want holdAll", got)
	}
	pr.reset()
	if got := pr.observe(0, f, at(12, 30, 0), t0.Add(time.Hour)); !got.Equal(holdAll) {
		t.Fatalf("after a rebalance: low mark %v, want holdAll", got)
	}
}
