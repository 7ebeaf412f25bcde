package windows

import "github.com/lovoo/goka"

// While a backlog drains, a URL's state is written behind
// (kafkarun.WriteBehind), its events held uncommitted until then. The
// state is the window's response times and the event ids that make it
// exact, kilobytes per write.

// stateOf is the URL's state as the callback of ctx should see it: the held
// one, or the table's (nil when it has none); inTable says the table has
// one.
func (p *Processor) stateOf(ctx goka.Context) (st *state, inTable bool) {
	if st, ok := p.wb.Get(ctx.Key()); ok {
		return st, true
	}
	st, _ = ctx.Value().(*state)
	return st, st != nil
}
