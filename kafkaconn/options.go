package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"github.com/sitewatch/sitewatch/internal/retry"
)

// SASL mechanisms accepted by -kafka-sasl-mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Options are the Kafka connection settings shared by every command.
type Options struct {
	Brokers []string
	// CAFile, CertFile and KeyFile are Aiven's ca.pem, service.cert and
	// service.key. CAFile alone enables TLS with server verification (as
	// SASL on Aiven needs); CertFile and KeyFile add a client certificate.
	CAFile, CertFile, KeyFile string
	// TLS forces TLS even without a CA file (system roots).
	TLS           bool
	SASLMechanism string
	SASLUser      string
	SASLPassword  string
	ClientID      string
	TopicPrefix   string
	// Partitions, Replication and Retention apply to the topics sitewatch
	// creates; existing topics are checked, not changed.
	Partitions  int
	Replication int
	Retention   time.Duration
	// TLSConfig, when set, is used instead of the one built from the files
	// (tests and embedded setups).
	TLSConfig *tls.Config
	// StartTimeout bounds how long a program waits at start for brokers
	// that do not answer before it gives up with an error; zero waits as
	// long as its context lives.
	StartTimeout time.Duration
}

// RegisterFlags declares the common Kafka flags on fs, each defaulting to its
// environment variable, and returns the Options they fill when fs is parsed.
func RegisterFlags(fs *flag.FlagSet) *Options {
	o := &Options{}
	o.Brokers = splitList(os.Getenv("KAFKA_BROKERS"))
	fs.Var((*listValue)(&o.Brokers), "brokers", "Kafka bootstrap brokers, `HOST:PORT[,...]` (env KAFKA_BROKERS)")
	fs.StringVar(&o.CAFile, "kafka-ca", os.Getenv("KAFKA_CA"), "CA certificate file for Kafka TLS, e.g. Aiven's ca.pem (env KAFKA_CA)")
	fs.StringVar(&o.CertFile, "kafka-cert", os.Getenv("KAFKA_CERT"), "client certificate for Kafka TLS, e.g. Aiven's service.cert (env KAFKA_CERT)")
	fs.StringVar(&o.KeyFile, "kafka-key", os.Getenv("KAFKA_KEY"), "client key for Kafka TLS, e.g. Aiven's service.key (env KAFKA_KEY)")
	fs.BoolVar(&o.TLS, "kafka-tls", envBool("KAFKA_TLS"), "use TLS with the system CAs even without -kafka-ca (env KAFKA_TLS)")
	fs.StringVar(&o.SASLMechanism, "kafka-sasl-mechanism", os.Getenv("KAFKA_SASL_MECHANISM"), "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (env KAFKA_SASL_MECHANISM)")
	fs.StringVar(&o.SASLUser, "kafka-sasl-user", os.Getenv("KAFKA_SASL_USER"), "SASL user name (env KAFKA_SASL_USER); the password is read from KAFKA_SASL_PASSWORD")
	o.SASLPassword = os.Getenv("KAFKA_SASL_PASSWORD")
	fs.StringVar(&o.TopicPrefix, "topic-prefix", os.Getenv("SITEWATCH_TOPIC_PREFIX"), "prefix prepended to every topic name (env SITEWATCH_TOPIC_PREFIX)")
	fs.IntVar(&o.Partitions, "topic-partitions", 12, "partitions of topics sitewatch creates")
	fs.IntVar(&o.Replication, "topic-replication", 1, "replication factor of topics sitewatch creates (3 recommended on Aiven)")
	fs.DurationVar(&o.Retention, "topic-retention", 7*24*time.Hour, "retention of the event topics sitewatch creates")
	fs.DurationVar(&o.StartTimeout, "kafka-start-timeout", 2*time.Minute, "how long to retry unreachable brokers at start before giving up (0: forever)")
	return o
}

// listValue is a comma-separated flag value. Unlike flag.Func it shows its
// default (the environment's value) in -h.
type listValue []string

func (l *listValue) String() string     { return strings.Join(*l, ",") }
func (l *listValue) Set(s string) error { *l = splitList(s); return nil }

func envBool(name string) bool {
	v := strings.ToLower(os.Getenv(name))
	return v == "1" || v == "true" || v == "yes"
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate reports flag combinations that cannot work, naming the flag.
func (o *Options) Validate() error {
	if len(o.Brokers) == 0 {
		return errors.New("-brokers: no Kafka broker given (or set KAFKA_BROKERS)")
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return errors.New("-kafka-cert and -kafka-key: give both or neither")
	}
	switch strings.ToUpper(o.SASLMechanism) {
	case "":
		if o.SASLUser != "" {
			return errors.New("-kafka-sasl-user given without -kafka-sasl-mechanism")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if o.SASLUser == "" {
			return errors.New("-kafka-sasl-user: required with -kafka-sasl-mechanism")
		}
		if o.SASLPassword == "" {
			return errors.New("KAFKA_SASL_PASSWORD: required with -kafka-sasl-mechanism")
		}
	default:
		return fmt.Errorf("-kafka-sasl-mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", o.SASLMechanism)
	}
	if o.Partitions < 1 {
		return errors.New("-topic-partitions: must be at least 1")
	}
	if o.Replication < 1 {
		return errors.New("-topic-replication: must be at least 1")
	}
	return nil
}

func (o *Options) tlsEnabled() bool {
	return o.TLSConfig != nil || o.TLS || o.CAFile != "" || o.CertFile != ""
}

func (o *Options) buildTLS() (*tls.Config, error) {
	if o.TLSConfig != nil {
		return o.TLSConfig.Clone(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("-kafka-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-kafka-ca %s: no PEM certificate found", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("-kafka-cert/-kafka-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Sarama builds the sarama configuration for every sitewatch component: a
// fresh value per call, so components can adjust their copy.
func (o *Options) Sarama() (*sarama.Config, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.ClientID = o.ClientID
	if cfg.ClientID == "" {
		cfg.ClientID = "sitewatch"
	}
	cfg.Net.DialTimeout = 10 * time.Second
	cfg.Metadata.Retry.Max = 5
	cfg.Metadata.Retry.BackoffFunc = backoff(250*time.Millisecond, 10*time.Second)

	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxProcessingTime = time.Second
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = time.Second
	// A JoinGroup may block for the whole rebalance timeout; it must end
	// before the network read timeout (30 s), or the member gives up on a
	// healthy rebalance and its consumer fails.
	cfg.Consumer.Group.Rebalance.Timeout = 25 * time.Second

	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Compression = sarama.CompressionSnappy
	// A produce request goes out every 50 ms, or sooner once 512 KiB are
	// waiting. At 64 KiB the windows processor's table writes (kilobytes
	// each, one per event) went out five to a request while a backlog
	// drained, and the emitter's 20,000 requests a second a few hundred
	// to one: each request costs an encode, a CRC and a round trip.
	cfg.Producer.Flush.Frequency = 50 * time.Millisecond
	cfg.Producer.Flush.Bytes = 512 << 10
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.BackoffFunc = backoff(100*time.Millisecond, 5*time.Second)

	if o.tlsEnabled() {
		t, err := o.buildTLS()
		if err != nil {
			return nil, err
		}
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = t
	}
	if m := strings.ToUpper(o.SASLMechanism); m != "" {
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.Handshake = true
		cfg.Net.SASL.User = o.SASLUser
		cfg.Net.SASL.Password = o.SASLPassword
		switch m {
		case SASLPlain:
			cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case SASLScramSHA256:
			cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
		case SASLScramSHA512:
			cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka config: %w", err)
	}
	return cfg, nil
}

// backoff is sitewatch's one backoff (internal/retry) as sarama's retry
// hook, which counts retries from 0.
func backoff(base, max time.Duration) func(retries, maxRetries int) time.Duration {
	return func(retries, _ int) time.Duration { return retry.Delay(base, max, retries+1) }
}

// scramClient adapts xdg-go/scram to sarama's SCRAMClient.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return fmt.Errorf("scram: %w", err)
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *scramClient) Done() bool                            { return c.conv.Done() }
