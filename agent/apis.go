package agent

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// api is one Kafka API this agent implements: the versions it accepts and
// its handler. ApiVersions is built from this table and nothing else, so
// what is advertised is what is implemented.
type api struct {
	key      int16
	min, max int16
	// handle answers one decoded request. A nil response sends nothing
	// (Produce with acks=0). An error closes the connection: it is kept for
	// violations Kafka also answers that way.
	handle func(a *Agent, ctx context.Context, r *request) (kmsg.Response, error)
}

// apis lists every implemented API, by key. Each handler lives in the file
// named after its key (00_produce.go, 01_fetch.go, ...), whose opening
// comment says what it does and where it differs from Apache Kafka.
var apis = []api{}

// request is one decoded request and where it came from.
//
// Requests of one connection are handled in arrival order, one at a time,
// as Kafka does, with one refinement: a handler may call release to let the
// next request of its connection start before it has answered. Produce
// releases once its batches are in the segment buffer (so pipelined produce
// requests keep their order but wait for the flush together); Fetch releases
// at once (it only reads). Responses are always written in arrival order.
// The server releases every request when its handler returns.
type request struct {
	conn     *conn
	version  int16
	clientID string
	kreq     kmsg.Request
	release  func() // idempotent
}

// conn is one client connection. (Defined by the server helper.)
type conn struct{}
