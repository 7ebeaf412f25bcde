package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sitewatch/sitewatch/history"
)

// pctText formats an uptime percentage: two decimals, never rounded up to
// 100 (99.996 % is not 100 %); "–" without data.
func pctText(c history.Counts) string {
	p, ok := c.Uptime()
	if !ok {
		return "–"
	}
	return pctNumber(p) + " %"
}

func pctNumber(p float64) string {
	if p >= 100 {
		return "100"
	}
	return strconv.FormatFloat(math.Floor(p*100)/100, 'f', 2, 64)
}

func msText(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}

func p95Text(c history.Counts) string {
	v, ok := c.P95()
	if !ok {
		return "–"
	}
	return msText(v)
}

// agoText says how long before now t was, coarsely.
func agoText(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}

func durationText(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%02dh", int(d.Hours()/24), int(d.Hours())%24)
	}
}

// CertWarnDays is how close a certificate's expiry is shown as a warning
// (sitewatch's alerts warn from -alert-cert-days, 14 by default, too).
const CertWarnDays = 14

// certDaysLeft is the whole days from now until notAfter (negative once
// expired); nil when unknown.
func certDaysLeft(notAfter *time.Time, now time.Time) *int {
	if notAfter == nil {
		return nil
	}
	d := int(math.Floor(notAfter.Sub(now).Hours() / 24))
	return &d
}

// certText is a certificate's expiry as the site page shows it: the date
// and the days left, and whether that is under CertWarnDays.
func certText(notAfter *time.Time, now time.Time) (text string, warn bool) {
	days := certDaysLeft(notAfter, now)
	if days == nil {
		return "unknown", false
	}
	date := notAfter.UTC().Format(time.DateOnly)
	switch {
	case notAfter.Before(now):
		return fmt.Sprintf("%s (expired %d days ago)", date, -*days), true
	case *days == 1:
		return date + " (1 day left)", true
	default:
		return fmt.Sprintf("%s (%d days left)", date, *days), *days < CertWarnDays
	}
}

func timeText(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// reasonText is a failure's reason in one line: kind, status, message.
func reasonText(f *history.Failure) string {
	if f == nil {
		return ""
	}
	var parts []string
	if f.ErrorKind != "" {
		parts = append(parts, f.ErrorKind)
	}
	if f.StatusCode != 0 {
		parts = append(parts, strconv.Itoa(f.StatusCode))
	}
	if m := strings.Join(strings.Fields(f.ErrorMessage), " "); m != "" {
		if len(m) > 300 {
			m = m[:300] + "…"
		}
		parts = append(parts, m)
	}
	return strings.Join(parts, ": ")
}

// uptimeClass is the colour class of a day or period by its uptime.
func uptimeClass(c history.Counts) string {
	p, ok := c.Uptime()
	switch {
	case !ok:
		return "nodata"
	case p >= 99.9:
		return "u-good"
	case p >= 99:
		return "u-fair"
	case p >= 95:
		return "u-poor"
	default:
		return "u-bad"
	}
}

// intervalText is a configured duration as the sites file would write it:
// 30s, 1m, 1m30s, 1h (Go's String gives 1m0s).
func intervalText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
