package group

import "github.com/siltdata/silt/metastore"

// memberState is a consumer group member's place in the reconciliation
// of its assignment with its target (Kafka's MemberState).
type memberState int8

const (
	// memberStable: the member has its whole target, at the target epoch.
	memberStable memberState = iota
	// memberUnrevoked: the member must stop owning partitions that go to
	// others before it moves to the target epoch.
	memberUnrevoked
	// memberUnreleased: the member is at the target epoch but some of its
	// target partitions are still owned by others; it gets them as they
	// are released.
	memberUnreleased
)

var memberStateNames = [...]string{"stable", "unrevoked_partitions", "unreleased_partitions"}

func (s memberState) String() string { return memberStateNames[s] }

// reconciled is a member's assignment state after one reconciliation step.
type reconciled struct {
	state    memberState
	epoch    int32
	assigned assignment
	revoking assignment
}

// reconcile moves a member one step towards its target assignment, as
// Kafka's CurrentAssignmentBuilder does. cur is the member's state now;
// owned is what the member reports it owns (nil: it did not say, so it
// is assumed to still own everything it was asked to revoke); ownerEpoch
// returns the epoch of the member currently owning a partition (assigned
// or pending revocation), or -1 when it is free.
//
// A member first gives up what its target no longer holds (staying at its
// epoch until its heartbeat no longer lists those partitions), then moves
// to the target epoch with what it keeps plus every target partition that
// no one else owns; the rest it gets when they are released.
func reconcile(cur reconciled, targetEpoch int32, target assignment, owned assignment, ownerEpoch func(metastore.TopicID, int32) int32) reconciled {
	switch cur.state {
	case memberStable:
		if cur.epoch == targetEpoch {
			return cur
		}
		return nextAssignment(cur.epoch, cur.assigned, targetEpoch, target, owned, ownerEpoch)
	case memberUnrevoked:
		if ownsAny(owned, cur.revoking) {
			return cur
		}
		return nextAssignment(cur.epoch+1, cur.assigned, targetEpoch, target, owned, ownerEpoch)
	default: // memberUnreleased
		return nextAssignment(cur.epoch, cur.assigned, targetEpoch, target, owned, ownerEpoch)
	}
}

// ownsAny reports whether owned holds any partition of revoking; a nil
// owned (not reported) counts as holding them all.
func ownsAny(owned, revoking assignment) bool {
	if owned == nil {
		return len(revoking) > 0
	}
	for t, ps := range owned {
		for _, p := range ps {
			if revoking.has(t, p) {
				return true
			}
		}
	}
	return false
}

// nextAssignment is CurrentAssignmentBuilder.computeNextAssignment.
func nextAssignment(epoch int32, assigned assignment, targetEpoch int32, target, owned assignment, ownerEpoch func(metastore.TopicID, int32) int32) reconciled {
	keep := assigned.intersect(target)
	revoking := assigned.minus(keep)
	pending := target.minus(keep)
	unreleased := false
	for t, ps := range pending {
		free := ps[:0:0]
		for _, p := range ps {
			if ownerEpoch(t, p) != -1 {
				unreleased = true
				continue
			}
			free = append(free, p)
		}
		if len(free) == 0 {
			delete(pending, t)
		} else {
			pending[t] = free
		}
	}
	switch {
	case len(revoking) > 0 && ownsAny(owned, revoking):
		return reconciled{state: memberUnrevoked, epoch: epoch, assigned: keep, revoking: revoking}
	case len(pending) > 0:
		for t, ps := range pending {
			for _, p := range ps {
				keep.add(t, p)
			}
		}
		state := memberStable
		if unreleased {
			state = memberUnreleased
		}
		return reconciled{state: state, epoch: targetEpoch, assigned: keep, revoking: assignment{}}
	case unreleased:
		return reconciled{state: memberUnreleased, epoch: targetEpoch, assigned: keep, revoking: assignment{}}
	default:
		return reconciled{state: memberStable, epoch: targetEpoch, assigned: keep, revoking: assignment{}}
	}
}
