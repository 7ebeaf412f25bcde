package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/registry"
	"github.com/sitewatch/sitewatch/sitesapi"
)

const sitesUsage = `usage: sitewatch sites [-api URL | -brokers HOST:PORT] [-o text|json] COMMAND
commands:
  ls                      list the sites of the registry
  add URL [-name N] [-interval 30s] [-timeout 5s] [-regexp RE] [-method GET|HEAD]
                          add a site (owner api), or replace the API's site at URL
  rm URL|ID               remove a site (owner api)
  import FILE             add or replace every site of a sites file (owner api)
  export                  print the registry as a sites file (YAML; -o json: JSON)
The token for writes through -api is read from SITEWATCH_API_TOKEN.`

// RunSites is the sitewatch sites subcommand: it manages the sites registry
// through the sites API (-api) or straight on Kafka (-brokers), where it
// runs the same API handler in-process, so both paths apply one set of
// rules (validation, owners).
func RunSites(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sitewatch sites", flag.ContinueOnError)
	k := kafkaconn.RegisterFlags(fs)
	api := fs.String("api", os.Getenv("SITEWATCH_API_URL"), "base URL of the sitewatch HTTP server (env SITEWATCH_API_URL), e.g. http://127.0.0.1:8080")
	out := fs.String("o", "text", "output: text or json")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), sitesUsage); fs.PrintDefaults() }
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		return &UsageError{err}
	}
	if *out != "text" && *out != "json" {
		return Usagef("-o: %q is not text or json", *out)
	}
	if fs.NArg() == 0 {
		return Usagef("sites: no command; want ls, add, rm, import or export")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	var c *sitesClient
	switch {
	case *api != "" && len(k.Brokers) > 0:
		return Usagef("sites: give -api or -brokers, not both")
	case *api != "":
		u, err := url.Parse(*api)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Usagef("-api: %q is not an http or https URL", *api)
		}
		c = &sitesClient{base: strings.TrimSuffix(*api, "/"), token: os.Getenv(sitesapi.TokenEnv), http: &http.Client{Timeout: 30 * time.Second}}
	case len(k.Brokers) > 0:
		var stop func()
		var err error
		if c, stop, err = kafkaSitesClient(ctx, k); err != nil {
			return err
		}
		defer stop()
	default:
		return Usagef("sites: give -api URL (the sitewatch HTTP server) or -brokers (Kafka)")
	}
	return c.run(ctx, cmd, rest, *out == "json", stdout)
}

// SitesAPI is the sites API over a registry that follows the cluster's
// sitewatch_sites: the handler to mount on -http-addr, and the follower to
// run next to it.
type SitesAPI struct {
	Handler  *sitesapi.Handler
	Registry *registry.Registry
}

// NewSitesAPI creates the sites topic when missing and builds the API;
// token authorises writes (empty: read-only); consumer names the follower
// in dead letters. Call Start.
func NewSitesAPI(ctx context.Context, k *kafkaconn.Options, log *slog.Logger, consumer, token string) (*SitesAPI, error) {
	reg, err := newRegistry(ctx, k, log, consumer, nil)
	if err != nil {
		return nil, err
	}
	h, err := sitesapi.New(sitesapi.Config{Store: reg, Token: token, Logger: log})
	if err != nil {
		reg.Close()
		return nil, err
	}
	return &SitesAPI{Handler: h, Registry: reg}, nil
}

// Start follows the topic in the background until the returned stop is
// called, and waits until the registry has caught up.
func (s *SitesAPI) Start(ctx context.Context) (stop func(), err error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- s.Registry.Run(runCtx) }()
	stop = func() { cancel(); <-done; s.Registry.Close() }
	if err := s.Registry.WaitReady(ctx); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// kafkaSitesClient serves the sites API in-process over the cluster's
// registry, with a one-time token.
func kafkaSitesClient(ctx context.Context, k *kafkaconn.Options) (*sitesClient, func(), error) {
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	token := hex.EncodeToString(secret[:])
	api, err := NewSitesAPI(ctx, k, slog.New(slog.DiscardHandler), "sitewatch sites", token)
	if err != nil {
		return nil, nil, err
	}
	stop, err := api.Start(ctx)
	if err != nil {
		return nil, nil, err
	}
	return &sitesClient{base: "http://registry", token: token, http: &http.Client{Transport: handlerTransport{api.Handler}}}, stop, nil
}

// handlerTransport answers requests with a handler in-process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// sitesClient speaks the sites API.
type sitesClient struct {
	base, token string
	http        *http.Client
}

// apiError is an error answer of the API.
type apiError struct {
	Status int
	Msg    string `json:"error"`
	Field  string `json:"field"`
}

func (e *apiError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

func (c *sitesClient) do(ctx context.Context, method, path string, body, into any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if c.token != "" && method != http.MethodGet {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("sites API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("sites API: read the answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Msg == "" {
			e.Msg = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return e
	}
	if into != nil {
		if err := json.Unmarshal(data, into); err != nil {
			return fmt.Errorf("sites API: %s %s: answer is not the expected JSON: %w", method, path, err)
		}
	}
	return nil
}

func (c *sitesClient) list(ctx context.Context) ([]sitesapi.Site, error) {
	var out struct {
		Sites []sitesapi.Site `json:"sites"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/sites", nil, &out)
	return out.Sites, err
}

// store adds site, or replaces it when the API already has one at its URL.
func (c *sitesClient) store(ctx context.Context, site codecs.SiteFields) (sitesapi.Site, string, error) {
	var got sitesapi.Site
	err := c.do(ctx, http.MethodPost, "/api/v1/sites", site, &got)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusConflict {
		err = c.do(ctx, http.MethodPut, "/api/v1/sites/"+sitesapi.SiteID(site.URL), site, &got)
		return got, "replaced", err
	}
	return got, "added", err
}

func (c *sitesClient) run(ctx context.Context, cmd string, args []string, asJSON bool, stdout io.Writer) error {
	switch cmd {
	case "ls", "export":
		if len(args) > 0 {
			return Usagef("sites %s: unexpected argument %q", cmd, args[0])
		}
		sites, err := c.list(ctx)
		if err != nil {
			return err
		}
		switch {
		case asJSON:
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"sites": sites})
		case cmd == "export":
			return writeSitesYAML(stdout, sites)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "URL\tNAME\tINTERVAL\tTIMEOUT\tOWNER\tID")
		for _, s := range sites {
			name := s.Name
			if name == s.URL {
				name = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.URL, name, s.Interval, s.Timeout, s.Owner, s.ID)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d sites\n", len(sites))
		return nil
	case "add":
		return c.add(ctx, args, asJSON, stdout)
	case "rm":
		if len(args) != 1 {
			return Usagef("sites rm: want one URL or id")
		}
		id := args[0]
		if strings.Contains(id, "://") {
			id = sitesapi.SiteID(id)
		}
		if err := c.do(ctx, http.MethodDelete, "/api/v1/sites/"+url.PathEscape(id), nil, nil); err != nil {
			return err
		}
		return report(stdout, asJSON, map[string]any{"removed": args[0]}, "removed "+args[0])
	case "import":
		if len(args) != 1 {
			return Usagef("sites import: want one sites file")
		}
		f, err := LoadSites(args[0])
		if err != nil {
			return err
		}
		var added, replaced int
		for _, s := range f.Sites {
			_, how, err := c.store(ctx, codecs.FieldsOf(s))
			if err != nil {
				return fmt.Errorf("%s:%d: site %q: %w (%d added, %d replaced before it)", f.Path, s.Line, s.URL, err, added, replaced)
			}
			if how == "added" {
				added++
			} else {
				replaced++
			}
		}
		return report(stdout, asJSON, map[string]any{"added": added, "replaced": replaced},
			fmt.Sprintf("imported %s: %d added, %d replaced", f.Path, added, replaced))
	}
	return Usagef("sites: unknown command %q; want ls, add, rm, import or export", cmd)
}

func (c *sitesClient) add(ctx context.Context, args []string, asJSON bool, stdout io.Writer) error {
	fs := flag.NewFlagSet("sitewatch sites add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "name (default: the URL)")
	interval := fs.String("interval", "", "interval, e.g. 30s (default 60s)")
	timeout := fs.String("timeout", "", "timeout, e.g. 5s (default 10s, at most the interval)")
	re := fs.String("regexp", "", "regexp the body must match (RE2)")
	method := fs.String("method", "", "GET or HEAD")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return Usagef("sites add: want the URL first: sites add URL [-interval 30s] ...")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return &UsageError{fmt.Errorf("sites add: %w", err)}
	}
	if fs.NArg() > 0 {
		return Usagef("sites add: unexpected argument %q", fs.Arg(0))
	}
	body := map[string]any{"url": args[0]}
	for k, v := range map[string]string{"name": *name, "interval": *interval, "timeout": *timeout, "regexp": *re, "method": *method} {
		if v != "" {
			body[k] = v
		}
	}
	data, _ := json.Marshal(body)
	// Checked here too, for a message naming the flag before any request.
	site, _, err := config.ParseSiteJSON("sites add", data)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && ce.Field != "" {
			return Usagef("sites add: -%s: %s", ce.Field, ce.Msg)
		}
		return &UsageError{err}
	}
	got, how, err := c.store(ctx, codecs.FieldsOf(site))
	if err != nil {
		return err
	}
	return report(stdout, asJSON, got, fmt.Sprintf("%s %s (id %s, every %s)", how, got.URL, got.ID, got.Interval))
}

func report(w io.Writer, asJSON bool, v any, text string) error {
	if asJSON {
		return json.NewEncoder(w).Encode(v)
	}
	_, err := fmt.Fprintln(w, text)
	return err
}

// writeSitesYAML writes sites as a sites file that -sites and
// `sites import` read back. A sites file names its CA certificates by
// path, which the registry does not keep: a site's tls.ca_pem is left out,
// with a comment saying so.
func writeSitesYAML(w io.Writer, sites []sitesapi.Site) error {
	out := struct {
		Sites []codecs.SiteFields `yaml:"sites"`
	}{}
	var noCA []string
	for _, s := range sites {
		y := s.SiteFields
		// Leave out what the file's defaults say anyway.
		if y.Name == y.URL {
			y.Name = ""
		}
		if y.Method == config.DefaultMethod {
			y.Method = ""
		}
		if y.TLS != nil && y.TLS.CAPEM != "" {
			t := *y.TLS
			t.CAPEM = ""
			y.TLS = &t
			noCA = append(noCA, s.URL)
		}
		out.Sites = append(out.Sites, y)
	}
	fmt.Fprintln(w, "# sitewatch sites export")
	for _, u := range noCA {
		fmt.Fprintf(w, "# %s: its CA certificates (tls.ca_pem) are not exported; add tls.ca_file\n", u)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return err
	}
	return enc.Close()
}

// newRegistry ensures the sites topic and connects a follower of it,
// named consumer in dead letters, calling onChange (if not nil) as the
// registry does.
func newRegistry(ctx context.Context, k *kafkaconn.Options, log *slog.Logger, consumer string, onChange func([]registry.Entry)) (*registry.Registry, error) {
	cfg, err := k.Sarama()
	if err != nil {
		return nil, &UsageError{err}
	}
	if err := k.EnsureSitesTopic(ctx, cfg, log); err != nil {
		return nil, err
	}
	topics := k.Topics()
	return registry.New(registry.Config{
		Brokers: k.Brokers, Sarama: cfg, Topic: string(topics.Sites), DeadLetters: string(topics.DeadLetters),
		Consumer: consumer, Logger: log, OnChange: onChange,
	})
}
