package web

import (
	"fmt"
	"html/template"
	"net/http"

	"github.com/sitewatch/sitewatch/history"
)

// Badge colours, as shields.io names them.
const (
	colorGreen  = "#4c1"
	colorYellow = "#dfb317"
	colorOrange = "#fe7d37"
	colorRed    = "#e05d44"
	colorGrey   = "#9f9f9f"
)

// badge writes a flat shields-style SVG: label on grey, value on colour.
// Widths estimate Verdana 11 px at 6.5 px a character, as shields does
// without font metrics; both texts are escaped.
func writeBadge(w http.ResponseWriter, label, value, color string) {
	lw, vw := 10+int(6.5*float64(len([]rune(label)))), 10+int(6.5*float64(len([]rune(value))))
	l, v := template.HTMLEscapeString(label), template.HTMLEscapeString(value)
	svg := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%[1]d" height="20" role="img" aria-label="%[4]s: %[5]s">`+
		`<title>%[4]s: %[5]s</title>`+
		`<linearGradient id="s" x2="0" y2="100%%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>`+
		`<clipPath id="r"><rect width="%[1]d" height="20" rx="3" fill="#fff"/></clipPath>`+
		`<g clip-path="url(#r)"><rect width="%[2]d" height="20" fill="#555"/><rect x="%[2]d" width="%[3]d" height="20" fill="%[6]s"/><rect width="%[1]d" height="20" fill="url(#s)"/></g>`+
		`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">`+
		`<text x="%[7]d" y="15" fill="#010101" fill-opacity=".3">%[4]s</text><text x="%[7]d" y="14">%[4]s</text>`+
		`<text x="%[8]d" y="15" fill="#010101" fill-opacity=".3">%[5]s</text><text x="%[8]d" y="14">%[5]s</text></g></svg>`,
		lw+vw, lw, vw, l, v, color, lw/2, lw+vw/2)
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	h.Set("Cache-Control", "max-age=30")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write([]byte(svg))
}

func (s *Server) badgeStatus(w http.ResponseWriter, r *http.Request) {
	st, ok := s.apiFind(w, r)
	if !ok {
		return
	}
	state := st.state(s.cfg.Now().UTC())
	color := map[string]string{StateUp: colorGreen, StateDown: colorRed}[state]
	if color == "" {
		color = colorGrey
	}
	writeBadge(w, "status", state, color)
}

// badgePeriods are the uptime badge's periods in days (0: 24 h).
var badgePeriods = map[string]int{"24h": 0, "7d": 7, "30d": 30, "90d": 90}

func (s *Server) badgeUptime(w http.ResponseWriter, r *http.Request) {
	period := r.URL.Query().Get("period")
	if period == "" {
		period = "30d"
	}
	days, ok := badgePeriods[period]
	if !ok {
		writeError(w, http.StatusBadRequest, "period: want 24h, 7d, 30d or 90d", "period")
		return
	}
	st, ok := s.apiFind(w, r)
	if !ok {
		return
	}
	now := s.cfg.Now().UTC()
	var c history.Counts
	switch days {
	case 90:
		today := todayUTC(now)
		ds, err := s.cfg.Reader.Daily(r.Context(), []string{st.URL}, today.AddDate(0, 0, -89), today.AddDate(0, 0, 1))
		if err != nil {
			s.serverError(w, r, err, true)
			return
		}
		for _, d := range ds {
			c = c.Add(d.Counts)
		}
	default:
		stats, err := s.cfg.Reader.Stats(r.Context(), []string{st.URL}, now)
		if err != nil {
			s.serverError(w, r, err, true)
			return
		}
		c = map[int]history.Counts{0: stats[st.URL].Last24h, 7: stats[st.URL].Last7d, 30: stats[st.URL].Last30d}[days]
	}
	p, ok := c.Uptime()
	value, color := "no data", colorGrey
	if ok {
		value = pctNumber(p) + "%"
		switch {
		case p >= 99.9:
			color = colorGreen
		case p >= 99:
			color = colorYellow
		case p >= 95:
			color = colorOrange
		default:
			color = colorRed
		}
	}
	writeBadge(w, "uptime "+period, value, color)
}

func (s *Server) badgeLatency(w http.ResponseWriter, r *http.Request) {
	st, ok := s.apiFind(w, r)
	if !ok {
		return
	}
	stats, err := s.cfg.Reader.Stats(r.Context(), []string{st.URL}, s.cfg.Now().UTC())
	if err != nil {
		s.serverError(w, r, err, true)
		return
	}
	v, ok := stats[st.URL].Last24h.P95()
	value, color := "no data", colorGrey
	if ok {
		value = msText(v)
		switch {
		case v < 300:
			color = colorGreen
		case v < 1000:
			color = colorYellow
		case v < 3000:
			color = colorOrange
		default:
			color = colorRed
		}
	}
	writeBadge(w, "p95 24h", value, color)
}
