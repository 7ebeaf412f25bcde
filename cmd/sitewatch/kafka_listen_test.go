package main

import (
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestKafkaListen: the embedded Kafka listens where -kafka-listen says, so
// that kcat and other clients find it; when that address is taken it
// takes a free port and says so at start, with the address to use.
func TestKafkaListen(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	sitesFile, _ := sitesFixture(t)

	t.Run("free", func(t *testing.T) {
		t.Parallel()
		addr := freeAddr(t)
		stop, stdout, stderr := startSitewatch(t, "-sites", sitesFile, "-data-dir", t.TempDir(), "-table", "off", "-kafka-listen", addr)
		line := waitLine(t, stdout, "embedded Kafka")
		if want := "sitewatch: embedded Kafka " + addr + "; read a topic with: kcat -b " + addr + " -C -t status_request_failed"; line != want {
			t.Errorf("start line %q, want %q", line, want)
		}
		requireTopics(t, addr)
		if code := stop(); code != 0 {
			t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
		}
	})

	t.Run("taken", func(t *testing.T) {
		t.Parallel()
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		stop, stdout, stderr := startSitewatch(t, "-sites", sitesFile, "-data-dir", t.TempDir(), "-table", "off",
			"-kafka-listen", taken.Addr().String())
		line := waitLine(t, stdout, "embedded Kafka")
		m := regexp.MustCompile(`^sitewatch: embedded Kafka (127\.0\.0\.1:\d+) \(` + regexp.QuoteMeta(taken.Addr().String()) +
			` was taken\); read a topic with: kcat -b (\S+) `).FindStringSubmatch(line)
		if m == nil || m[1] != m[2] || m[1] == taken.Addr().String() {
			t.Fatalf("start line %q: want the free address used instead of the taken %s", line, taken.Addr())
		}
		requireTopics(t, m[1])
		if !strings.Contains(stderr.String(), "-kafka-listen address taken") {
			t.Errorf("no warning in the logs:\n%s", stderr.String())
		}
		if code := stop(); code != 0 {
			t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
		}
	})
}

// waitLine waits up to a minute for a line of out containing s.
func waitLine(t *testing.T, out *syncBuffer, s string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q within a minute; output:\n%s", s, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requireTopics connects to addr as any Kafka client would and finds the
// topics sitewatch made.
func requireTopics(t *testing.T, addr string) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Net.DialTimeout = 5 * time.Second
	deadline := time.Now().Add(time.Minute)
	for {
		var topics []string
		client, err := sarama.NewClient([]string{addr}, cfg)
		if err == nil {
			topics, err = client.Topics()
			client.Close()
		}
		if err == nil && slices.Contains(topics, "status_request_failed") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafka at %s: topics %v, err %v", addr, topics, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
