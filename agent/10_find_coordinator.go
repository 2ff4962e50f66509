package agent

// FindCoordinator: v0-v5.
//
// Behaviour:
//   - Key type 0 (group): the coordinator is coordinatorFor(key), the same
//     rendezvous hash over the live agents on every agent, so all agents
//     agree. Key type 1 (transactional id): txnCoordinatorFor(key), the
//     same hash with a key of its own (agent/txn). Only agents whose lease
//     this agent can vouch for are candidates (see 03_metadata.go): a
//     client is never sent to an agent whose lease has expired; with none,
//     COORDINATOR_NOT_AVAILABLE (retriable). v4+ batches keys (KIP-699);
//     v0-v3 carry one key.
//   - A group lookup creates the internal __consumer_offsets topic when it
//     does not exist (ensureOffsetsTopic), as Kafka does: empty in silt,
//     since offsets live in the metastore, but listed (internal) in
//     Metadata, where regex consumers and tools expect it.
//   - Unknown key types answer INVALID_REQUEST. An empty group id is a
//     group like any other, as Kafka 4 answers it (older Kafka refused
//     it with INVALID_REQUEST), and so is an empty transactional id.
//   - Authorization (when on): DESCRIBE on the group
//     (GROUP_AUTHORIZATION_FAILED) or the transactional id
//     (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
//   - The coordinator's address is the one of the client's listener.
//
// Differences from Kafka: none intended (Kafka creates
// __transaction_state on the first key type 1 lookup; silt keeps
// transactions in the metastore).
//
// This file also holds ownsGroup, the coordinator check every group API
// makes.

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/agent/group"
	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleFindCoordinator(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	a.members.refreshIfOlder(ctx, onDemandRefresh)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID = -1
		switch {
		case req.CoordinatorType == 0 && !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, key):
			c.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case req.CoordinatorType == 1 && !r.authorized(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, key):
			c.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case req.CoordinatorType != 0 && req.CoordinatorType != 1:
			c.ErrorCode = kerr.InvalidRequest.Code
		default:
			var ag metastore.Agent
			var ok bool
			if req.CoordinatorType == 1 {
				ag, ok = a.txnCoordinatorFor(key)
			} else {
				a.ensureOffsetsTopic(ctx)
				ag, ok = a.coordinatorFor(key)
			}
			if !ok {
				// No agent's lease can be vouched for: name none.
				c.ErrorCode = kerr.CoordinatorNotAvailable.Code
				c.ErrorMessage = kmsg.StringPtr("no agent can be vouched for as coordinator: the metastore is unreachable")
				break
			}
			if ep, ok := ag.Endpoint(r.conn.l.cfg.Name); ok {
				c.NodeID, c.Host, c.Port = ag.NodeID, ep.Host, ep.Port
			} else {
				c.ErrorCode = kerr.CoordinatorNotAvailable.Code
				c.ErrorMessage = kmsg.StringPtr("the coordinator has no listener " + r.conn.l.cfg.Name)
			}
		}
		if c.ErrorCode != 0 {
			r.logError(c.ErrorCode, nil, "key", key, "key_type", req.CoordinatorType)
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	return resp, nil
}

// ownsGroup reports whether this agent coordinates the group (and can
// vouch for its lease: groupOwnership). When it does not, any state it
// still holds for the group (from before the live agents changed, or from
// before its lease lapsed) is dropped, so that a later takeover reloads it
// from the metastore instead of trusting a stale copy.
func (a *Agent) ownsGroup(ctx context.Context, name string) bool {
	if _, ok := (groupOwnership{a}).Owns(name); ok {
		return true
	}
	a.groups.Forget(ctx, name)
	a.shares.Forget(ctx, name)
	return false
}

// groupClient is the request's sender as DescribeGroups shows it: the
// client id and "/host", as Kafka prints it.
func groupClient(r *request) group.Client {
	host := r.conn.remote
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return group.Client{ID: r.clientID, Host: "/" + host}
}
