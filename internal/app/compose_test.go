package app_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sitewatch/sitewatch/internal/app"
	"github.com/sitewatch/sitewatch/internal/testkit"
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
			Ports       []string          `yaml:"ports"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
		Name *string `yaml:"name"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	known := []string{"KAFKA_BROKERS", "DATABASE_URL", "SITEWATCH_METRICS_ADDR", "SITEWATCH_SITES", "KAFKA_CA", "KAFKA_CERT", "KAFKA_KEY",
		"KAFKA_SASL_MECHANISM", "KAFKA_SASL_USER", "KAFKA_SASL_PASSWORD", "SITEWATCH_LOG_LEVEL", "SITEWATCH_LOG_FORMAT", "SITEWATCH_TOPIC_PREFIX", "SITEWATCH_HTTP_ADDR"}
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
	for _, name := range []string{"kafka", "postgres", "prometheus", "grafana"} {
		if compose.Services[name].Image == "" {
			t.Errorf("no %s service image", name)
		}
	}

	// Compose v1 rejects a top-level name.
	if compose.Name != nil {
		t.Error("top-level name: docker-compose v1 rejects it")
	}
	// Kafka writes where its volume is mounted, or its data vanishes with
	// the container.
	kafka := compose.Services["kafka"]
	logDirs := kafka.Environment["KAFKA_LOG_DIRS"]
	if logDirs == "" || !slices.ContainsFunc(kafka.Volumes, func(v string) bool { return strings.HasSuffix(v, ":"+logDirs) }) {
		t.Errorf("kafka: KAFKA_LOG_DIRS %q is not where a volume is mounted (%q)", logDirs, kafka.Volumes)
	}
	// Kafka is reachable from the host: an EXTERNAL listener advertised on
	// localhost at the port that is published.
	adv := kafka.Environment["KAFKA_ADVERTISED_LISTENERS"]
	adv = defaults(adv)
	i := strings.Index(adv, "EXTERNAL://localhost:")
	if i < 0 || !strings.Contains(kafka.Environment["KAFKA_LISTENERS"], "EXTERNAL://:9094") {
		t.Errorf("kafka: no EXTERNAL listener on localhost (listeners %q, advertised %q)", kafka.Environment["KAFKA_LISTENERS"], adv)
	} else {
		hostPort := strings.SplitN(adv[i+len("EXTERNAL://localhost:"):], ",", 2)[0]
		if !slices.ContainsFunc(kafka.Ports, func(p string) bool { return defaults(p) == "127.0.0.1:"+hostPort+":9094" }) {
			t.Errorf("kafka: advertised EXTERNAL port %s is not the published one (%q)", hostPort, kafka.Ports)
		}
	}
	// Every published port is on loopback only, and none takes the host
	// ports of a local PostgreSQL or the all-in-one's embedded Kafka.
	for name, svc := range compose.Services {
		for _, p := range svc.Ports {
			parts := strings.Split(defaults(p), ":")
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("%s: port %q is not published on 127.0.0.1 only", name, p)
				continue
			}
			if hostPort := parts[1]; hostPort == "5432" || hostPort == "9092" {
				t.Errorf("%s: port %q takes a host port a local PostgreSQL or sitewatch uses", name, p)
			}
		}
	}
	// Files mounted from the repository exist.
	for name, svc := range compose.Services {
		for _, v := range svc.Volumes {
			if src := strings.SplitN(v, ":", 2)[0]; strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join("../..", src)); err != nil {
					t.Errorf("%s: volume %q: %v", name, v, err)
				}
			}
		}
	}
}

// defaults replaces each ${VAR:-default} with its default, as Compose does
// when VAR is unset.
func defaults(s string) string {
	return regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`).ReplaceAllString(s, "$1")
}

// TestComposeFileValidates runs the Compose tool's own validation (it
// needs no Docker engine): `docker compose config`, or docker-compose v1.
func TestComposeFileValidates(t *testing.T) {
	var cmd *exec.Cmd
	if exec.Command("docker", "compose", "version").Run() == nil {
		cmd = exec.Command("docker", "compose", "-f", "docker-compose.yml", "config", "-q")
	} else if path, err := exec.LookPath("docker-compose"); err == nil {
		cmd = exec.Command(path, "-f", "docker-compose.yml", "config", "-q")
	} else {
		testkit.Missing(t, "NO COMPOSE TOOL: neither `docker compose` nor docker-compose is installed; docker-compose.yml is not validated (apt-get install docker-compose)")
		return
	}
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}

// TestDockerImageHygiene: the image is built in stages into a static
// binary that runs as a non-root user and carries OCI labels, and the
// build context leaves out history, local data and build output.
func TestDockerImageHygiene(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	stages := regexp.MustCompile(`(?m)^FROM `).FindAllStringIndex(df, -1)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	final := df[stages[len(stages)-1][0]:]
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(final)
	if user == nil || strings.HasPrefix(user[1], "root") || strings.HasPrefix(user[1], "0") {
		t.Errorf("final stage runs as %v, want a non-root USER", user)
	}
	if !strings.Contains(df, "CGO_ENABLED=0 go build") {
		t.Error("the binaries are not built with CGO_ENABLED=0 (static)")
	}
	for _, label := range []string{"title", "source", "licenses", "version", "revision"} {
		if !strings.Contains(final, "org.opencontainers.image."+label+"=") {
			t.Errorf("final stage lacks the OCI label org.opencontainers.image.%s", label)
		}
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	lines := strings.Split(string(ignore), "\n")
	for _, want := range []string{".git", "sitewatch-data", "bin", "dist"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
