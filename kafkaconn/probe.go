package kafkaconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/sitewatch/sitewatch/internal/retry"
)

// permanent marks connection failures that retrying cannot fix: a bad
// certificate, a rejected password.
func permanent(format string, a ...any) error { return retry.Permanent(fmt.Errorf(format, a...)) }

// IsPermanent reports whether err is a connection failure that retrying
// will not fix (TLS or authentication).
func IsPermanent(err error) bool { return retry.IsPermanent(err) }

// Probe connects to the first reachable bootstrap broker the way sarama
// will (TCP, TLS, SASL) and reports precisely which step failed. sarama
// itself only says "client has run out of available brokers", which tells
// an operator nothing about a wrong password or certificate.
func (o *Options) Probe(ctx context.Context, cfg *sarama.Config) error {
	var errs []error
	for _, addr := range o.Brokers {
		err := o.probeOne(ctx, cfg, addr)
		if err == nil {
			return nil
		}
		if IsPermanent(err) {
			return err
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("kafka brokers %s unreachable: %w", strings.Join(o.Brokers, ","), errors.Join(errs...))
}

func (o *Options) probeOne(ctx context.Context, cfg *sarama.Config, addr string) error {
	d := net.Dialer{Timeout: cfg.Net.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("kafka %s: %w", addr, err)
	}
	if cfg.Net.TLS.Enable {
		tc := cfg.Net.TLS.Config.Clone()
		if tc.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			tc.ServerName = host
		}
		tconn := tls.Client(conn, tc)
		err := tconn.HandshakeContext(ctx)
		if err == nil {
			err = awaitRejection(tconn)
		}
		conn.Close()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("kafka %s: tls handshake: %w", addr, err)
			}
			return permanent("kafka %s: tls handshake failed (check -kafka-ca, -kafka-cert, -kafka-key): %w", addr, err)
		}
	} else {
		conn.Close()
	}
	b := sarama.NewBroker(addr)
	if err := b.Open(cfg); err != nil {
		return fmt.Errorf("kafka %s: %w", addr, err)
	}
	defer b.Close()
	if _, err := b.Connected(); err != nil {
		// TCP and TLS worked above, so a failure here is the SASL exchange:
		// brokers answer a bad password with an error or by hanging up.
		if cfg.Net.SASL.Enable {
			return permanent("kafka %s: SASL %s authentication failed for user %q (check -kafka-sasl-user and KAFKA_SASL_PASSWORD): %v",
				addr, cfg.Net.SASL.Mechanism, cfg.Net.SASL.User, err)
		}
		if !cfg.Net.TLS.Enable && errors.Is(err, io.EOF) {
			return fmt.Errorf("kafka %s: connection closed by the broker (does it need TLS? set -kafka-ca): %w", addr, err)
		}
		return fmt.Errorf("kafka %s: %w", addr, err)
	}
	// A request proves the connection is usable; SASL failures on some
	// brokers show up only here.
	if _, err := b.GetMetadata(&sarama.MetadataRequest{Version: 1}); err != nil {
		if cfg.Net.SASL.Enable {
			return permanent("kafka %s: SASL %s authentication failed for user %q (check -kafka-sasl-user and KAFKA_SASL_PASSWORD): %v",
				addr, cfg.Net.SASL.Mechanism, cfg.Net.SASL.User, err)
		}
		return fmt.Errorf("kafka %s: metadata: %w", addr, err)
	}
	return nil
}

// Explain rewrites sarama's generic broker errors into one that names the
// brokers and what to check.
func Explain(o *Options, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sarama.ErrOutOfBrokers) {
		hint := "check that the brokers are up and reachable"
		if o.SASLMechanism != "" {
			hint += ", the SASL user and KAFKA_SASL_PASSWORD"
		}
		if o.tlsEnabled() {
			hint += ", and the TLS files"
		}
		return fmt.Errorf("kafka brokers %s: no broker answered (%s): %w", strings.Join(o.Brokers, ","), hint, err)
	}
	return err
}

// awaitRejection catches a server that refuses our client certificate: in
// TLS 1.3 the client's handshake completes before the server has checked
// the certificate, and the refusal arrives as an alert on the first read.
// Kafka brokers never speak first, so a quiet connection means acceptance.
func awaitRejection(conn *tls.Conn) error {
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [1]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return nil
	}
	return err
}
