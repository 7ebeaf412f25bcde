package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Limits of the HTTP handler: a report reads every raw check of the range,
// so the range is bounded (a month and a day more than the longest month)
// and so is the time spent on one request.
const (
	MaxHTTPRange = 32 * 24 * time.Hour
	httpTimeout  = 25 * time.Second
)

// Pattern is the route Handler answers on the server.
const Pattern = "GET /api/v1/report"

// HandlerConfig configures Handler.
type HandlerConfig struct {
	Source Source
	// Sites returns the configured sites (names, intervals); nil or empty
	// lists only the sites seen in the store.
	Sites func() []Site
	// Now is the clock for a range without to; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Handler serves GET /api/v1/report?from=&to=&month=&slo= with the JSON
// of `sitewatch report -format json` for the same parameters. Errors are
// JSON {"error": "…", "field": "…"}.
func Handler(c HandlerConfig) http.Handler {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed", "")
			return
		}
		q := r.URL.Query()
		for name := range q {
			switch name {
			case "from", "to", "month", "slo":
			default:
				writeError(w, http.StatusBadRequest, "unknown parameter (want from, to, month, slo)", name)
				return
			}
		}
		opts, err := ParseOptions(q.Get("month"), q.Get("from"), q.Get("to"), q.Get("slo"), now())
		if err == nil && opts.To.Sub(opts.From) > MaxHTTPRange {
			err = &FieldError{Field: "to", Msg: "range longer than " + human(MaxHTTPRange) + " (use `sitewatch report` for longer ones)"}
		}
		var fe *FieldError
		if errors.As(err, &fe) {
			writeError(w, http.StatusBadRequest, fe.Msg, fe.Field)
			return
		}
		if c.Sites != nil {
			opts.Sites = c.Sites()
		}
		ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
		defer cancel()
		rep, err := Build(ctx, c.Source, opts)
		if err != nil {
			logger.Error("report failed", "err", err)
			writeError(w, http.StatusInternalServerError, "the report could not be read from the store", "")
			return
		}
		var buf bytes.Buffer
		if err := WriteJSON(&buf, rep); err != nil {
			logger.Error("report failed", "err", err)
			writeError(w, http.StatusInternalServerError, "the report could not be encoded", "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(buf.Bytes())
	})
}

// ParseOptions reads the parameters the command and the API share (the
// sites are the caller's business).
func ParseOptions(month, from, to, slo string, now time.Time) (Options, error) {
	f, t, err := ParseRange(month, from, to, now)
	if err != nil {
		return Options{}, err
	}
	o := Options{From: f, To: t}
	if slo != "" {
		if o.SLO, err = ParseSLO("slo", slo); err != nil {
			return Options{}, err
		}
	}
	return o, nil
}

func writeError(w http.ResponseWriter, code int, msg, field string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]string{"error": msg}
	if field != "" {
		body["field"] = field
	}
	_ = json.NewEncoder(w).Encode(body)
}
