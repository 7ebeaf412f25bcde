package notify

import (
	"fmt"
	"math"
	"strings"
	"unicode"

	"github.com/sitewatch/sitewatch/codecs"
)

// slackTime is how times read in a Slack line.
const slackTime = "2006-01-02 15:04:05 UTC"

// SlackText is the sentence a Slack-style destination gets for c: the
// site's name, what happened, since when and why, then the site's URL.
// Everything the site controls (name, URL, error message) goes through
// slackSafe.
func SlackText(c *codecs.StatusChange) string {
	name := slackSafe(c.Name, 100)
	if name == "" {
		name = slackSafe(c.URL, 200)
	}
	url := slackSafe(c.URL, 200)
	since := c.Since.UTC().Format(slackTime)
	switch c.Kind {
	case codecs.ChangeDown:
		return fmt.Sprintf(":red_circle: %s is DOWN since %s (%s): %s. %s",
			name, since, plural(c.Consecutive, "failed check"), slackReason(c), url)
	case codecs.ChangeUp:
		return fmt.Sprintf(":large_green_circle: %s is UP again since %s (%s). %s",
			name, since, plural(c.Consecutive, "successful check"), url)
	case codecs.ChangeCertExpiring:
		return fmt.Sprintf(":warning: The TLS certificate of %s expires %s. %s", name, certWhen(c), url)
	case codecs.ChangeCertOK:
		return fmt.Sprintf(":white_check_mark: The TLS certificate of %s was renewed; it now expires %s. %s", name, certWhen(c), url)
	}
	return fmt.Sprintf("%s: %s since %s. %s", name, slackSafe(c.Kind, 40), since, url)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss in a row", n, what)
}

// slackReason is the crossing check's error: its message, else its kind,
// else its status code.
func slackReason(c *codecs.StatusChange) string {
	var parts []string
	if c.ErrorKind != nil && *c.ErrorKind != "" {
		parts = append(parts, slackSafe(*c.ErrorKind, 40))
	}
	if c.ErrorMessage != nil && *c.ErrorMessage != "" {
		parts = append(parts, slackSafe(*c.ErrorMessage, 300))
	}
	if len(parts) == 0 {
		if c.StatusCode != 0 {
			return fmt.Sprintf("status %d", c.StatusCode)
		}
		return "no reason given"
	}
	return strings.Join(parts, ": ")
}

// certWhen is "on <date> (in N days)", counted from the change itself so
// that a re-delivery reads the same.
func certWhen(c *codecs.StatusChange) string {
	if c.TLSNotAfter == nil {
		return "soon"
	}
	days := int(math.Floor(c.TLSNotAfter.Sub(c.ChangedAt).Hours() / 24))
	when := "on " + c.TLSNotAfter.UTC().Format(slackTime)
	switch {
	case days < 0:
		return when + " (already expired)"
	case days == 1:
		return when + " (in 1 day)"
	}
	return fmt.Sprintf("%s (in %d days)", when, days)
}

// slackSafe makes site-controlled text inert in a Slack, Mattermost or
// Discord message: it escapes the three characters Slack's mrkdwn gives
// meaning to (&, <, >: no <!channel>, <@user> or <url|link> can be
// formed), turns newlines and other control or separator characters into
// spaces (no forged second line), puts a zero-width space after every @
// (no @channel, @here, @everyone, @all mention) and cuts it to n runes.
func slackSafe(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = truncate(strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) ||
			r == '\u200b' || r == '\u2060' || r == '\ufeff' // zero-width ones, used to sneak a mention past us
	}), " "), n)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '@':
			b.WriteString("@\u200b")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
