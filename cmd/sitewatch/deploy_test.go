package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
)

// The files users deploy next to sitewatch, relative to this package.
const (
	dashboardFile   = "../../deploy/grafana/sitewatch.json"
	datasourcesFile = "../../deploy/grafana/provisioning/datasources/sitewatch.yaml"
	rulesFile       = "../../deploy/prometheus/sitewatch-rules.yml"
	prometheusFile  = "../../deploy/prometheus/prometheus.yml"
)

// dashboard is the part of Grafana's dashboard JSON the tests read.
type dashboard struct {
	Panels []struct {
		Title      string `json:"title"`
		Type       string `json:"type"`
		Datasource struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RefID  string `json:"refId"`
			RawSQL string `json:"rawSql"`
			Format string `json:"format"`
			Expr   string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// promExprs are the dashboard's PromQL expressions and the rules' exprs,
// each named for the error messages.
func promExprs(t *testing.T, d dashboard) map[string]string {
	t.Helper()
	exprs := map[string]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr != "" {
				exprs[fmt.Sprintf("dashboard %q %s", p.Title, tg.RefID)] = tg.Expr
			}
		}
	}
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["rule "+r.Alert] = r.Expr
		}
	}
	return exprs
}

// TestDeployFilesAgree: the dashboard's datasources are the provisioned
// ones, the provisioned PostgreSQL is the Compose file's, and Prometheus
// scrapes the ports the programs serve metrics on and loads the rules
// file where Compose mounts it.
func TestDeployFilesAgree(t *testing.T) {
	d := readDashboard(t)
	var ds struct {
		Datasources []struct {
			UID      string `yaml:"uid"`
			Type     string `yaml:"type"`
			URL      string `yaml:"url"`
			User     string `yaml:"user"`
			JSONData struct {
				Database string `yaml:"database"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, datasourcesFile, &ds)
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	readYAML(t, "../../docker-compose.yml", &compose)
	provisioned := map[string]string{}
	for _, s := range ds.Datasources {
		provisioned[s.UID] = s.Type
		if s.Type == "grafana-postgresql-datasource" {
			pg := compose.Services["postgres"].Environment
			if s.URL != "postgres:5432" || s.User != pg["POSTGRES_USER"] || s.JSONData.Database != pg["POSTGRES_DB"] {
				t.Errorf("PostgreSQL datasource %s@%s/%s is not the Compose file's postgres service", s.User, s.URL, s.JSONData.Database)
			}
		}
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if got, ok := provisioned[p.Datasource.UID]; !ok || got != p.Datasource.Type {
			t.Errorf("panel %q: datasource %s (%s) is not provisioned (%v)", p.Title, p.Datasource.UID, p.Datasource.Type, provisioned)
		}
	}

	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, prometheusFile, &prom)
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for _, svc := range []string{"emitter", "processor"} {
		want := svc + compose.Services[svc].Environment["SITEWATCH_METRICS_ADDR"]
		if !slices.Contains(targets, want) {
			t.Errorf("prometheus.yml scrapes %q, not the %s's %s", targets, svc, want)
		}
	}
	mounts := compose.Services["prometheus"].Volumes
	for _, rf := range prom.RuleFiles {
		if !slices.Contains(mounts, "./deploy/prometheus/sitewatch-rules.yml:"+rf+":ro") {
			t.Errorf("rule file %s is not where docker-compose.yml mounts deploy/prometheus/sitewatch-rules.yml (%q)", rf, mounts)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestPromtoolChecksRules: the rules file and every PromQL expression of
// the dashboard (as recording rules) pass `promtool check rules`.
func TestPromtoolChecksRules(t *testing.T) {
	promtool := testkit.Tool(t, "promtool", "deploy/prometheus/sitewatch-rules.yml and the dashboard's PromQL are not checked", "apt-get install prometheus")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for name, expr := range promExprs(t, readDashboard(t)) {
		if !strings.HasPrefix(name, "dashboard ") {
			continue
		}
		n++
		q, _ := json.Marshal(grafanaPromQL(expr))
		fmt.Fprintf(&b, "      - record: sitewatch:dashboard_%d\n        expr: %s\n", n, q)
	}
	dashRules := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(dashRules, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{rulesFile, dashRules} {
		if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules %s: %v\n%s", f, err, out)
		}
	}
}

// grafanaPromQL replaces the Grafana variables of a PromQL expression with
// what Grafana would send.
func grafanaPromQL(expr string) string {
	return strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s").Replace(expr)
}

// TestDashboardAndRulesAgainstARunningPipeline runs sitewatch against kfake
// and PostgreSQL on local sites (up, 503, regexp miss, refused), feeds one
// undecodable result so that dead letters exist, then runs every SQL query
// of the dashboard against the database the pipeline filled and checks
// that every metric (and label) the dashboard and the alerting rules name
// is in a scrape of /metrics.
func TestDashboardAndRulesAgainstARunningPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	d := readDashboard(t)
	dbURL := testkit.Postgres(t)
	_, addrs := testkit.Kafka(t)
	sitesFile, sites := sitesFixture(t)
	metricsAddr := freeAddr(t)
	from := time.Now().UTC().Add(-time.Hour)
	stop, _, logs := startSitewatch(t, "-sites", sitesFile, "-brokers", testkit.JoinAddrs(addrs), "-database-url", dbURL,
		"-data-dir", t.TempDir(), "-window-size", windowSize.String(), "-flush-interval", "200ms", "-table", "off",
		"-topic-partitions", "2", "-metrics-addr", metricsAddr)
	db := openStore(t, "pgx", dbURL)

	// One undecodable result: the windows processor and the results sink
	// each send it to the dead-letter topic.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitFor(t, ctx, logs, "the topics", func() bool {
		return strings.Contains(scrape(t, metricsAddr), "sitewatch_schedule_sites")
	})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: kafkaconn.TopicSucceeded, Key: []byte(sites[0].url), Value: []byte(`{"v":1,"not":"a result"}`)}).FirstErr(); err != nil {
		t.Fatalf("produce a bad result: %v", err)
	}
	waitFor(t, ctx, logs, "windows of every site and both dead letters", func() bool {
		var urls int
		if err := db.db.QueryRowContext(ctx, `SELECT count(DISTINCT url) FROM check_windows`).Scan(&urls); err != nil {
			return false // the tables are made at start
		}
		body := scrape(t, metricsAddr)
		return urls == len(sites) && strings.Contains(body, "\nsitewatch_sink_dead_letters_total{") &&
			!strings.Contains(body, "\nsitewatch_windows_dead_letters_total 0\n") && strings.Contains(body, "\nsitewatch_sink_consumer_lag{")
	})
	families := parseMetrics(t, scrape(t, metricsAddr))
	to := time.Now().UTC().Add(time.Hour)
	// The queries get their own time, whatever the waits took.
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("PromQL names exported metrics", func(t *testing.T) {
		for name, expr := range promExprs(t, d) {
			if problems := checkPromQL(expr, families); len(problems) > 0 {
				t.Errorf("%s: %s\n  expr: %s", name, strings.Join(problems, "; "), expr)
			}
		}
	})

	// The site variable first: the panels' queries use its values.
	var siteValues []string
	for _, v := range d.Templating.List {
		if v.Name != "site" {
			continue
		}
		rows, err := db.db.QueryContext(ctx, grafanaSQL(v.Query, from, to, nil))
		if err != nil {
			t.Fatalf("variable %s: %v\n%s", v.Name, err, v.Query)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			siteValues = append(siteValues, s)
		}
		rows.Close()
	}
	if len(siteValues) != len(sites) {
		t.Fatalf("variable site: %d values %q, want the %d sites", len(siteValues), siteValues, len(sites))
	}

	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.RawSQL == "" {
				continue
			}
			t.Run("SQL "+p.Title, func(t *testing.T) {
				if strings.Contains(tg.RawSQL, "incidents_open") {
					var exists bool
					if err := db.db.QueryRowContext(ctx, `SELECT to_regclass('incidents_open') IS NOT NULL`).Scan(&exists); err != nil {
						t.Fatal(err)
					}
					if !exists {
						t.Skip("PANEL NOT TESTED: the view incidents_open does not exist yet (migration 000003, alerts); re-enable when it lands")
					}
				}
				checkSQLPanel(t, ctx, db.db, p.Type, tg.Format, grafanaSQL(tg.RawSQL, from, to, siteValues), strings.Contains(tg.RawSQL, "incidents_open"))
			})
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("exit status %d; logs:\n%s", code, logs.String())
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, logs *syncBuffer, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s; logs:\n%s", what, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	return string(body)
}

// parseMetrics reads a scrape into metric families.
func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

var (
	metricName = regexp.MustCompile(`\bsitewatch_[a-z0-9_]+\b`)
	// by (a, b) / without (a) clauses and {a="x", b=~"y"} matchers.
	groupLabels   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcherLabels = regexp.MustCompile(`\{([^}]*)\}`)
	matcherName   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// checkPromQL lists what expr names that the scrape lacks: metrics, and
// labels in groupings and matchers (besides le, and the instance and job
// labels Prometheus adds).
func checkPromQL(expr string, fams map[string]*dto.MetricFamily) []string {
	var problems []string
	labels := map[string]bool{"le": true, "instance": true, "job": true}
	names := metricName.FindAllString(expr, -1)
	if len(names) == 0 {
		problems = append(problems, "names no sitewatch metric")
	}
	for _, n := range names {
		fam, ok := fams[n]
		if !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, cut := strings.CutSuffix(n, suffix); cut {
					if f, found := fams[base]; found && f.GetType() == dto.MetricType_HISTOGRAM {
						fam, ok = f, true
					}
				}
			}
		}
		if !ok {
			problems = append(problems, "metric "+n+" is not exported")
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
	}
	var used []string
	for _, m := range groupLabels.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				used = append(used, l)
			}
		}
	}
	for _, m := range matcherLabels.FindAllStringSubmatch(expr, -1) {
		for _, l := range matcherName.FindAllStringSubmatch(m[1], -1) {
			used = append(used, l[1])
		}
	}
	for _, l := range used {
		if !labels[l] {
			problems = append(problems, "label "+l+" is on none of its metrics")
		}
	}
	return problems
}

// grafanaSQL expands the Grafana macros and variables a query uses, as
// Grafana's PostgreSQL datasource does: $__timeFilter(col) to a BETWEEN on
// the dashboard's range, $__timeFrom() and $__timeTo() to its ends, $__timeGroupAlias(col, $__interval) to epoch
// buckets named "time", and $site to the quoted list of the selected
// sites ("All" selects every value).
func grafanaSQL(q string, from, to time.Time, sites []string) string {
	const interval = 5 * time.Second
	q = regexp.MustCompile(`\$__timeFilter\(([a-z_]+)\)`).ReplaceAllString(q,
		fmt.Sprintf("$1 BETWEEN '%s' AND '%s'", from.Format(time.RFC3339), to.Format(time.RFC3339)))
	q = strings.NewReplacer("$__timeFrom()", "'"+from.Format(time.RFC3339)+"'", "$__timeTo()", "'"+to.Format(time.RFC3339)+"'").Replace(q)
	secs := strconv.Itoa(int(interval.Seconds()))
	q = regexp.MustCompile(`\$__timeGroupAlias\(([a-z_]+),\s*\$__interval\)`).ReplaceAllString(q,
		`floor(extract(epoch from $1)/`+secs+`)*`+secs+` AS "time"`)
	quoted := make([]string, len(sites))
	for i, s := range sites {
		quoted[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return strings.ReplaceAll(q, "$site", strings.Join(quoted, ","))
}

// checkSQLPanel runs one panel query and checks the shape Grafana needs:
// a time series has a "time" column (timestamp or epoch), a text "metric"
// column and numeric values, and at least one row; a table has rows (the
// open incidents may have none).
func checkSQLPanel(t *testing.T, ctx context.Context, db *sql.DB, panelType, format, q string, mayBeEmpty bool) {
	t.Helper()
	if strings.Contains(q, "$") {
		t.Fatalf("unexpanded Grafana macro or variable:\n%s", q)
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	numeric := func(typ string) bool {
		return slices.Contains([]string{"INT2", "INT4", "INT8", "FLOAT4", "FLOAT8", "NUMERIC"}, typ)
	}
	var values int
	if format == "time_series" {
		if panelType != "timeseries" {
			t.Errorf("format time_series in a %s panel", panelType)
		}
		if len(cols) < 3 || cols[0].Name() != "time" || cols[1].Name() != "metric" {
			t.Fatalf("columns %v: want time, metric, values…", colNames(cols))
		}
		if typ := cols[0].DatabaseTypeName(); typ != "TIMESTAMPTZ" && !numeric(typ) {
			t.Errorf("time column is %s", typ)
		}
		if typ := cols[1].DatabaseTypeName(); typ != "TEXT" {
			t.Errorf("metric column is %s, want text", typ)
		}
		for _, c := range cols[2:] {
			if !numeric(c.DatabaseTypeName()) {
				t.Errorf("value column %s is %s, not a number", c.Name(), c.DatabaseTypeName())
			}
			values++
		}
	}
	n := 0
	for rows.Next() {
		dest := make([]any, len(cols))
		for i := range dest {
			dest[i] = new(any)
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		if format == "time_series" && (*dest[0].(*any) == nil || *dest[1].(*any) == nil) {
			t.Errorf("row %d: null time or metric", n)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 && !mayBeEmpty {
		t.Errorf("no rows over the seeded database; columns %v\n%s", colNames(cols), q)
	}
	t.Logf("%d rows, columns %v", n, colNames(cols))
}

func colNames(cols []*sql.ColumnType) []string {
	var names []string
	for _, c := range cols {
		names = append(names, c.Name()+" "+c.DatabaseTypeName())
	}
	return names
}
