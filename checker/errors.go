package checker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// classify turns the error that ended a check into an error kind and a
// message that says what happened and, where it helps, in which phase.
func (c *Checker) classify(ctx context.Context, tr *tracker, timeout time.Duration, err error) (kind ErrorKind, msg string) {
	phase, requests := tr.current()
	if requests > 1 {
		phase += fmt.Sprintf(" (after %d redirects)", requests-1)
	}
	// Whatever error the transport reports once the context is done (a
	// closed connection, "i/o timeout", a cancelled lookup), the timeout or
	// the cancellation caused it.
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		switch {
		case errors.Is(cause, errCheckTimeout):
			return KindTimeout, fmt.Sprintf("timeout after %s %s", timeout, phase)
		case errors.Is(cause, context.DeadlineExceeded):
			return KindTimeout, fmt.Sprintf("timeout after %s %s (deadline set by the caller)", time.Since(tr.start).Round(time.Millisecond), phase)
		}
		return KindOther, fmt.Sprintf("check canceled %s: %v", phase, cause)
	}
	var de *dialError
	if errors.As(err, &de) {
		return de.kind, de.msg
	}
	var re *redirectError
	if errors.As(err, &re) {
		return KindRedirects, re.msg
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return KindOther, "server reset the connection " + phase
	}
	if isClosedByPeer(err) {
		return KindOther, "server closed the connection " + phase
	}
	return KindOther, cleanMessage(err)
}

// isClosedByPeer reports whether err means the server hung up.
func isClosedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// cleanMessage drops the parts of a net/http error that repeat what the
// result already says (method and URL) or speak of net/http internals.
func cleanMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "net/http: HTTP/1.x transport connection broken: ")
	msg = strings.TrimPrefix(msg, "net/http: ")
	return msg
}
