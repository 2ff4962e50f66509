package group

import (
	"testing"

	"github.com/siltdata/silt/metastore"
)

// TestReconcileHandOver walks Kafka's example: A owns p0 and p1; B joins
// and the target moves p1 to B. B must wait until A has revoked p1.
func TestReconcileHandOver(t *testing.T) {
	tid := topicID(1)
	a := reconciled{state: memberStable, epoch: 1, assigned: assignment{tid: {0, 1}}, revoking: assignment{}}
	b := reconciled{state: memberStable, epoch: 0, assigned: assignment{}, revoking: assignment{}}
	owners := func(ms ...reconciled) func(metastore.TopicID, int32) int32 {
		return func(t metastore.TopicID, p int32) int32 {
			for _, m := range ms {
				if m.assigned.has(t, p) || m.revoking.has(t, p) {
					return m.epoch
				}
			}
			return -1
		}
	}
	targetA, targetB := assignment{tid: {0}}, assignment{tid: {1}}

	// A is asked to revoke p1 and stays at epoch 1.
	a = reconcile(a, 2, targetA, assignment{tid: {0, 1}}, owners(b))
	if a.state != memberUnrevoked || a.epoch != 1 || !a.assigned.equal(targetA) || !a.revoking.equal(targetB) {
		t.Fatalf("A after the new target: %+v", a)
	}
	// B moves to epoch 2 but cannot have p1 yet.
	b = reconcile(b, 2, targetB, assignment{}, owners(a))
	if b.state != memberUnreleased || b.epoch != 2 || b.assigned.count() != 0 {
		t.Fatalf("B while A still owns p1: %+v", b)
	}
	// A without an owned list (a heartbeat that omits it) stays put.
	if again := reconcile(a, 2, targetA, nil, owners(b)); again.state != memberUnrevoked {
		t.Fatalf("A with unknown owned partitions: %+v", again)
	}
	// A reports p1 gone: it moves to epoch 2.
	a = reconcile(a, 2, targetA, assignment{tid: {0}}, owners(b))
	if a.state != memberStable || a.epoch != 2 || !a.assigned.equal(targetA) || a.revoking.count() != 0 {
		t.Fatalf("A after revoking: %+v", a)
	}
	// Now B gets p1.
	b = reconcile(b, 2, targetB, assignment{}, owners(a))
	if b.state != memberStable || b.epoch != 2 || !b.assigned.equal(targetB) {
		t.Fatalf("B after A released p1: %+v", b)
	}
	// Stable at the target epoch: nothing changes.
	if same := reconcile(b, 2, targetB, targetB, owners(a)); same.epoch != 2 || !same.assigned.equal(targetB) {
		t.Fatalf("reconciled member changed: %+v", same)
	}
}
