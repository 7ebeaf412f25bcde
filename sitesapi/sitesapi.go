package sitesapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sitewatch/sitewatch/codecs"
	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/history"
	"github.com/sitewatch/sitewatch/registry"
)

// MaxBody bounds a request body: a site with many headers fits easily.
const MaxBody = 64 << 10

// TokenEnv is the environment variable holding the API token.
const TokenEnv = "SITEWATCH_API_TOKEN"

// WritePatterns are the routes that change the registry: the server on
// -http-addr mounts these next to the status page's reads (its own GET
// routes answer for the status page's sites).
var WritePatterns = []string{"POST /api/v1/sites", "PUT /api/v1/sites/{id}", "DELETE /api/v1/sites/{id}"}

// Store is the registry as the API uses it.
type Store interface {
	Sites() []registry.Entry
	Get(url string) (registry.Entry, bool)
	Put(ctx context.Context, site config.Site, owner string) error
	Delete(ctx context.Context, url string) error
}

var _ Store = (*registry.Registry)(nil)

// Config configures a Handler.
type Config struct {
	Store Store
	// Token authorises writes; empty makes the API read-only.
	Token  string
	Logger *slog.Logger
}

// Handler serves the sites API.
type Handler struct {
	store Store
	token [sha256.Size]byte
	open  bool // writes allowed (a token is configured)
	log   *slog.Logger
	mux   *http.ServeMux
}

// New returns the API's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("sitesapi: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{store: cfg.Store, log: cfg.Logger, mux: http.NewServeMux(), open: cfg.Token != ""}
	// Hashes have one length whatever the token's, so the comparison's
	// time says nothing about it.
	h.token = sha256.Sum256([]byte(cfg.Token))
	h.mux.HandleFunc("GET /api/v1/sites", h.list)
	h.mux.HandleFunc("POST /api/v1/sites", h.write(h.create))
	h.mux.HandleFunc("GET /api/v1/sites/{id}", h.get)
	h.mux.HandleFunc("PUT /api/v1/sites/{id}", h.write(h.replace))
	h.mux.HandleFunc("DELETE /api/v1/sites/{id}", h.write(h.remove))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Site is a site as the API shows it: the sites file's fields, every
// default applied, with its id and owner.
type Site struct {
	ID string `json:"id"`
	codecs.SiteFields
	Owner string `json:"owner"`
}

func view(e registry.Entry) Site {
	return Site{ID: SiteID(e.Site.URL), SiteFields: codecs.FieldsOf(e.Site), Owner: e.Owner}
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	entries := h.store.Sites()
	out := make([]Site, len(entries))
	for i, e := range entries {
		out[i] = view(e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": out})
}

// find returns the site whose id is the request's {id}.
func (h *Handler) find(r *http.Request) (registry.Entry, bool) {
	id := r.PathValue("id")
	for _, e := range h.store.Sites() {
		if SiteID(e.Site.URL) == id {
			return e, true
		}
	}
	return registry.Entry{}, false
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	e, ok := h.find(r)
	if !ok {
		writeError(w, http.StatusNotFound, "no site with this id", "id")
		return
	}
	writeJSON(w, http.StatusOK, view(e))
}

// write wraps a writing route with the token check.
func (h *Handler) write(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.open {
			writeError(w, http.StatusForbidden, "the sites API is read-only: start the server with "+TokenEnv+" set to allow changes", "")
			return
		}
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(given))
		if subtle.ConstantTimeCompare(sum[:], h.token[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sitewatch"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong token; send Authorization: Bearer <"+TokenEnv+">", "")
			return
		}
		next(w, r)
	}
}

// body reads and validates the site in the request body; it answers the
// request itself when the body is not a valid site.
func (h *Handler) body(w http.ResponseWriter, r *http.Request) (config.Site, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", MaxBody), "")
		} else {
			writeError(w, http.StatusBadRequest, "reading the body: "+err.Error(), "")
		}
		return config.Site{}, false
	}
	site, _, err := config.ParseSiteJSON("request body", data)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			writeError(w, http.StatusBadRequest, ce.Msg, ce.Field)
		} else {
			writeError(w, http.StatusBadRequest, err.Error(), "")
		}
		return config.Site{}, false
	}
	return site, true
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	site, ok := h.body(w, r)
	if !ok {
		return
	}
	if cur, exists := h.store.Get(site.URL); exists {
		writeError(w, http.StatusConflict, fmt.Sprintf("a site with this url exists (id %s, owner %s); PUT /api/v1/sites/%s changes it", SiteID(cur.Site.URL), cur.Owner, SiteID(cur.Site.URL)), "url")
		return
	}
	h.put(w, r, site, http.StatusCreated)
}

func (h *Handler) replace(w http.ResponseWriter, r *http.Request) {
	cur, ok := h.find(r)
	if !ok {
		writeError(w, http.StatusNotFound, "no site with this id; POST /api/v1/sites adds one", "id")
		return
	}
	if !h.owned(w, cur) {
		return
	}
	site, ok := h.body(w, r)
	if !ok {
		return
	}
	if site.URL != cur.Site.URL {
		// The URL is the site's key: a new URL is a new site.
		writeError(w, http.StatusBadRequest, fmt.Sprintf("differs from the site's url %q; delete this site and add the new one", cur.Site.URL), "url")
		return
	}
	h.put(w, r, site, http.StatusOK)
}

func (h *Handler) remove(w http.ResponseWriter, r *http.Request) {
	cur, ok := h.find(r)
	if !ok {
		writeError(w, http.StatusNotFound, "no site with this id", "id")
		return
	}
	if !h.owned(w, cur) {
		return
	}
	if err := h.store.Delete(r.Context(), cur.Site.URL); err != nil {
		h.failed(w, "delete", cur.Site.URL, err)
		return
	}
	h.log.Info("site removed through the API", "url", cur.Site.URL)
	w.WriteHeader(http.StatusNoContent)
}

// owned refuses a change to a site that a sites file owns: the file
// would put it back at its next publication.
func (h *Handler) owned(w http.ResponseWriter, e registry.Entry) bool {
	if e.Owner == codecs.OwnerAPI {
		return true
	}
	writeError(w, http.StatusConflict, fmt.Sprintf("the site belongs to %s; change it in that file", e.Owner), "")
	return false
}

func (h *Handler) put(w http.ResponseWriter, r *http.Request, site config.Site, status int) {
	if err := h.store.Put(r.Context(), site, codecs.OwnerAPI); err != nil {
		h.failed(w, "store", site.URL, err)
		return
	}
	h.log.Info("site stored through the API", "url", site.URL, "status", status)
	writeJSON(w, status, view(registry.Entry{Site: site, Owner: codecs.OwnerAPI}))
}

func (h *Handler) failed(w http.ResponseWriter, what, url string, err error) {
	h.log.Error("sites API: "+what+" failed", "url", url, "err", err)
	writeError(w, http.StatusServiceUnavailable, "the sites registry could not be written; try again", "")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	body := map[string]string{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, status, body)
}

// SiteID is the site's id in the routes: history.SiteID, the one
// definition the status page uses too.
func SiteID(url string) string { return history.SiteID(url) }
