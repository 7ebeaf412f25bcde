package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/sitewatch/sitewatch/history/historytest"
	"github.com/sitewatch/sitewatch/internal/app"
	"github.com/sitewatch/sitewatch/internal/testkit"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/report"
	"github.com/sitewatch/sitewatch/sitesapi"
	"github.com/sitewatch/sitewatch/web"
)

var decoders sync.Once

// openAPI loads and validates docs/openapi.yaml, the one document of
// every route (package report's answers are checked here too).
func openAPI(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	// The decoders are global: registered once, before any validation.
	decoders.Do(func() {
		openapi3filter.RegisterBodyDecoder("image/svg+xml", openapi3filter.FileBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder)
	})
	doc, err := openapi3.NewLoader().LoadFromFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// fullServer is the server as the processor's web part builds it: the
// pages over a seeded SQLite store, the report, and the sites API's writes
// over a registry on an in-process Kafka.
func fullServer(t *testing.T, token string) (*web.Server, historytest.Scenario) {
	t.Helper()
	st := stores(t)["sqlite"]
	sc := historytest.Seed(t, st, time.Now().Add(-time.Minute))
	source, ok := st.(report.Source)
	if !ok {
		t.Fatalf("%T cannot report", st)
	}
	routes := map[string]http.Handler{
		report.Pattern: report.Handler(report.HandlerConfig{Source: source}),
	}
	_, addrs := testkit.Kafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	kafkaconn.RouteSaramaLogs(log)
	api, err := app.NewSitesAPI(ctx, &kafkaconn.Options{Brokers: addrs, Partitions: 3, Replication: 1}, log, "test", token)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := api.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	for _, p := range sitesapi.WritePatterns {
		routes[p] = api.Handler
	}
	srv, err := web.New(web.Config{Reader: st, Sites: seededSites, Now: func() time.Time { return sc.Now }, Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	return srv, sc
}

// Every route the server registers is an operation of docs/openapi.yaml,
// and every path of the document is served.
func TestEveryRouteDocumented(t *testing.T) {
	t.Parallel()
	doc, _ := openAPI(t)
	srv, _ := fullServer(t, "")
	served := map[string]bool{}
	for _, p := range srv.Patterns() {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			t.Errorf("pattern %q has no method: the document cannot say what it answers", p)
			continue
		}
		path = strings.TrimSuffix(path, "{$}")
		served[method+" "+path] = true
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("%s is served but not in docs/openapi.yaml", p)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !served[method+" "+path] {
				t.Errorf("docs/openapi.yaml describes %s %s, which the server does not serve", method, path)
			}
		}
	}
	if len(served) < 12 {
		t.Errorf("only %d routes served: %v", len(served), srv.Patterns())
	}
}

// The report's and the sites API's real answers, good and bad, match
// docs/openapi.yaml.
func TestReportAndWritesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	_, router := openAPI(t)
	const token = "s3cret"
	srv, sc := fullServer(t, token)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	ro, _ := fullServer(t, "")
	tsRO := httptest.NewServer(ro)
	t.Cleanup(tsRO.Close)

	apiID := sitesapi.SiteID("https://api.example/")
	from := url.QueryEscape(sc.Now.Add(-2 * time.Hour).Format(time.RFC3339))
	auth := "Bearer " + token
	for _, c := range []struct {
		base, method, path, auth, body string
		status                         int
		want                           string
	}{
		{ts.URL, "GET", "/api/v1/report?from=" + from, "", "", 200, `"incidents_source"`},
		{ts.URL, "GET", "/api/v1/report?from=" + from + "&slo=99.9", "", "", 200, `"allowed_seconds"`},
		{ts.URL, "GET", "/api/v1/report?month=2026-11", "", "", 200, `"range_seconds": 2592000,`},
		{ts.URL, "GET", "/api/v1/report?month=2026-13", "", "", 400, `"field":"month"`},
		{ts.URL, "GET", "/api/v1/report?from=2026-11-02&to=2026-11-01", "", "", 400, `"field":"to"`},
		{ts.URL, "GET", "/api/v1/report?month=2026-11&slo=0", "", "", 400, `"field":"slo"`},
		{ts.URL, "POST", "/api/v1/sites", "", `{"url":"https://api.example/"}`, 401, "missing or wrong token"},
		{ts.URL, "POST", "/api/v1/sites", "Bearer wrong", `{"url":"https://api.example/"}`, 401, "missing or wrong token"},
		{tsRO.URL, "POST", "/api/v1/sites", auth, `{"url":"https://api.example/"}`, 403, "read-only"},
		{tsRO.URL, "DELETE", "/api/v1/sites/" + apiID, auth, "", 403, "read-only"},
		{ts.URL, "POST", "/api/v1/sites", auth, `{"url":"https://api.example/","interval":"500ms"}`, 400, `"field":"interval"`},
		{ts.URL, "POST", "/api/v1/sites", auth, `{"url":"https://api.example/","colour":"red"}`, 400, `"field":"colour"`},
		{ts.URL, "POST", "/api/v1/sites", auth, `{"url":"https://api.example/","name":"` + strings.Repeat("x", sitesapi.MaxBody) + `"}`, 413, "over"},
		{ts.URL, "POST", "/api/v1/sites", auth, `{"url":"https://api.example/","interval":"30s","name":"API"}`, 201, `"owner":"api"`},
		{ts.URL, "POST", "/api/v1/sites", auth, `{"url":"https://api.example/"}`, 409, `"field":"url"`},
		{ts.URL, "PUT", "/api/v1/sites/" + apiID, auth, `{"url":"https://other.example/"}`, 400, `"field":"url"`},
		{ts.URL, "PUT", "/api/v1/sites/" + apiID, auth, `{"url":"https://api.example/","interval":"1m"}`, 200, `"interval":"1m"`},
		{ts.URL, "PUT", "/api/v1/sites/nope", auth, `{"url":"https://api.example/"}`, 404, `"field":"id"`},
		{ts.URL, "DELETE", "/api/v1/sites/" + apiID, auth, "", 204, ""},
		{ts.URL, "DELETE", "/api/v1/sites/" + apiID, auth, "", 404, `"field":"id"`},
	} {
		name := fmt.Sprintf("%s %s (%d)", c.method, c.path, c.status)
		if len(name) > 120 {
			name = name[:120]
		}
		req, _ := http.NewRequest(c.method, c.base+c.path, strings.NewReader(c.body))
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d, want %d with %s: %.300s", name, resp.StatusCode, c.status, c.want, body)
			continue
		}
		matchesDoc(t, router, req, c.path, resp, body)
	}
}

// matchesDoc validates an answer to req (made to path) against the
// document, as it is served from.
func matchesDoc(t *testing.T, router routers.Router, req *http.Request, path string, resp *http.Response, body []byte) {
	t.Helper()
	req.URL, _ = url.Parse("http://127.0.0.1:8080" + path)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Errorf("%s %s: not in docs/openapi.yaml: %v", req.Method, path, err)
		return
	}
	// A refused request's parameters or body are wrong on purpose.
	bad := resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{ExcludeRequestQueryParams: bad, ExcludeRequestBody: bad, MultiError: true}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s: answer does not match docs/openapi.yaml: %v\n%.600s", req.Method, path, err, body)
	}
}
