package agent

// DescribeAcls: v0-v3.
//
// Behaviour: the stored ACL entries the filter selects (read from the
// metastore, so an entry created through any agent is described by every
// agent), grouped by resource pattern. Needs DESCRIBE on the cluster
// (CLUSTER_AUTHORIZATION_FAILED); an invalid filter answers
// INVALID_REQUEST; without an authorizer (Config.Authorize off)
// SECURITY_DISABLED, as Kafka does. v0 filters are LITERAL.
//
// Differences from Kafka: none intended.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/acl"
	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleDescribeACLs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	fail := func(err error) (kmsg.Response, error) {
		resp.ErrorCode = errorCode(err)
		resp.ErrorMessage = kmsg.StringPtr(errMessage(err))
		r.logError(resp.ErrorCode, err)
		return resp, nil
	}
	if a.authz == nil {
		return fail(kafkaErr(kerr.SecurityDisabled, "no authorizer is configured on the agent (--authorizer)"))
	}
	if !r.authorizedCluster(kmsg.ACLOperationDescribe) {
		return fail(kerr.ClusterAuthorizationFailed)
	}
	pattern := req.ResourcePatternType
	if req.Version == 0 {
		pattern = kmsg.ACLResourcePatternTypeLiteral
	}
	f := acl.Filter{ResourceType: req.ResourceType, Name: req.ResourceName, PatternType: pattern,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType}
	if err := acl.ValidateFilter(f); err != nil {
		return fail(kafkaErr(kerr.InvalidRequest, "%v", err))
	}
	found, err := a.authz.Describe(ctx, f)
	if err != nil {
		return fail(err)
	}
	type pat struct {
		rt   int8
		name string
		pt   int8
	}
	index := map[pat]int{}
	for _, x := range found {
		k := pat{x.ResourceType, x.Name, x.PatternType}
		i, ok := index[k]
		if !ok {
			i = len(resp.Resources)
			index[k] = i
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName = kmsg.ACLResourceType(x.ResourceType), x.Name
			res.ResourcePatternType = kmsg.ACLResourcePatternType(x.PatternType)
			resp.Resources = append(resp.Resources, res)
		}
		e := kmsg.NewDescribeACLsResponseResourceACL()
		e.Principal, e.Host = x.Principal, x.Host
		e.Operation, e.PermissionType = kmsg.ACLOperation(x.Operation), kmsg.ACLPermissionType(x.Permission)
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, e)
	}
	return resp, nil
}

// aclOf converts an entry of a CreateAcls request.
func aclOf(c kmsg.CreateACLsRequestCreation, version int16) metastore.ACL {
	pt := c.ResourcePatternType
	if version == 0 {
		pt = kmsg.ACLResourcePatternTypeLiteral
	}
	return metastore.ACL{ResourceType: int8(c.ResourceType), Name: c.ResourceName, PatternType: int8(pt),
		Principal: c.Principal, Host: c.Host, Operation: int8(c.Operation), Permission: int8(c.PermissionType)}
}
