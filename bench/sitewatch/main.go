//go:build linux

// Command sitewatch measures the all-in-one sitewatch command as a user
// runs it, against local websites only (one loopback server; never the
// internet). It prints two figures:
//
//   - startup: time from `go run ./cmd/sitewatch …` (or a built binary
//     with -bin) to the first row in check_results of the embedded SQLite
//     database, with a fresh data directory;
//   - memory: peak resident set size (VmHWM from /proc) of the sitewatch
//     process over -duration, with the sample sites (the eight sites of
//     examples/sites.yaml, same intervals, regexps and methods, pointed at
//     the local server) and with -many sites (default 1,000, every 60 s, one
//     local server with a path per site).
//
// It runs from the module root and stops what it starts:
//
//	go run ./bench/sitewatch -mode startup
//	go build -o /tmp/sitewatch ./cmd/sitewatch && go run ./bench/sitewatch -mode memory -bin /tmp/sitewatch
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite"
)

func main() {
	mode := flag.String("mode", "all", "startup, memory or all")
	bin := flag.String("bin", "", "sitewatch binary (default: go run ./cmd/sitewatch)")
	runs := flag.Int("runs", 3, "startup measurements")
	many := flag.Int("many", 1000, "sites in the large memory run")
	duration := flag.Duration("duration", 3*time.Minute, "length of each memory run")
	flag.Parse()
	if err := run(*mode, *bin, *runs, *many, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(mode, bin string, runs, many int, duration time.Duration) error {
	// One local server answers every site: /404 with 404, anything else
	// with a small page that every sample regexp matches.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/404") {
			w.WriteHeader(http.StatusNotFound)
		}
		fmt.Fprint(w, "<html>Example Domain. Example domains. The Go Programming Language. All systems operational.</html>")
	}))
	defer srv.Close()
	tmp, err := os.MkdirTemp("", "sitewatch-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	sample := filepath.Join(tmp, "sample.yaml")
	if err := os.WriteFile(sample, []byte(sampleSites(srv.URL)), 0o600); err != nil {
		return err
	}
	large := filepath.Join(tmp, "many.yaml")
	if err := os.WriteFile(large, []byte(manySites(srv.URL, many)), 0o600); err != nil {
		return err
	}

	if mode == "startup" || mode == "all" {
		how := "go run ./cmd/sitewatch"
		if bin != "" {
			how = bin
		}
		for i := range runs {
			d, err := startup(bin, sample, filepath.Join(tmp, fmt.Sprintf("startup-%d", i)))
			if err != nil {
				return fmt.Errorf("startup: %w", err)
			}
			fmt.Printf("startup %d: %s to the first stored check (%s, 8 sample sites, fresh data dir)\n", i+1, d.Round(10*time.Millisecond), how)
		}
	}
	if mode == "memory" || mode == "all" {
		for _, c := range []struct {
			name, file string
		}{{"8 sample sites", sample}, {fmt.Sprintf("%d sites at 60s", many), large}} {
			peak, rows, err := memory(bin, c.file, filepath.Join(tmp, "mem-"+strings.Fields(c.name)[0]), duration)
			if err != nil {
				return fmt.Errorf("memory %s: %w", c.name, err)
			}
			fmt.Printf("memory, %s: peak RSS %.1f MiB over %s (%d checks stored)\n", c.name, float64(peak)/(1<<20), duration, rows)
		}
	}
	return nil
}

// sampleSites is examples/sites.yaml pointed at the local server.
func sampleSites(base string) string {
	return fmt.Sprintf(`defaults:
  interval: 60s
  timeout: 10s
sites:
  - url: %[1]s/
    name: Example
    regexp: "Example Domain"
  - url: %[1]s/help/example-domains
    interval: 5m
    regexp: "(?i)example domains"
  - url: %[1]s/plain
    interval: 2m
    expect_status: [200]
  - url: %[1]s/portal
    method: HEAD
    interval: 30s
    timeout: 5s
  - url: %[1]s/zen
    interval: 2m
    timeout: 15s
    expect_status: [200]
    headers: {Accept: application/vnd.github+json, User-Agent: sitewatch}
  - url: %[1]s/404
    interval: 10m
    expect_status: [404]
  - url: %[1]s/go
    interval: 5s
    regexp: 'The Go Programming Language'
  - url: %[1]s/status
    interval: 1m
    timeout: 20s
    regexp: '(?i)all systems operational'
`, base)
}

func manySites(base string, n int) string {
	var b strings.Builder
	b.WriteString("defaults:\n  interval: 60s\n  timeout: 10s\nsites:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - url: %s/site/%04d\n", base, i)
	}
	return b.String()
}

func command(bin string, args ...string) *exec.Cmd {
	if bin == "" {
		return exec.Command("go", append([]string{"run", "./cmd/sitewatch"}, args...)...)
	}
	return exec.Command(bin, args...)
}

// startup starts sitewatch and returns the time until check_results has
// a row.
func startup(bin, sites, dataDir string) (time.Duration, error) {
	cmd := command(bin, "-sites", sites, "-data-dir", dataDir, "-table", "off", "-log-level", "warn", "-kafka-listen", "127.0.0.1:0", "-http-addr", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	// go run's child gets the signal through the process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer stop(cmd)
	db := filepath.Join(dataDir, "sitewatch.db")
	for time.Since(start) < 5*time.Minute {
		if n, _ := countRows(db); n > 0 {
			return time.Since(start), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, errors.New("no stored check within 5 minutes")
}

// memory runs sitewatch for d and returns its peak RSS and the checks
// stored.
func memory(bin, sites, dataDir string, d time.Duration) (peak int64, rows int, err error) {
	cmd := command(bin, "-sites", sites, "-data-dir", dataDir, "-table", "off", "-log-level", "warn", "-kafka-listen", "127.0.0.1:0", "-http-addr", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if hwm, err := vmHWM(cmd.Process.Pid); err == nil {
			peak = max(peak, hwm)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if hwm, err := vmHWM(cmd.Process.Pid); err == nil {
		peak = max(peak, hwm)
	}
	stop(cmd)
	rows, err = countRows(filepath.Join(dataDir, "sitewatch.db"))
	return peak, rows, err
}

// vmHWM reads the peak resident set size of a process.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM")
}

// stop sends SIGINT, as Ctrl-C does, and waits.
func stop(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func countRows(path string) (int, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(1000)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var n int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM check_results").Scan(&n)
	return n, err
}
