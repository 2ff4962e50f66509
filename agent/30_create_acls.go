package agent

// CreateAcls: v0-v3.
//
// Behaviour: each valid entry is stored (an entry that exists already is
// not duplicated) and this agent's ACL cache reloaded before the answer;
// the other agents reload on the metastore's change notification
// (Postgres) or within the refresh interval. An invalid entry (ANY or
// MATCH codes, an empty name, a principal without a type, a cluster
// resource not named kafka-cluster) answers INVALID_REQUEST for itself.
// Needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED for every
// entry); without an authorizer every entry answers SECURITY_DISABLED.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/acl"
	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleCreateACLs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	all := func(err error) (kmsg.Response, error) {
		code, msg := errorCode(err), kmsg.StringPtr(errMessage(err))
		for i := range resp.Results {
			resp.Results[i] = kmsg.NewCreateACLsResponseResult()
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, msg
		}
		r.logError(code, err)
		return resp, nil
	}
	if a.authz == nil {
		return all(kafkaErr(kerr.SecurityDisabled, "no authorizer is configured on the agent (--authorizer)"))
	}
	if !r.authorizedCluster(kmsg.ACLOperationAlter) {
		return all(kerr.ClusterAuthorizationFailed)
	}
	var valid []metastore.ACL
	for i, c := range req.Creations {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
		x := aclOf(c, req.Version)
		if err := acl.Validate(x); err != nil {
			resp.Results[i].ErrorCode = kerr.InvalidRequest.Code
			resp.Results[i].ErrorMessage = kmsg.StringPtr(err.Error())
			r.logError(kerr.InvalidRequest.Code, err)
			continue
		}
		valid = append(valid, x)
	}
	if err := a.authz.Create(ctx, valid); err != nil {
		code := errorCode(err)
		for i := range resp.Results {
			if resp.Results[i].ErrorCode == 0 {
				resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, kmsg.StringPtr(errMessage(err))
			}
		}
		r.logError(code, err)
		return resp, nil
	}
	for _, x := range valid {
		a.logger.Info("acl created", "audit", true, "principal", r.principal(), "acl", acl.Format(x))
	}
	return resp, nil
}

// principal is the request's principal, for audit lines.
func (r *request) principal() string {
	p, _ := r.conn.principalAndHost()
	return p
}
