package agent

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/txn"
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
var apis = []api{
	{key: 0, min: 3, max: 13, handle: (*Agent).handleProduce},
	{key: 1, min: 4, max: 17, handle: (*Agent).handleFetch},
	{key: 2, min: 0, max: 10, handle: (*Agent).handleListOffsets},
	{key: 3, min: 0, max: 13, handle: (*Agent).handleMetadata},
	{key: 8, min: 0, max: 9, handle: (*Agent).handleOffsetCommit},
	{key: 9, min: 0, max: 9, handle: (*Agent).handleOffsetFetch},
	{key: 10, min: 0, max: 5, handle: (*Agent).handleFindCoordinator},
	{key: 11, min: 0, max: 9, handle: (*Agent).handleJoinGroup},
	{key: 12, min: 0, max: 4, handle: (*Agent).handleHeartbeat},
	{key: 13, min: 0, max: 5, handle: (*Agent).handleLeaveGroup},
	{key: 14, min: 0, max: 5, handle: (*Agent).handleSyncGroup},
	{key: 15, min: 0, max: 6, handle: (*Agent).handleDescribeGroups},
	{key: 16, min: 0, max: 5, handle: (*Agent).handleListGroups},
	{key: 17, min: 0, max: 1, handle: (*Agent).handleSASLHandshake},
	{key: 18, min: 0, max: 5, handle: (*Agent).handleApiVersions},
	{key: 19, min: 0, max: 7, handle: (*Agent).handleCreateTopics},
	{key: 20, min: 0, max: 6, handle: (*Agent).handleDeleteTopics},
	{key: 21, min: 0, max: 2, handle: (*Agent).handleDeleteRecords},
	{key: 22, min: 0, max: 5, handle: (*Agent).handleInitProducerID},
	{key: 23, min: 0, max: 4, handle: (*Agent).handleOffsetForLeaderEpoch},
	{key: 24, min: 0, max: 5, handle: (*Agent).handleAddPartitionsToTxn},
	{key: 25, min: 0, max: 4, handle: (*Agent).handleAddOffsetsToTxn},
	{key: 26, min: 0, max: 5, handle: (*Agent).handleEndTxn},
	{key: 28, min: 0, max: 6, handle: (*Agent).handleTxnOffsetCommit},
	{key: 29, min: 0, max: 3, handle: (*Agent).handleDescribeACLs},
	{key: 30, min: 0, max: 3, handle: (*Agent).handleCreateACLs},
	{key: 31, min: 0, max: 3, handle: (*Agent).handleDeleteACLs},
	{key: 32, min: 0, max: 4, handle: (*Agent).handleDescribeConfigs},
	{key: 33, min: 0, max: 2, handle: (*Agent).handleAlterConfigs},
	{key: 36, min: 0, max: 2, handle: (*Agent).handleSASLAuthenticate},
	{key: 37, min: 0, max: 3, handle: (*Agent).handleCreatePartitions},
	{key: 42, min: 0, max: 2, handle: (*Agent).handleDeleteGroups},
	{key: 44, min: 0, max: 1, handle: (*Agent).handleIncrementalAlterConfigs},
	{key: 47, min: 0, max: 0, handle: (*Agent).handleOffsetDelete},
	{key: 50, min: 0, max: 0, handle: (*Agent).handleDescribeUserSCRAMCredentials},
	{key: 51, min: 0, max: 0, handle: (*Agent).handleAlterUserSCRAMCredentials},
	{key: 60, min: 0, max: 1, handle: (*Agent).handleDescribeCluster},
	{key: 61, min: 0, max: 0, handle: (*Agent).handleDescribeProducers},
	{key: 65, min: 0, max: 0, handle: (*Agent).handleDescribeTransactions},
	{key: 66, min: 0, max: 2, handle: (*Agent).handleListTransactions},
	{key: 68, min: 0, max: 1, handle: (*Agent).handleConsumerGroupHeartbeat},
	{key: 69, min: 0, max: 1, handle: (*Agent).handleConsumerGroupDescribe},
	{key: 76, min: 1, max: 1, handle: (*Agent).handleShareGroupHeartbeat},
	{key: 77, min: 1, max: 1, handle: (*Agent).handleShareGroupDescribe},
	{key: 78, min: 1, max: 2, handle: (*Agent).handleShareFetch},
	{key: 79, min: 1, max: 2, handle: (*Agent).handleShareAcknowledge},
	{key: 90, min: 0, max: 1, handle: (*Agent).handleDescribeShareGroupOffsets},
	{key: 91, min: 0, max: 0, handle: (*Agent).handleAlterShareGroupOffsets},
	{key: 92, min: 0, max: 0, handle: (*Agent).handleDeleteShareGroupOffsets},
}

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
	inf      *inflight
	conn     *conn
	version  int16
	clientID string
	kreq     kmsg.Request
	release  func() // idempotent
	// leaseTerm and leaseHeld are the agent's lease when the request was
	// read (see group.WithRequestLease).
	leaseTerm uint64
	leaseHeld bool
}

// lease is the agent's lease when r was read, as the transaction
// coordinator checks it.
func (r *request) lease() txn.Lease { return txn.Lease{Term: r.leaseTerm, Held: r.leaseHeld} }
