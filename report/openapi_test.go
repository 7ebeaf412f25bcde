package report_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/sitewatch/sitewatch/report"
	"github.com/sitewatch/sitewatch/report/reporttest"
)

// Every answer of GET /api/v1/report, good and bad, matches the OpenAPI
// document.
func TestAPIMatchesOpenAPI(t *testing.T) {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := reporttest.OpenSQLite(t)
	write(t, s, reporttest.Results())
	mux := http.NewServeMux()
	mux.Handle(report.Pattern, report.Handler(report.HandlerConfig{Source: s, Sites: func() []report.Site { return reporttest.Sites }}))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	for _, c := range []struct {
		query  string
		status int
		want   string
	}{
		{"from=2026-11-01&to=2026-11-01T01:00:00Z", 200, `"error_budget": null`},
		{"from=2026-11-01&to=2026-11-01T01:00:00Z&slo=99.9", 200, `"allowed_seconds": 3,`},
		{"month=2026-11", 200, `"range_seconds": 2592000,`},
		{"month=2026-13", 400, `"field":"month"`},
		{"from=2026-11-02&to=2026-11-01", 400, `"field":"to"`},
		{"month=2026-11&slo=0", 400, `"field":"slo"`},
	} {
		path := "/api/v1/report?" + c.query
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d, want %d with %s: %.400s", path, resp.StatusCode, c.status, c.want, body)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080"+path, nil)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s: not in the document: %v", path, err)
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{ExcludeRequestQueryParams: c.status == 400, MultiError: true}}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
			Header: resp.Header, Body: io.NopCloser(strings.NewReader(string(body))),
			Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s: answer does not match the document: %v\n%.600s", path, err, body)
		}
	}
}
