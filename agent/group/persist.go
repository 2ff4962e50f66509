package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// The group's metastore copy: metastore.Group.State is the state name and
// ProtocolType the protocol type (both readable by ListGroups without
// decoding); Data is this JSON document, version 1 (byte slices are base64,
// as encoding/json writes them):
//
//	{
//	  "v": 1,                     format version; unknown versions are not read
//	  "seq": 7,                   write counter, +1 per save (below)
//	  "generation": 3,
//	  "protocol": "cooperative-sticky",
//	  "leader": "member id",
//	  "members": [{
//	    "id": "...", "instance_id": "..." (static members only),
//	    "client_id": "...", "client_host": "/127.0.0.1",
//	    "session_timeout_ms": 45000, "rebalance_timeout_ms": 60000,
//	    "protocol_type": "consumer",
//	    "protocols": [{"name": "range", "metadata": "base64"}],
//	    "assignment": "base64"
//	  }]
//	}
//
// Fencing: loading a group claims it (metastore.ClaimGroup) and every
// write names the claim's epoch, so the metastore refuses the writes of a
// coordinator whose group another one has claimed since; that coordinator
// drops its copy and its clients get NOT_COORDINATOR and find the current
// one. The generation is also stored outside Data, for the metastore to
// check members' offset commits against. seq is no longer what fences:
// it is still counted so that agents of earlier versions, which compare it
// before they save, keep seeing a takeover during a rolling upgrade.
type persisted struct {
	V          int               `json:"v"`
	Seq        int64             `json:"seq"`
	Generation int32             `json:"generation"`
	Protocol   string            `json:"protocol,omitempty"`
	Leader     string            `json:"leader,omitempty"`
	Members    []persistedMember `json:"members,omitempty"`
}

type persistedMember struct {
	ID                 string              `json:"id"`
	InstanceID         *string             `json:"instance_id,omitempty"`
	ClientID           string              `json:"client_id"`
	ClientHost         string              `json:"client_host"`
	SessionTimeoutMs   int64               `json:"session_timeout_ms"`
	RebalanceTimeoutMs int64               `json:"rebalance_timeout_ms"`
	ProtocolType       string              `json:"protocol_type"`
	Protocols          []persistedProtocol `json:"protocols"`
	Assignment         []byte              `json:"assignment,omitempty"`
}

type persistedProtocol struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata"`
}

const persistVersion = 1

// ensureLoaded claims the group and reads its metastore copy the first
// time the group is used. Members come back with fresh session timers.
func (g *group) ensureLoaded() error {
	if g.loaded {
		return nil
	}
	ctx, cancel := g.c.storeCtx()
	defer cancel()
	claim, err := g.c.store.ClaimGroup(ctx, g.name)
	if err != nil {
		return fmt.Errorf("load group %q: %w", g.name, err)
	}
	g.loaded = true
	g.epoch = claim.Epoch
	g.state = stateEmpty // not visible in metrics until the group exists
	if !claim.Found {
		return nil
	}
	sg := claim.Group
	switch sg.Type {
	case metastore.GroupTypeShare:
		// Not ours to run (agent/share's); the group is dropped after
		// this operation.
		g.kind = kindShare
		return nil
	case metastore.GroupTypeConsumer:
		g.exists = true
		if err := g.loadConsumer(sg); err != nil {
			// Offsets survive; membership restarts from an empty
			// consumer group.
			g.c.logger.Warn("consumer group metadata unreadable; starting empty", "group", g.name, "err", err)
			g.becomeConsumer(newConsumerGroup(g.c.cfg.Groups))
		}
		g.c.logger.Info("consumer group loaded", "group", g.name, "epoch", g.cg.epoch, "members", len(g.cg.members), "claim", g.epoch)
		return nil
	}
	g.exists = true
	g.setState(stateEmpty)
	g.protocolType = sg.ProtocolType
	g.publish()
	var d persisted
	if err := json.Unmarshal(sg.Data, &d); err != nil || d.V != persistVersion {
		// Offsets survive; membership restarts from Empty.
		g.c.logger.Warn("group metadata unreadable; starting empty", "group", g.name, "err", err, "version", d.V)
		g.seq = d.Seq
		return nil
	}
	g.seq = d.Seq
	g.generation = d.Generation
	g.protocol = d.Protocol
	g.leader = d.Leader
	for _, pm := range d.Members {
		m := &member{
			id:               pm.ID,
			instanceID:       pm.InstanceID,
			clientID:         pm.ClientID,
			clientHost:       pm.ClientHost,
			sessionTimeout:   time.Duration(pm.SessionTimeoutMs) * time.Millisecond,
			rebalanceTimeout: time.Duration(pm.RebalanceTimeoutMs) * time.Millisecond,
			protocolType:     pm.ProtocolType,
			assignment:       pm.Assignment,
		}
		for _, p := range pm.Protocols {
			m.protocols = append(m.protocols, kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: p.Metadata})
		}
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
		g.heartbeat(m)
	}
	st, _ := parseState(sg.State)
	switch {
	case len(g.members) == 0:
		g.setState(stateEmpty)
	case st == stateStable:
		g.setState(stateStable)
	case st == stateCompletingRebalance:
		// Members have their generation; wait for the leader's sync.
		g.setState(stateCompletingRebalance)
		for id := range g.members {
			g.pendingSync[id] = true
		}
		seq := g.syncSeq
		g.syncTimer = g.after(g.maxRebalanceTimeout(), func() { g.syncExpired(seq) })
	default:
		// Saved mid-rebalance: start the join phase again.
		g.setState(stateStable)
		g.prepareRebalance()
	}
	g.c.logger.Info("group loaded", "group", g.name, "state", g.state, "generation", g.generation, "members", len(g.members), "epoch", g.epoch)
	if sg.Generation != g.generation {
		// Saved before the metastore kept the generation (or by an
		// older agent): store it, or members' commits are refused. A
		// failure is logged; the next save stores it.
		_ = g.persist()
	}
	return nil
}

// persist saves the group. It is called whenever a generation completes or
// membership changes. When another coordinator has claimed the group since
// this one loaded it, the save fails with metastore.ErrGroupFenced and the
// group is unloaded.
func (g *group) persist() error {
	d := persisted{V: persistVersion, Seq: g.seq + 1, Generation: g.generation, Protocol: g.protocol, Leader: g.leader}
	for _, m := range g.members {
		pm := persistedMember{
			ID:                 m.id,
			InstanceID:         m.instanceID,
			ClientID:           m.clientID,
			ClientHost:         m.clientHost,
			SessionTimeoutMs:   m.sessionTimeout.Milliseconds(),
			RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(),
			ProtocolType:       m.protocolType,
			Assignment:         m.assignment,
		}
		for _, p := range m.protocols {
			pm.Protocols = append(pm.Protocols, persistedProtocol{Name: p.Name, Metadata: p.Metadata})
		}
		d.Members = append(d.Members, pm)
	}
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode group %q: %w", g.name, err)
	}
	ctx, cancel := g.c.storeCtx()
	defer cancel()
	err = g.c.store.SaveOwnedGroup(ctx, g.epoch, metastore.Group{
		Name: g.name, State: g.state.String(), ProtocolType: g.protocolType, Type: metastore.GroupTypeClassic,
		Generation: g.generation, Data: data,
	})
	if err != nil {
		g.storeFailed("group save failed", err)
		return fmt.Errorf("save group %q: %w", g.name, err)
	}
	g.seq = d.Seq
	g.exists = true
	g.publish()
	return nil
}

// storeFailed logs a failed metastore write; when the write was fenced
// (another coordinator claimed the group) the group is unloaded.
func (g *group) storeFailed(msg string, err error) {
	if errors.Is(err, metastore.ErrGroupFenced) {
		g.c.logger.Warn("group claimed by another coordinator; dropping local state", "group", g.name, "epoch", g.epoch, "generation", g.generation)
		g.gone = true
		return
	}
	g.c.logger.Warn(msg, "group", g.name, "err", err)
}

// errorCode maps the coordinator's internal errors to Kafka error codes,
// in this one place:
//   - closed, fenced, or not this agent's group now: NOT_COORDINATOR
//     (retriable; the client looks the coordinator up again);
//   - a member's generation that is not the stored one:
//     ILLEGAL_GENERATION (the member rejoins);
//   - a metastore failure: COORDINATOR_NOT_AVAILABLE (retriable; Kafka
//     answers it when the offsets topic cannot be written);
//   - the request's own context ending: REQUEST_TIMED_OUT.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrClosed), errors.Is(err, metastore.ErrGroupFenced), errors.Is(err, errNotOwned):
		return kerr.NotCoordinator.Code
	case errors.Is(err, metastore.ErrGroupTypeConflict):
		// A share group took the name meanwhile: this group is not
		// there for the caller.
		return kerr.GroupIDNotFound.Code
	case errors.Is(err, metastore.ErrIllegalGeneration):
		return kerr.IllegalGeneration.Code
	case errors.Is(err, metastore.ErrUnknownTopicOrPartition), errors.Is(err, metastore.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.CoordinatorNotAvailable.Code
	}
}
