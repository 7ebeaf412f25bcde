package app_test

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sitewatch/sitewatch/internal/app"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/telemetry"
)

func testEnv() app.Env {
	return app.Env{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: telemetry.NewRegistry(),
		Health:   telemetry.NewHealth(),
	}
}

// withParams adds query parameters to a database URL.
func withParams(t *testing.T, dsn string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// serverSSL reports whether the test server accepts TLS connections.
func serverSSL(t *testing.T, dsn string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, withParams(t, dsn, "sslmode", "require"))
	if err != nil {
		return false
	}
	c.Close(ctx)
	return true
}

// TestPostgresTLS: the processor's store connects with sslmode=require and,
// given the server's CA, with verify-full, as it would to Aiven; a CA that
// did not sign the server is refused with a clear error.
func TestPostgresTLS(t *testing.T) {
	t.Parallel()
	dsn := testkit.Postgres(t)
	if !serverSSL(t, dsn) {
		t.Skip("SKIPPING: the test PostgreSQL server has SSL off")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("require", func(t *testing.T) {
		store, err := app.OpenStore(ctx, testEnv().Logger, withParams(t, dsn, "sslmode", "require"), true)
		if err != nil {
			t.Fatal(err)
		}
		store.Close()
		c, err := pgx.Connect(ctx, withParams(t, dsn, "sslmode", "require"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var ssl bool
		if err := c.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
			t.Fatalf("connection not encrypted: ssl=%v err=%v", ssl, err)
		}
	})

	t.Run("verify-full with the server's CA", func(t *testing.T) {
		const snakeoil = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
		if _, err := os.Stat(snakeoil); err != nil {
			t.Skipf("SKIPPING: no %s to verify the local server with", snakeoil)
		}
		u, _ := url.Parse(dsn)
		u.Host = "localhost:" + u.Port()
		store, err := app.OpenStore(ctx, testEnv().Logger, withParams(t, u.String(), "sslmode", "verify-full", "sslrootcert", snakeoil), false)
		if err != nil {
			t.Skipf("SKIPPING: the local server's certificate does not verify as localhost: %v", err)
		}
		store.Close()
	})

	t.Run("verify-full with a foreign CA", func(t *testing.T) {
		certs := testkit.NewCerts(t)
		u, _ := url.Parse(dsn)
		u.User = url.UserPassword("postgres", "hunter2-secret")
		_, err := app.OpenStore(ctx, testEnv().Logger, withParams(t, u.String(), "sslmode", "verify-full", "sslrootcert", certs.CAFile), false)
		if err == nil {
			t.Fatal("connected although the CA did not sign the server")
		}
		msg := err.Error()
		if !strings.Contains(msg, "certificate") || strings.Contains(msg, "hunter2-secret") {
			t.Errorf("error %q should name the certificate problem and hide the password", msg)
		}
	})
}

// TestConnectionFailuresExitOne: each broken connection ends the processor
// with status 1 and one line that says which connection failed and why,
// without a secret in it.
func TestConnectionFailuresExitOne(t *testing.T) {
	t.Parallel()
	certs := testkit.NewCerts(t)
	foreign := testkit.NewCerts(t)
	_, saslAddrs := testkit.Kafka(t, kfake.EnableSASL(), kfake.Superuser(kafkaconn.SASLScramSHA512, "avnadmin", "right-password"))
	_, tlsAddrs := testkit.Kafka(t, kfake.TLS(certs.Server))
	_, plainAddrs := testkit.Kafka(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	cases := []struct {
		name   string
		kafka  kafkaconn.Options
		dbURL  string
		want   []string
		secret string
	}{
		{
			name:   "wrong sasl password",
			kafka:  kafkaconn.Options{Brokers: saslAddrs, SASLMechanism: kafkaconn.SASLScramSHA512, SASLUser: "avnadmin", SASLPassword: "wrong-secret-pw"},
			want:   []string{"SASL", "authentication failed", "avnadmin"},
			secret: "wrong-secret-pw",
		},
		{
			name:  "broker certificate from another CA",
			kafka: kafkaconn.Options{Brokers: tlsAddrs, CAFile: foreign.CAFile, CertFile: certs.CertFile, KeyFile: certs.KeyFile},
			want:  []string{"tls handshake failed", "certificate"},
		},
		{
			name:  "kafka unreachable",
			kafka: kafkaconn.Options{Brokers: []string{closed}, StartTimeout: 2 * time.Second},
			want:  []string{closed, "connection refused", "-kafka-start-timeout"},
		},
		{
			name:   "database unreachable",
			kafka:  kafkaconn.Options{Brokers: plainAddrs},
			dbURL:  "postgres://sitewatch:db-secret-pw@" + closed + "/sitewatch?sslmode=disable&connect_timeout=2",
			want:   []string{closed, "connection refused"},
			secret: "db-secret-pw",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := tc.kafka
			k.Partitions, k.Replication = 1, 1
			dbURL := tc.dbURL
			if dbURL == "" {
				dbURL = "postgres://127.0.0.1:1/none"
			}
			fs := flag.NewFlagSet("processor", flag.ContinueOnError)
			flags := app.RegisterProcessor(fs)
			if err := fs.Parse([]string{"-run", app.PartSinkResults, "-database-url", dbURL}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := app.RunProcessor(ctx, testEnv(), &k, flags)
			var stderr bytes.Buffer
			code := app.ExitCode("processor", err, &stderr)
			out := stderr.String()
			t.Logf("stderr: %s", out)
			if code != app.ExitFailure {
				t.Errorf("exit status %d, want 1 (err %v)", code, err)
			}
			if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "processor: ") {
				t.Errorf("stderr is not one line: %q", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stderr %q does not mention %q", out, w)
				}
			}
			if tc.secret != "" && strings.Contains(out, tc.secret) {
				t.Errorf("stderr leaks the secret: %q", out)
			}
			if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
				t.Errorf("stack trace on stderr: %q", out)
			}
		})
	}
}
