package agent

// DescribeCluster: v0-v1.
//
// Behaviour: the live agents as brokers on the client's listener (as in
// Metadata), the cluster id, the controller (the live agent with the
// lowest node id), and the principal's authorized cluster operations when
// asked. Like Kafka it needs no permission. v1's
// endpoint type must be 1 (brokers); 2 (controllers) answers
// UNSUPPORTED_ENDPOINT_TYPE, since silt has no separate controllers.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/acl"
)

func (a *Agent) handleDescribeCluster(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("silt agents only expose broker endpoints")
		r.logError(resp.ErrorCode, nil, "endpoint_type", req.EndpointType)
		return resp, nil
	}
	live, _ := a.brokersFor(r.conn.l.cfg.Name)
	resp.ClusterID = a.cfg.ClusterID
	resp.ControllerID = live[0].NodeID
	for _, ag := range live {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port = ag.NodeID, ag.Host, ag.Port
		if ag.Zone != "" {
			b.Rack = kmsg.StringPtr(ag.Zone)
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = r.authorizedOps(kmsg.ACLResourceTypeCluster, acl.ClusterName, clusterOps)
	}
	return resp, nil
}
