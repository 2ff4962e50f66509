package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/siltdata/silt/segment/objstore"
)

// readyProbeKey is an object key that is never written: reading it and
// getting "not found" proves the bucket answers.
const readyProbeKey = "silt-readyz-probe"

// errNotRegistered means the agent holds no lease (not yet registered,
// lost it, or deregistered during shutdown): clients are not sent here.
var errNotRegistered = errors.New("agent not registered in the metastore")

// Ready reports whether the agent can serve: it is registered and not
// leaving, the metastore answers and the object store answers. It backs
// the admin port's /readyz.
func (a *Agent) Ready(ctx context.Context) error {
	if !a.members.isRegistered() {
		return errNotRegistered
	}
	if err := a.store.Ping(ctx); err != nil {
		return fmt.Errorf("metastore: %w", err)
	}
	_, err := a.bucket.GetRange(ctx, readyProbeKey, 0, 1)
	if err != nil && !a.bucket.IsNotFound(err) && !errors.Is(err, objstore.ErrRangeNotSatisfiable) {
		return fmt.Errorf("object store: %w", err)
	}
	return nil
}
