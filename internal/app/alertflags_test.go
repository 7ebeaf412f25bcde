package app_test

import (
	"bytes"
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/sitewatch/sitewatch/internal/app"
)

// TestAlertDestinationsFromEnvAndFlags: SITEWATCH_ALERT_WEBHOOKS is a
// comma-separated list that -alert-webhook flags replace, and -help shows
// the hosts only, never a token from the environment.
func TestAlertDestinationsFromEnvAndFlags(t *testing.T) {
	t.Setenv(app.EnvAlertWebhooks, " https://a.example/hook/TOKEN1 ,,https://b.example/x?key=TOKEN2")
	t.Setenv(app.EnvAlertSlackWebhooks, "https://hooks.slack.com/services/TOKEN3")
	t.Setenv(app.EnvAlertSecret, "TOKEN4")

	fs := flag.NewFlagSet("processor", flag.ContinueOnError)
	f := app.RegisterProcessor(fs)
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://a.example/hook/TOKEN1", "https://b.example/x?key=TOKEN2"}; !slices.Equal(f.AlertWebhooks.URLs, want) {
		t.Errorf("webhooks from the environment: %q, want %q", f.AlertWebhooks.URLs, want)
	}
	if len(f.AlertSlackWebhooks.URLs) != 1 || f.AlertSecret != "TOKEN4" {
		t.Errorf("slack %q secret %q", f.AlertSlackWebhooks.URLs, f.AlertSecret)
	}
	if strings.Contains(help.String(), "TOKEN") || !strings.Contains(help.String(), "a.example,b.example") {
		t.Errorf("-help shows a token or not the hosts:\n%s", help.String())
	}
	if !strings.Contains(f.Run, app.PartNotify) {
		t.Errorf("-run default %q lacks notify", f.Run)
	}

	fs = flag.NewFlagSet("processor", flag.ContinueOnError)
	f = app.RegisterProcessor(fs)
	if err := fs.Parse([]string{"-alert-webhook", "https://c.example/1", "-alert-webhook", "https://d.example/2"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://c.example/1", "https://d.example/2"}; !slices.Equal(f.AlertWebhooks.URLs, want) {
		t.Errorf("flags did not replace the environment's list: %q", f.AlertWebhooks.URLs)
	}
}
