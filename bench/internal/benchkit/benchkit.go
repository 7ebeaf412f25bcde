// Package benchkit holds what the load programs under bench/ share: building
// the real binaries, watching a child process's CPU and memory through
// /proc, free loopback ports, scraping /metrics, and medians.
//
// The programs measure the way an outsider would (README, "Performance"):
// the real commands as child processes, figures as ratios against a
// baseline measured in the same run, and the median of several runs.
package benchkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Build compiles the named commands (import paths) into dir and returns
// the binaries' paths in the same order.
func Build(ctx context.Context, dir string, pkgs ...string) ([]string, error) {
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	bins := make([]string, len(pkgs))
	for i, p := range pkgs {
		bins[i] = filepath.Join(dir, filepath.Base(p))
	}
	return bins, nil
}

// Output runs a command to its end and returns what it printed.
func Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// Child is a running command whose output goes to a log file.
type Child struct {
	Cmd  *exec.Cmd
	Log  string
	done chan error
}

// Start runs bin with args, its stdout and stderr appended to logPath.
func Start(bin string, args []string, logPath string) (*Child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("child log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	c := &Child{Cmd: cmd, Log: logPath, done: make(chan error, 1)}
	go func() {
		c.done <- cmd.Wait()
		f.Close()
	}()
	return c, nil
}

// Exited reports the child's exit when it has ended on its own.
func (c *Child) Exited() (error, bool) {
	select {
	case err := <-c.done:
		c.done <- err
		return err, true
	default:
		return nil, false
	}
}

// Stop asks the child to shut down (SIGTERM) and kills it after grace.
func (c *Child) Stop(grace time.Duration) error { return c.StopWith(syscall.SIGTERM, grace) }

// StopWith sends sig to the child and kills it after grace.
func (c *Child) StopWith(sig os.Signal, grace time.Duration) error {
	_ = c.Cmd.Process.Signal(sig)
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(grace):
		_ = c.Cmd.Process.Kill()
		err := <-c.done
		c.done <- err
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", filepath.Base(c.Cmd.Path), grace)
	}
}

// Tail is the end of the child's log, for error messages.
func (c *Child) Tail() string {
	b, _ := os.ReadFile(c.Log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// ProcCPU is the user plus system CPU time that process pid has used, from
// /proc/PID/stat.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu of %d: bad /proc stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu of %d: short /proc stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// SelfCPU is this process's user plus system CPU time.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PeakRSS is the peak resident set (VmHWM) of process pid, in bytes.
func PeakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss of %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("rss of %d: no VmHWM", pid)
}

// FreeAddr is a loopback address with a port free just now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Scrape sums the samples of each named metric on a Prometheus text
// endpoint (labels ignored); a missing metric is absent from the map.
func Scrape(url string, names ...string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		base := line[:strings.IndexAny(line+" ", "{ ")]
		if !slices.Contains(names, base) {
			continue
		}
		// client_golang writes no timestamps: the value is the last field.
		fs := strings.Fields(line)
		if v, err := strconv.ParseFloat(fs[len(fs)-1], 64); err == nil {
			out[base] += v
		}
	}
	return out, nil
}

// Median of xs (the lower middle for an even count); 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// Spread formats the median of xs with its min and max.
func Spread(xs []float64, format string) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf(format+" (min "+format+", max "+format+")", Median(xs), slices.Min(xs), slices.Max(xs))
}

// MiB converts bytes.
func MiB(b int64) float64 { return float64(b) / (1 << 20) }
