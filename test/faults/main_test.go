package faults

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bins are the real programs under test, built once by TestMain.
var bins struct {
	emitter, processor string
}

// seed drives every random choice of the suite (kill points, payloads). It
// is logged, and SITEWATCH_FAULT_SEED replays a run.
var seed uint64

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test skips itself; nothing to build.
		os.Exit(m.Run())
	}
	// The scenarios mostly wait (for a kill, an outage, a session timeout)
	// rather than compute, so more of them may run at once than there are
	// cores; -parallel on the command line still wins.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	seed = rand.Uint64()
	if s := os.Getenv("SITEWATCH_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "SITEWATCH_FAULT_SEED=%q: %v\n", s, err)
			os.Exit(2)
		}
		seed = v
	}
	fmt.Printf("fault suite seed %d (replay with SITEWATCH_FAULT_SEED=%d)\n", seed, seed)

	dir, err := os.MkdirTemp("", "sitewatch-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	bins.emitter = filepath.Join(dir, "emitter")
	bins.processor = filepath.Join(dir, "processor")
	start := time.Now()
	code := m.Run()
	// go test shows a passing package's output only with -v: the table
	// also goes to SITEWATCH_FAULT_REPORT when set.
	printFigures(os.Stdout, time.Since(start))
	if path := os.Getenv("SITEWATCH_FAULT_REPORT"); path != "" {
		if f, err := os.Create(path); err == nil {
			printFigures(f, time.Since(start))
			_ = f.Close()
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the emitter and the processor into dir, with the race
// detector when the suite itself runs under it.
func build(dir string) error {
	// go test puts its own GOROOT/bin first on the test's PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("find the go command: %w", err)
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/sitewatch/sitewatch/cmd/emitter", "github.com/sitewatch/sitewatch/cmd/processor")
	cmd := exec.Command(gobin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// skipShort skips a scenario under -short and otherwise marks it
// parallel: every scenario has its own Kafka and database.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("fault-injection suite: end-to-end with child processes; skipped under -short")
	}
	t.Parallel()
}

// rng returns a random source for one test, derived from the suite seed
// and the test name so that a replay gives each test the same choices.
func rng(t *testing.T) *rand.Rand {
	var h uint64 = 1469598103934665603
	for _, c := range []byte(t.Name()) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return rand.New(rand.NewPCG(seed, h))
}

// figure is one row of the summary: a fault, how often it was injected,
// and what the pipeline made of the events around it.
type figure struct {
	test     string
	fault    string
	injected int
	produced int // distinct events produced
	stored   int // distinct events in check_results (or dead letters)
	dupes    int // rows beyond one per event in check_results
	recovery time.Duration
	note     string
}

var figures struct {
	mu   sync.Mutex
	rows []figure
}

// record adds a row to the summary table and logs it.
func record(t *testing.T, f figure) {
	t.Helper()
	f.test = t.Name()
	t.Logf("figure: %s: injected %d, produced %d, stored %d, duplicates %d, recovery %v %s",
		f.fault, f.injected, f.produced, f.stored, f.dupes, f.recovery.Round(10*time.Millisecond), f.note)
	figures.mu.Lock()
	defer figures.mu.Unlock()
	figures.rows = append(figures.rows, f)
}

func printFigures(w io.Writer, took time.Duration) {
	figures.mu.Lock()
	defer figures.mu.Unlock()
	if len(figures.rows) == 0 {
		return
	}
	rows := slices.Clone(figures.rows)
	slices.SortStableFunc(rows, func(a, b figure) int { return strings.Compare(a.test, b.test) })
	fmt.Fprintf(w, "\nfault-injection summary (seed %d, %v):\n", seed, took.Round(time.Second))
	fmt.Fprintf(w, "| %-48s | %8s | %8s | %6s | %5s | %9s | %s\n", "fault", "injected", "produced", "stored", "dupes", "recovery", "note")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|---|\n", strings.Repeat("-", 50), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 8), strings.Repeat("-", 7), strings.Repeat("-", 11))
	for _, f := range rows {
		rec := "-"
		if f.recovery > 0 {
			rec = f.recovery.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(w, "| %-48s | %8d | %8d | %6d | %5d | %9s | %s\n", f.fault, f.injected, f.produced, f.stored, f.dupes, rec, f.note)
	}
}
