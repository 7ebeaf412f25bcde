package kafkaconn_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// ensureAndList creates the topics through the options and lists them back
// with a fresh sarama client, proving the whole connection path works.
func ensureAndList(t *testing.T, o *kafkaconn.Options) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := o.Sarama()
	if err != nil {
		return err
	}
	tp := o.Topics()
	if err := o.EnsureTopics(ctx, cfg, quiet(), tp.All()...); err != nil {
		return err
	}
	client, err := sarama.NewClient(o.Brokers, cfg)
	if err != nil {
		return kafkaconn.Explain(o, err)
	}
	defer client.Close()
	for _, topic := range tp.All() {
		parts, err := client.Partitions(string(topic))
		if err != nil {
			t.Fatalf("partitions of %s: %v", topic, err)
		}
		if len(parts) != o.Partitions {
			t.Errorf("%s has %d partitions, want %d", topic, len(parts), o.Partitions)
		}
	}
	return nil
}

func TestConnectModes(t *testing.T) {
	t.Parallel()
	certs := testkit.NewCerts(t)

	t.Run("plaintext with prefix", func(t *testing.T) {
		_, addrs := testkit.Kafka(t)
		o := &kafkaconn.Options{Brokers: addrs, Partitions: 4, Replication: 1, TopicPrefix: "dev_"}
		if err := ensureAndList(t, o); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("tls client certificate", func(t *testing.T) {
		_, addrs := testkit.Kafka(t, kfake.TLS(certs.Server))
		o := &kafkaconn.Options{Brokers: addrs, Partitions: 2, Replication: 1,
			CAFile: certs.CAFile, CertFile: certs.CertFile, KeyFile: certs.KeyFile}
		if err := ensureAndList(t, o); err != nil {
			t.Fatal(err)
		}
	})
	for _, mech := range []string{kafkaconn.SASLScramSHA256, kafkaconn.SASLScramSHA512, kafkaconn.SASLPlain} {
		t.Run("sasl "+mech, func(t *testing.T) {
			_, addrs := testkit.Kafka(t, kfake.EnableSASL(), kfake.Superuser(mech, "avnadmin", "s3cret"))
			o := &kafkaconn.Options{Brokers: addrs, Partitions: 2, Replication: 1,
				SASLMechanism: mech, SASLUser: "avnadmin", SASLPassword: "s3cret"}
			if err := ensureAndList(t, o); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConnectFailuresAreClear(t *testing.T) {
	t.Parallel()
	certs := testkit.NewCerts(t)
	other := testkit.NewCerts(t)

	_, saslAddrs := testkit.Kafka(t, kfake.EnableSASL(), kfake.Superuser(kafkaconn.SASLScramSHA256, "avnadmin", "s3cret"))
	_, tlsAddrs := testkit.Kafka(t, kfake.TLS(certs.Server))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	cases := []struct {
		name      string
		opts      kafkaconn.Options
		want      []string
		permanent bool
	}{
		{
			name:      "wrong sasl password",
			opts:      kafkaconn.Options{Brokers: saslAddrs, SASLMechanism: kafkaconn.SASLScramSHA256, SASLUser: "avnadmin", SASLPassword: "wrong-password"},
			want:      []string{"SASL", "authentication failed", `user "avnadmin"`, "KAFKA_SASL_PASSWORD"},
			permanent: true,
		},
		{
			name:      "ca that did not sign the broker",
			opts:      kafkaconn.Options{Brokers: tlsAddrs, CAFile: other.CAFile, CertFile: certs.CertFile, KeyFile: certs.KeyFile},
			want:      []string{"tls handshake failed", "-kafka-ca"},
			permanent: true,
		},
		{
			name:      "client certificate missing",
			opts:      kafkaconn.Options{Brokers: tlsAddrs, CAFile: certs.CAFile},
			want:      []string{"tls handshake failed"},
			permanent: true,
		},
		{
			name: "nothing listening",
			opts: kafkaconn.Options{Brokers: []string{closed}},
			want: []string{closed, "connection refused"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Partitions, tc.opts.Replication = 1, 1
			cfg, err := tc.opts.Sarama()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = tc.opts.Probe(ctx, cfg)
			if err == nil {
				t.Fatal("probe succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "wrong-password") {
				t.Errorf("error leaks the password: %q", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if got := kafkaconn.IsPermanent(err); got != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tc.permanent)
			}
		})
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts kafkaconn.Options
		want string
	}{
		{"no brokers", kafkaconn.Options{}, "-brokers"},
		{"cert without key", kafkaconn.Options{Brokers: []string{"x:1"}, CertFile: "c", Partitions: 1, Replication: 1}, "-kafka-key"},
		{"unknown mechanism", kafkaconn.Options{Brokers: []string{"x:1"}, SASLMechanism: "GSSAPI", SASLUser: "u", SASLPassword: "p", Partitions: 1, Replication: 1}, "-kafka-sasl-mechanism"},
		{"missing password", kafkaconn.Options{Brokers: []string{"x:1"}, SASLMechanism: "PLAIN", SASLUser: "u", Partitions: 1, Replication: 1}, "KAFKA_SASL_PASSWORD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
