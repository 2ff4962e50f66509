package share

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/siltdata/silt/metastore"
)

// A share group's metastore copy (STATE.md): metastore.Group.Type
// "share", State Empty or Stable, ProtocolType "share", Generation the
// group epoch, Data this JSON document, version 1:
//
//	{
//	  "v": 1, "seq": 4, "epoch": 7, "assignment_epoch": 7,
//	  "members": [{
//	    "id": "...", "rack_id": "...", "client_id": "...", "client_host": "/10.0.0.7",
//	    "topics": ["orders"], "epoch": 7, "previous_epoch": 6,
//	    "assigned": {"topic uuid": [0, 2]}
//	  }]
//	}
//
// Saved under the coordinator's claim before any heartbeat is answered
// with a new epoch or assignment.
type persisted struct {
	V               int               `json:"v"`
	Seq             int64             `json:"seq"`
	Epoch           int32             `json:"epoch"`
	AssignmentEpoch int32             `json:"assignment_epoch"`
	Members         []persistedMember `json:"members,omitempty"`
}

type persistedMember struct {
	ID            string             `json:"id"`
	RackID        *string            `json:"rack_id,omitempty"`
	ClientID      string             `json:"client_id"`
	ClientHost    string             `json:"client_host"`
	Topics        []string           `json:"topics"`
	Epoch         int32              `json:"epoch"`
	PreviousEpoch int32              `json:"previous_epoch"`
	Assigned      map[string][]int32 `json:"assigned,omitempty"`
}

const persistVersion = 1

// shareProtocolType is the protocol type of share groups, as ListGroups
// reports it.
const shareProtocolType = "share"

// ensureLoaded claims the group and reads it the first time it is used.
func (g *sgroup) ensureLoaded() error {
	if g.loaded {
		return nil
	}
	ctx, cancel := g.c.storeCtx()
	defer cancel()
	claim, err := g.c.store.ClaimShareGroup(ctx, g.name)
	if err != nil {
		return fmt.Errorf("load share group %q: %w", g.name, err)
	}
	g.loaded, g.epoch = true, claim.Epoch
	if !claim.Found {
		return nil
	}
	if claim.Group.Type != metastore.GroupTypeShare {
		g.foreign = true
		return nil
	}
	g.exists = true
	var d persisted
	if err := json.Unmarshal(claim.Group.Data, &d); err != nil || d.V != persistVersion {
		g.c.logger.Warn("share group metadata unreadable; starting empty", "group", g.name, "err", err, "version", d.V)
		g.seq = d.Seq
		g.publish()
		return nil
	}
	g.seq, g.groupEpoch, g.assignmentEpoch = d.Seq, d.Epoch, d.AssignmentEpoch
	for _, pm := range d.Members {
		m := &smember{id: pm.ID, rackID: pm.RackID, clientID: pm.ClientID, clientHost: pm.ClientHost,
			topics: pm.Topics, epoch: pm.Epoch, prevEpoch: pm.PreviousEpoch, assigned: tpSet{}}
		for k, ps := range pm.Assigned {
			id, err := uuid.Parse(k)
			if err != nil {
				continue
			}
			for _, p := range ps {
				m.assigned.add(metastore.TopicID(id), p)
			}
		}
		g.members[m.id] = m
		g.target[m.id] = m.assigned.clone()
	}
	// The configs and topics are read at the first heartbeat; sessions
	// start now, with the default timeout until then.
	if _, err := g.refresh(true); err != nil {
		g.c.logger.Warn("share group configs not read yet", "group", g.name, "err", err)
	}
	for _, m := range g.members {
		g.session(m)
	}
	g.publish()
	g.c.logger.Info("share group loaded", "group", g.name, "epoch", g.groupEpoch, "members", len(g.members), "claim", g.epoch)
	return nil
}

// save writes the group under its claim. A failed save unloads the group:
// its state in memory is ahead of the metastore's.
func (g *sgroup) save() error {
	d := persisted{V: persistVersion, Seq: g.seq + 1, Epoch: g.groupEpoch, AssignmentEpoch: g.assignmentEpoch}
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		pm := persistedMember{ID: m.id, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			Topics: m.topics, Epoch: m.epoch, PreviousEpoch: m.prevEpoch}
		if len(m.assigned) > 0 {
			pm.Assigned = map[string][]int32{}
			for t, ps := range m.assigned {
				pm.Assigned[uuid.UUID(t).String()] = ps
			}
		}
		d.Members = append(d.Members, pm)
	}
	data, err := json.Marshal(d)
	if err != nil {
		g.gone = true
		return fmt.Errorf("encode share group %q: %w", g.name, err)
	}
	ctx, cancel := g.c.storeCtx()
	defer cancel()
	err = g.c.store.SaveOwnedShareGroup(ctx, g.epoch, metastore.Group{
		Name: g.name, State: g.stateName(), ProtocolType: shareProtocolType, Type: metastore.GroupTypeShare,
		Generation: g.groupEpoch, Data: data,
	})
	if err != nil {
		switch {
		case errors.Is(err, metastore.ErrGroupFenced):
			g.c.logger.Warn("share group claimed by another coordinator; dropping local state", "group", g.name, "claim", g.epoch)
		case errors.Is(err, metastore.ErrGroupTypeConflict):
			g.c.logger.Warn("share group's name taken by a group of another type", "group", g.name)
		default:
			g.c.logger.Warn("share group save failed; dropping local state", "group", g.name, "err", err)
		}
		g.gone = true
		return fmt.Errorf("save share group %q: %w", g.name, err)
	}
	g.seq = d.Seq
	g.exists = true
	g.publish()
	return nil
}

// errorCode maps the package's errors to Kafka error codes, in this one
// place:
//   - closed, fenced, or not this agent's group now: NOT_COORDINATOR
//     (retriable: the client finds the coordinator again);
//   - the name belongs to a group of another type: GROUP_ID_NOT_FOUND;
//   - unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION;
//   - a malformed acknowledgement: INVALID_REQUEST; one naming records
//     the member does not hold: INVALID_RECORD_STATE (both final);
//   - a share-partition that kept changing under its compare-and-set,
//     or a metastore failure: COORDINATOR_NOT_AVAILABLE (retriable);
//   - the request's context ending: REQUEST_TIMED_OUT.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrClosed), errors.Is(err, metastore.ErrGroupFenced), errors.Is(err, errNotOwned):
		return kerr.NotCoordinator.Code
	case errors.Is(err, metastore.ErrGroupTypeConflict):
		return kerr.GroupIDNotFound.Code
	case errors.Is(err, metastore.ErrUnknownTopicOrPartition), errors.Is(err, metastore.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, ErrBadAck):
		return kerr.InvalidRequest.Code
	case errors.Is(err, ErrRecordState):
		return kerr.InvalidRecordState.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.CoordinatorNotAvailable.Code
	}
}

// ErrorCode is errorCode for the agent's share-fetch handlers.
func ErrorCode(err error) int16 { return errorCode(err) }
