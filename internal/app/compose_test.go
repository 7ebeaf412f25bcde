package app_test

import (
	"flag"
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sitewatch/sitewatch/internal/app"
	"github.com/sitewatch/sitewatch/kafkaconn"
)

// TestComposeFileMatchesThePrograms keeps docker-compose.yml honest where
// no Docker runs: it must parse, its emitter and processor commands must be
// flags the programs accept, and its environment variables must be ones the
// programs read.
func TestComposeFileMatchesThePrograms(t *testing.T) {
	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Entrypoint  []string          `yaml:"entrypoint"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	known := []string{"KAFKA_BROKERS", "DATABASE_URL", "SITEWATCH_METRICS_ADDR", "SITEWATCH_SITES", "KAFKA_CA", "KAFKA_CERT", "KAFKA_KEY",
		"KAFKA_SASL_MECHANISM", "KAFKA_SASL_USER", "KAFKA_SASL_PASSWORD", "SITEWATCH_LOG_LEVEL", "SITEWATCH_LOG_FORMAT", "SITEWATCH_TOPIC_PREFIX"}
	flagsFor := map[string]func(fs *flag.FlagSet){
		"/usr/local/bin/emitter": func(fs *flag.FlagSet) {
			kafkaconn.RegisterFlags(fs)
			app.RegisterCommon(fs)
			app.RegisterEmitter(fs)
		},
		"/usr/local/bin/processor": func(fs *flag.FlagSet) {
			kafkaconn.RegisterFlags(fs)
			app.RegisterCommon(fs)
			app.RegisterProcessor(fs)
		},
	}
	for _, name := range []string{"emitter", "processor"} {
		svc, ok := compose.Services[name]
		if !ok {
			t.Fatalf("no %s service", name)
		}
		if svc.Build == nil || len(svc.Entrypoint) != 1 {
			t.Errorf("%s: want a build from the repository and one entrypoint, got %+v", name, svc)
			continue
		}
		register, ok := flagsFor[svc.Entrypoint[0]]
		if !ok {
			t.Errorf("%s: entrypoint %q is not a binary the Dockerfile installs", name, svc.Entrypoint[0])
			continue
		}
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		register(fs)
		if err := fs.Parse(svc.Command); err != nil {
			t.Errorf("%s: command %q: %v", name, svc.Command, err)
		}
		for k := range svc.Environment {
			if !slices.Contains(known, k) {
				t.Errorf("%s: environment variable %s is not read by sitewatch", name, k)
			}
		}
		if svc.Environment["KAFKA_BROKERS"] == "" {
			t.Errorf("%s: no KAFKA_BROKERS", name)
		}
	}
	if compose.Services["processor"].Environment["DATABASE_URL"] == "" {
		t.Error("processor: no DATABASE_URL")
	}
	for _, name := range []string{"kafka", "postgres"} {
		if compose.Services[name].Image == "" {
			t.Errorf("no %s service image", name)
		}
	}
}
