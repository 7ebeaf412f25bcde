package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/sitewatch/sitewatch/codecs"
)

// TestAlertsListed: the table lists the newest status changes below the
// sites, newest first, each change once however often it is delivered,
// and the list still fits a short terminal.
func TestAlertsListed(t *testing.T) {
	b := NewBoard([]Site{{URL: "https://shop.example/", Name: "Shop"}, {URL: "https://blog.example/", Name: "Blog"}}, time.Minute)
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	msg := "status 503, expected 2xx or 3xx\n<script>"
	down := &codecs.StatusChange{ChangeID: "c1", URL: "https://shop.example/", Kind: codecs.ChangeDown, ChangedAt: at,
		Consecutive: 3, ErrorKind: ptrStr(codecs.ErrStatus), ErrorMessage: &msg}
	up := &codecs.StatusChange{ChangeID: "c2", URL: "https://shop.example/", Kind: codecs.ChangeUp, ChangedAt: at.Add(2 * time.Minute), Consecutive: 2}
	na := at.Add(72 * time.Hour)
	cert := &codecs.StatusChange{ChangeID: "c3", URL: "https://blog.example/", Kind: codecs.ChangeCertExpiring, ChangedAt: at.Add(time.Minute), TLSNotAfter: &na}
	for _, c := range []*codecs.StatusChange{down, up, down, cert} {
		b.AddChange(c)
	}
	if b.AddChange(up) {
		t.Error("a change delivered again counted as new")
	}
	out := Render(b.Snapshot(at.Add(3*time.Minute)), Layout{Width: 100})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tail := lines[len(lines)-3:]
	for i, want := range []string{"RESOLVED up    Shop", "CERT EXPIRING  Blog · certificate expires 2026-12-03", "ALERT DOWN×3   Shop · status 503, expected 2xx or 3xx <script>"} {
		if !strings.Contains(tail[i], want) {
			t.Errorf("alert line %d = %q, want it to contain %q\n%s", i, tail[i], want, out)
		}
	}
	if strings.Count(out, "ALERT DOWN") != 1 {
		t.Errorf("down change listed %d times:\n%s", strings.Count(out, "ALERT DOWN"), out)
	}
	// A short terminal still shows the alerts and stays within its height.
	short := Render(b.Snapshot(at.Add(3*time.Minute)), Layout{Width: 100, Height: 8})
	if n := strings.Count(short, "\n"); n > 8 || !strings.Contains(short, "RESOLVED") {
		t.Errorf("height 8: %d lines, alerts shown: %v\n%s", n, strings.Contains(short, "RESOLVED"), short)
	}
}

func ptrStr(s string) *string { return &s }
