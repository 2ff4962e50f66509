package group

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// A consumer group's metastore copy: metastore.Group.Type is "consumer",
// State the group's state (Empty, Assigning, Reconciling, Stable),
// ProtocolType "consumer", Generation the group epoch; Data is this JSON
// document, version 2 (version 1 is the classic group's, persist.go; an
// agent that only knows version 1 starts such a group empty rather than
// misreading it). Topic ids are UUID strings.
//
//	{
//	  "v": 2,
//	  "seq": 7,                       write counter, as in version 1
//	  "epoch": 12,                    the group epoch
//	  "assignment_epoch": 12,         the epoch of the target assignment
//	  "subscriptions": {"orders": {"id": "uuid", "partitions": 6}},
//	  "members": [{
//	    "id": "...", "instance_id": "...", "rack_id": "...",
//	    "client_id": "...", "client_host": "/10.0.0.7",
//	    "rebalance_timeout_ms": 45000,
//	    "topics": ["orders"], "regex": "", "assignor": "uniform",
//	    "epoch": 12, "previous_epoch": 11,
//	    "state": "stable",           stable, unrevoked_partitions, unreleased_partitions
//	    "assigned": {"uuid": [0, 1]}, "revoking": {}, "target": {"uuid": [0, 1]},
//	    "classic": {                 members speaking the classic protocol only
//	      "session_timeout_ms": 45000,
//	      "protocols": [{"name": "range", "metadata": "base64"}]
//	    }
//	  }]
//	}
//
// It is saved, under the group's claim, before any heartbeat is answered
// with a new member epoch or assignment, and whenever the group epoch,
// the target or a member changes; so a coordinator taking over finds every
// member at the epoch it was last told, with the partitions it was told
// it owns, and members keep heartbeating without a rebalance.
type persistedConsumer struct {
	V               int                       `json:"v"`
	Seq             int64                     `json:"seq"`
	Epoch           int32                     `json:"epoch"`
	AssignmentEpoch int32                     `json:"assignment_epoch"`
	Subscriptions   map[string]persistedTopic `json:"subscriptions,omitempty"`
	Members         []persistedConsumerMember `json:"members,omitempty"`
}

type persistedTopic struct {
	ID         string `json:"id"`
	Partitions int32  `json:"partitions"`
}

type persistedConsumerMember struct {
	ID                 string              `json:"id"`
	InstanceID         *string             `json:"instance_id,omitempty"`
	RackID             *string             `json:"rack_id,omitempty"`
	ClientID           string              `json:"client_id"`
	ClientHost         string              `json:"client_host"`
	RebalanceTimeoutMs int64               `json:"rebalance_timeout_ms"`
	Topics             []string            `json:"topics,omitempty"`
	Regex              string              `json:"regex,omitempty"`
	Assignor           string              `json:"assignor,omitempty"`
	Epoch              int32               `json:"epoch"`
	PreviousEpoch      int32               `json:"previous_epoch"`
	State              string              `json:"state"`
	Assigned           map[string][]int32  `json:"assigned,omitempty"`
	Revoking           map[string][]int32  `json:"revoking,omitempty"`
	Target             map[string][]int32  `json:"target,omitempty"`
	Classic            *persistedClassicMD `json:"classic,omitempty"`
}

type persistedClassicMD struct {
	SessionTimeoutMs int64               `json:"session_timeout_ms"`
	Protocols        []persistedProtocol `json:"protocols"`
}

const consumerPersistVersion = 2

func encodeAssignment(a assignment) map[string][]int32 {
	if len(a) == 0 {
		return nil
	}
	out := make(map[string][]int32, len(a))
	for t, ps := range a {
		out[uuid.UUID(t).String()] = ps
	}
	return out
}

func decodeAssignment(m map[string][]int32) (assignment, error) {
	a := assignment{}
	for k, ps := range m {
		id, err := uuid.Parse(k)
		if err != nil {
			return nil, fmt.Errorf("topic id %q: %w", k, err)
		}
		for _, p := range ps {
			a.add(metastore.TopicID(id), p)
		}
	}
	return a, nil
}

// saveConsumer saves the consumer group under the group's claim. When the
// save fails the group is unloaded: its state in memory is ahead of the
// metastore's, and the next request reloads what the metastore has.
func (g *group) saveConsumer() error {
	cg := g.cg
	d := persistedConsumer{V: consumerPersistVersion, Seq: g.seq + 1, Epoch: cg.epoch, AssignmentEpoch: cg.assignmentEpoch}
	if len(cg.subs) > 0 {
		d.Subscriptions = map[string]persistedTopic{}
		for n, t := range cg.subs {
			d.Subscriptions[n] = persistedTopic{ID: uuid.UUID(t.ID).String(), Partitions: t.Partitions}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(cg.members)) {
		m := cg.members[id]
		pm := persistedConsumerMember{
			ID: m.id, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(), Topics: m.topics, Regex: m.regex, Assignor: m.assignor,
			Epoch: m.epoch, PreviousEpoch: m.prevEpoch, State: m.state.String(),
			Assigned: encodeAssignment(m.assigned), Revoking: encodeAssignment(m.revoking), Target: encodeAssignment(cg.target[id]),
		}
		if m.classic != nil {
			pc := &persistedClassicMD{SessionTimeoutMs: m.classic.sessionTimeout.Milliseconds()}
			for _, p := range m.classic.protocols {
				pc.Protocols = append(pc.Protocols, persistedProtocol{Name: p.Name, Metadata: p.Metadata})
			}
			pm.Classic = pc
		}
		d.Members = append(d.Members, pm)
	}
	data, err := json.Marshal(d)
	if err != nil {
		g.gone = true
		return fmt.Errorf("encode group %q: %w", g.name, err)
	}
	ctx, cancel := g.c.storeCtx()
	defer cancel()
	err = g.c.store.SaveOwnedGroup(ctx, g.epoch, metastore.Group{
		Name: g.name, State: cg.stateName(), ProtocolType: consumerProtocolType, Type: metastore.GroupTypeConsumer,
		Generation: cg.epoch, Data: data,
	})
	if err != nil {
		g.storeFailed("consumer group save failed; dropping local state", err)
		g.gone = true
		return fmt.Errorf("save group %q: %w", g.name, err)
	}
	g.seq = d.Seq
	g.exists = true
	g.publish()
	return nil
}

// loadConsumer restores a consumer group from its metastore copy. Members
// come back with fresh session timers, and members revoking partitions
// with fresh rebalance timers.
func (g *group) loadConsumer(sg metastore.Group) error {
	var d persistedConsumer
	if err := json.Unmarshal(sg.Data, &d); err != nil {
		return fmt.Errorf("decode consumer group %q: %w", g.name, err)
	}
	if d.V != consumerPersistVersion {
		return fmt.Errorf("consumer group %q: document version %d", g.name, d.V)
	}
	cg := newConsumerGroup(g.c.cfg.Groups)
	cg.epoch, cg.assignmentEpoch = d.Epoch, d.AssignmentEpoch
	for n, t := range d.Subscriptions {
		id, err := uuid.Parse(t.ID)
		if err != nil {
			return fmt.Errorf("consumer group %q: topic %s: %w", g.name, n, err)
		}
		cg.subs[n] = topicMeta{ID: metastore.TopicID(id), Partitions: t.Partitions}
	}
	for _, pm := range d.Members {
		m := &cmember{
			id: pm.ID, instanceID: pm.InstanceID, rackID: pm.RackID, clientID: pm.ClientID, clientHost: pm.ClientHost,
			rebalanceTimeout: time.Duration(pm.RebalanceTimeoutMs) * time.Millisecond, topics: pm.Topics, regex: pm.Regex,
			assignor: pm.Assignor, epoch: pm.Epoch, prevEpoch: pm.PreviousEpoch,
		}
		m.state = memberStable
		for i, n := range memberStateNames {
			if n == pm.State {
				m.state = memberState(i)
			}
		}
		var err error
		if m.assigned, err = decodeAssignment(pm.Assigned); err != nil {
			return err
		}
		if m.revoking, err = decodeAssignment(pm.Revoking); err != nil {
			return err
		}
		target, err := decodeAssignment(pm.Target)
		if err != nil {
			return err
		}
		cg.target[m.id] = target
		if pm.Classic != nil {
			m.classic = &classicMeta{sessionTimeout: time.Duration(pm.Classic.SessionTimeoutMs) * time.Millisecond}
			for _, p := range pm.Classic.Protocols {
				m.classic.protocols = append(m.classic.protocols, kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: p.Metadata})
			}
		}
		cg.members[m.id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
	}
	g.becomeConsumer(cg)
	g.seq = d.Seq
	for _, m := range cg.members {
		g.consumerSession(m)
		if m.state == memberUnrevoked && m.classic == nil {
			g.startRebalanceTimer(m)
		}
	}
	return nil
}

// becomeConsumer makes g the consumer group cg.
func (g *group) becomeConsumer(cg *consumerGroup) {
	g.kind = kindConsumer
	g.cg = cg
	g.protocolType = consumerProtocolType
	g.publish()
}
