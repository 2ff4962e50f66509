package agent

// DeleteAcls: v0-v3.
//
// Behaviour: every stored entry each filter selects is deleted and
// reported under that filter (an entry two filters select is reported
// under both); this agent's cache reloads before the answer, the others
// as after CreateAcls. Needs ALTER on the cluster
// (CLUSTER_AUTHORIZATION_FAILED for every filter); an invalid filter
// answers INVALID_REQUEST; without an authorizer SECURITY_DISABLED. v0
// filters are LITERAL.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/acl"
)

func (a *Agent) handleDeleteACLs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
	}
	all := func(err error) (kmsg.Response, error) {
		code, msg := errorCode(err), kmsg.StringPtr(errMessage(err))
		for i := range resp.Results {
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
	var (
		filters []acl.Filter
		at      []int // filters[k] answers resp.Results[at[k]]
	)
	for i, f := range req.Filters {
		pt := f.ResourcePatternType
		if req.Version == 0 {
			pt = kmsg.ACLResourcePatternTypeLiteral
		}
		af := acl.Filter{ResourceType: f.ResourceType, Name: f.ResourceName, PatternType: pt,
			Principal: f.Principal, Host: f.Host, Operation: f.Operation, Permission: f.PermissionType}
		if err := acl.ValidateFilter(af); err != nil {
			resp.Results[i].ErrorCode = kerr.InvalidRequest.Code
			resp.Results[i].ErrorMessage = kmsg.StringPtr(err.Error())
			continue
		}
		filters = append(filters, af)
		at = append(at, i)
	}
	deleted, err := a.authz.Delete(ctx, filters)
	if err != nil {
		return all(err)
	}
	for k, xs := range deleted {
		res := &resp.Results[at[k]]
		for _, x := range xs {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName = kmsg.ACLResourceType(x.ResourceType), x.Name
			m.ResourcePatternType = kmsg.ACLResourcePatternType(x.PatternType)
			m.Principal, m.Host = x.Principal, x.Host
			m.Operation, m.PermissionType = kmsg.ACLOperation(x.Operation), kmsg.ACLPermissionType(x.Permission)
			res.MatchingACLs = append(res.MatchingACLs, m)
			a.logger.Info("acl deleted", "audit", true, "principal", r.principal(), "acl", acl.Format(x))
		}
	}
	return resp, nil
}
