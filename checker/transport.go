package checker

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/idna"
)

// oneShot is the round tripper of one check: every request it carries (the
// first, and one per redirect followed) goes over a connection of its own,
// dialled by the check's dialers under the check's context, and that
// connection closes with the response body.
//
// It stands in for net/http's Transport, of which a check used nothing but
// the dial and the HTTP/1.1 exchange: the connection pool, the read and
// write goroutines of every connection and the channels between them were
// pure cost with one request per connection. Building a Transport per
// check and going through it took about half again the CPU of this path
// on the client side (checker's BenchmarkCheck against
// BenchmarkBareNetHTTP). The HTTP itself is still net/http's: the request
// is written by Request.Write, the response parsed by ReadResponse, and
// redirects are http.Client's.
type oneShot struct {
	c   *Checker
	ctx context.Context // the check's, carrying its trace
	tr  *tracker
	t   Target
	// gunzip: the checker asked for gzip itself (the site's headers did
	// not say), so a gzip body is decompressed, as net/http's Transport
	// does.
	gunzip bool
}

// maxInformational bounds the 1xx responses read before the final one, as
// net/http does.
const maxInformational = 5

// errHeadersTooLarge ends a response whose header outgrew maxHeaderBytes.
var errHeadersTooLarge = fmt.Errorf("server response headers exceeded %d bytes; aborted", maxHeaderBytes)

// aLongTimeAgo is a deadline in the past: it ends every read and write.
var aLongTimeAgo = time.Unix(1, 0)

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}
)

func (o *oneShot) RoundTrip(req *http.Request) (*http.Response, error) {
	o.tr.startRequest()
	addr, err := dialAddr(req.URL)
	if err != nil {
		return nil, &dialError{kind: KindConnect, msg: "connect: " + err.Error(), err: err}
	}
	var conn net.Conn
	switch req.URL.Scheme {
	case "http":
		conn, err = o.c.dialTCP(o.ctx, o.tr, "tcp", addr)
	case "https":
		conn, err = o.c.dialTLS(o.ctx, o.tr, "tcp", addr, o.t)
	default:
		// The client's redirect policy refuses other schemes first.
		return nil, fmt.Errorf("unsupported protocol scheme %q", req.URL.Scheme)
	}
	if err != nil {
		return nil, err
	}
	o.tr.gotConn()
	// The end of the check (its timeout, or the caller's cancellation)
	// ends whatever read or write is waiting on the connection; the
	// error that read returns is then classified by the context's cause.
	stop := context.AfterFunc(o.ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	resp, br, err := o.exchange(req, conn)
	if err != nil {
		stop()
		conn.Close()
		if br != nil {
			readers.Put(br)
		}
		return nil, err
	}
	resp.Body = &connBody{body: resp.Body, conn: conn, br: br, stop: stop}
	if o.gunzip && resp.Body != http.NoBody && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		resp.Body = &gzipBody{body: resp.Body}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	}
	return resp, nil
}

// exchange writes req on conn and reads the response's header. The
// returned reader, when not nil, holds the connection's buffered bytes.
func (o *oneShot) exchange(req *http.Request, conn net.Conn) (*http.Response, *bufio.Reader, error) {
	orig := req
	if !req.Close {
		// One request per connection, and the server is told so.
		r := *req
		r.Close = true
		req = &r
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(conn)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		return nil, nil, err
	}

	lim := &headerLimit{conn: conn, left: maxHeaderBytes}
	br := readers.Get().(*bufio.Reader)
	br.Reset(lim)
	if _, err := br.Peek(1); err != nil {
		return nil, br, err
	}
	o.tr.gotFirstByte()
	for informational := 0; ; informational++ {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			// errHeadersTooLarge comes through as it is.
			return nil, br, err
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			lim.left = -1 // the body is not limited here
			resp.Request = orig
			return resp, br, nil
		}
		if informational == maxInformational {
			return nil, br, errors.New("too many 1xx informational responses")
		}
		lim.left = maxHeaderBytes // each header block has the whole limit
	}
}

// dialAddr is the host:port a request's URL is dialled at: the host in
// punycode, the scheme's port by default.
func dialAddr(u *url.URL) (string, error) {
	host := u.Hostname()
	if host == "" {
		return "", errors.New("no host in request URL")
	}
	if a, err := idna.Lookup.ToASCII(host); err == nil {
		host = a
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(host, port), nil
}

// headerLimit reads from conn, at most left bytes while left is positive
// and without limit once it is negative (after the header).
type headerLimit struct {
	conn net.Conn
	left int64
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.left < 0 {
		return l.conn.Read(p)
	}
	if l.left == 0 {
		return 0, errHeadersTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.conn.Read(p)
	l.left -= int64(n)
	return n, err
}

// connBody is a response body that closes its connection.
type connBody struct {
	body   io.ReadCloser
	conn   net.Conn
	br     *bufio.Reader
	stop   func() bool
	closed bool
}

func (b *connBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read on a closed response body")
	}
	return b.body.Read(p)
}

func (b *connBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.stop()
	err := b.conn.Close()
	// Nothing reads through br any more: the body's reader is closed
	// along with it.
	b.br.Reset(nil)
	readers.Put(b.br)
	return err
}

// gzipBody decompresses a body as it is read, starting at the first read
// (a body never read costs no gzip state).
type gzipBody struct {
	body io.ReadCloser
	zr   *gzip.Reader
	err  error
}

func (g *gzipBody) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.zr == nil {
		g.zr, g.err = gzip.NewReader(g.body)
		if g.err != nil {
			return 0, g.err
		}
	}
	return g.zr.Read(p)
}

func (g *gzipBody) Close() error { return g.body.Close() }
