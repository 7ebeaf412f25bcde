package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/sitewatch/sitewatch/config"
	"github.com/sitewatch/sitewatch/kafkaconn"
	"github.com/sitewatch/sitewatch/registry"
)

// siteBook is a processor's one view of the sites: the sites registry
// (sitewatch_sites), followed live, over the processor's optional -sites
// file. The alerts take names and thresholds from it, the status page,
// the report and the all-in-one's table their lists of sites; a site
// added through the API is thus named, thresholded and listed as soon as
// it is read, without a restart or a SIGHUP.
//
// A site in both the registry and the file is the registry's: an emitter
// publishes its file there, so the two agree once it has, and the
// registry also knows the owner. A site only in the file (the emitter
// has not published it yet, or runs with another file) is listed as the
// file's.
type siteBook struct {
	reg  *registry.Registry
	path string
	log  *slog.Logger

	mu        sync.Mutex
	file      []config.Site
	entries   []registry.Entry // the registry's, sorted by URL
	merged    []registry.Entry
	listeners []func([]registry.Entry)
}

// newSiteBook loads the -sites file (a bad one is a usage error) and
// connects the registry follower; Run follows it.
func newSiteBook(ctx context.Context, k *kafkaconn.Options, log *slog.Logger, path, consumer string) (*siteBook, error) {
	b := &siteBook{path: path, log: log}
	if path != "" {
		f, err := LoadSites(path)
		if err != nil {
			return nil, err
		}
		b.file = f.Sites
	}
	// OnChange runs in the registry's goroutine, once caught up and after
	// each change.
	var err error
	if b.reg, err = newRegistry(ctx, k, log, consumer, b.setRegistry); err != nil {
		return nil, err
	}
	b.merge()
	return b, nil
}

// Registry is the follower, for the sites API's writes.
func (b *siteBook) Registry() *registry.Registry { return b.reg }

// OnChange calls fn with every site now and after every change, in the
// order of the changes. fn must not block.
func (b *siteBook) OnChange(fn func([]registry.Entry)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.listeners = append(b.listeners, fn)
	fn(b.merged)
}

// Entries returns every site, sorted by URL. The slice is shared: do not
// modify it.
func (b *siteBook) Entries() []registry.Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.merged
}

// Run follows the registry and reloads the file on SIGHUP until ctx ends;
// a bad file is logged and the previous one's sites stay.
func (b *siteBook) Run(ctx context.Context) error {
	defer b.reg.Close()
	if b.path == "" {
		return b.reg.Run(ctx)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan error, 1)
	go func() { done <- b.reg.Run(ctx) }()
	for {
		select {
		case err := <-done:
			return err
		case <-hup:
			f, err := LoadSites(b.path)
			if err != nil {
				b.log.Error("sites file not reloaded; keeping its previous sites", "path", b.path, "err", err)
				continue
			}
			b.mu.Lock()
			b.file = f.Sites
			b.mu.Unlock()
			b.merge()
			b.log.Info("sites file reloaded", "path", b.path, "sites", len(f.Sites))
		}
	}
}

// WaitReady waits until the registry has been read up to its end offsets
// at start.
func (b *siteBook) WaitReady(ctx context.Context) error {
	if err := b.reg.WaitReady(ctx); err != nil {
		return fmt.Errorf("sites: %w", err)
	}
	return nil
}

func (b *siteBook) setRegistry(entries []registry.Entry) {
	b.mu.Lock()
	b.entries = entries
	b.mu.Unlock()
	b.merge()
}

// merge recomputes the merged list and hands it to every listener. The
// lock is held throughout so that listeners see the changes in order.
func (b *siteBook) merge() {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]registry.Entry, 0, len(b.entries)+len(b.file))
	out = append(out, b.entries...)
	for _, s := range b.file {
		if _, found := slices.BinarySearchFunc(b.entries, s.URL, func(e registry.Entry, url string) int {
			return strings.Compare(e.Site.URL, url)
		}); !found {
			out = append(out, registry.Entry{Site: s, Owner: "file:" + b.path})
		}
	}
	slices.SortFunc(out, func(x, y registry.Entry) int { return strings.Compare(x.Site.URL, y.Site.URL) })
	b.merged = out
	for _, fn := range b.listeners {
		fn(out)
	}
}
