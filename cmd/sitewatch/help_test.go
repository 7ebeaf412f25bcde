package main

import (
	"bufio"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHelp: -h goes to stdout with exit status 0 and tells a new user what
// the command is, how to call it, what an empty -brokers or -database-url
// means and how many partitions the embedded topics get.
func TestHelp(t *testing.T) {
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if stderr.String() != "" {
		t.Errorf("help on stderr: %q", stderr.String())
	}
	out := stdout.String()
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "sitewatch: ") || lines[1] != "" || lines[2] != "Usage:" || !strings.HasPrefix(lines[3], "  sitewatch -sites FILE") {
		t.Errorf("help does not start with a one-line description and the usage:\n%s", out)
	}
	for _, want := range []string{
		"Left empty, -brokers starts an embedded Kafka",
		"processor migrate",
		"-kafka-listen string",
		"(default 3 with the embedded Kafka, 12 with -brokers)",
		"(env SITEWATCH_DATA_DIR)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

// envInUsage finds the "env NAME" a flag's usage names.
var envInUsage = regexp.MustCompile(`\benv ([A-Z][A-Z0-9_]*)`)

// TestREADMEEnvTable: the README's flag/env table lists exactly the flags
// that read an environment variable, each with its variable, and each
// flag that says it reads one really does.
func TestREADMEEnvTable(t *testing.T) {
	fs, _ := newFlags()
	want := map[string]string{} // flag → env
	fs.VisitAll(func(f *flag.Flag) {
		if m := envInUsage.FindStringSubmatch(f.Usage); m != nil {
			want[f.Name] = m[1]
		}
	})
	// Each claim is true: setting the variable changes the default.
	for name, env := range want {
		t.Run(name, func(t *testing.T) {
			before, _ := newFlags()
			changed := false
			for _, v := range []string{"/tmp/7", "true", "7s"} { // any string; a bool; a duration
				t.Setenv(env, v)
				after, _ := newFlags()
				changed = changed || before.Lookup(name).Value.String() != after.Lookup(name).Value.String()
			}
			if !changed {
				t.Errorf("-%s says it reads %s, but setting it changes nothing", name, env)
			}
		})
	}

	// Each variable the flag code reads is a flag's, or documented in the
	// README on its own (a password, NO_COLOR).
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	claimed := map[string]bool{}
	for _, env := range want {
		claimed[env] = true
	}
	read := regexp.MustCompile(`(?:Getenv|LookupEnv|envOr|envBool)\("([A-Z][A-Z0-9_]*)"`)
	for _, dir := range []string{"../../internal/app", "../../kafkaconn", "."} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range read.FindAllStringSubmatch(string(src), -1) {
				if !claimed[m[1]] && !strings.Contains(string(readme), "`"+m[1]+"`") {
					t.Errorf("%s reads %s, which no flag's usage names and the README does not mention", file, m[1])
				}
			}
		}
	}

	got := readmeEnvTable(t, "../../README.md")
	for name, env := range want {
		if got[name] != env {
			t.Errorf("README table: -%s → %q, want %q", name, got[name], env)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("README table lists -%s, which reads no environment variable (or does not exist)", name)
		}
	}
}

// readmeEnvTable parses the table under "These flags also read an
// environment variable" (rows "| `-a` / `-b` | `A` / `B` | what |").
func readmeEnvTable(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	in := false
	code := regexp.MustCompile("`([^`]+)`")
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		if strings.Contains(line, "read an environment variable") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if len(out) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "flag" {
			continue
		}
		var flags, envs []string
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			flags = append(flags, strings.TrimPrefix(m[1], "-"))
		}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			envs = append(envs, m[1])
		}
		if len(flags) != len(envs) {
			t.Fatalf("README row %q: %d flags but %d variables", line, len(flags), len(envs))
		}
		for i := range flags {
			out[flags[i]] = envs[i]
		}
	}
	if len(out) == 0 {
		t.Fatal("no flag/env table found in the README")
	}
	return out
}
