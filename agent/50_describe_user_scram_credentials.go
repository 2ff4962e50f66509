package agent

// DescribeUserScramCredentials: v0.
//
// Behaviour: each named user's SCRAM mechanisms and iteration counts (never
// salts or keys), or every user's when the list is null. An unknown user
// answers RESOURCE_NOT_FOUND, a user named twice DUPLICATE_RESOURCE. Needs
// DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED).
//
// Differences from Kafka: none intended.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/sasl"
)

// scramMechanismCode is the wire code of a SCRAM mechanism (0 unknown).
func scramMechanismCode(mech string) int8 {
	switch mech {
	case sasl.ScramSHA256:
		return 1
	case sasl.ScramSHA512:
		return 2
	}
	return 0
}

// scramMechanismName is the mechanism of a wire code ("" unknown).
func scramMechanismName(code int8) string {
	switch code {
	case 1:
		return sasl.ScramSHA256
	case 2:
		return sasl.ScramSHA512
	}
	return ""
}

// errNoCredentialStore: the metastore cannot hold SCRAM credentials.
var errNoCredentialStore = errors.New("the metastore has no SCRAM credential store")

func (a *Agent) handleDescribeUserSCRAMCredentials(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	fail := func(err error) (kmsg.Response, error) {
		resp.ErrorCode = errorCode(err)
		resp.ErrorMessage = kmsg.StringPtr(errMessage(err))
		r.logError(resp.ErrorCode, err)
		return resp, nil
	}
	if !r.authorizedCluster(kmsg.ACLOperationDescribe) {
		return fail(kerr.ClusterAuthorizationFailed)
	}
	if a.creds == nil {
		return fail(errNoCredentialStore)
	}
	var users []string
	count := map[string]int{}
	if req.Users != nil {
		users = []string{}
		for _, u := range req.Users {
			if count[u.Name]++; count[u.Name] == 1 {
				users = append(users, u.Name)
			}
		}
	}
	creds, err := a.creds.ScramCredentials(ctx, users)
	if err != nil {
		return fail(err)
	}
	byUser := map[string]int{}
	add := func(user string) *kmsg.DescribeUserSCRAMCredentialsResponseResult {
		if i, ok := byUser[user]; ok {
			return &resp.Results[i]
		}
		byUser[user] = len(resp.Results)
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = user
		resp.Results = append(resp.Results, res)
		return &resp.Results[len(resp.Results)-1]
	}
	for _, u := range users {
		res := add(u)
		if count[u] > 1 {
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + u)
		}
	}
	for _, c := range creds {
		res := add(c.User)
		if res.ErrorCode != 0 {
			continue
		}
		info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
		info.Mechanism, info.Iterations = scramMechanismCode(c.Mechanism), c.Iterations
		res.CredentialInfos = append(res.CredentialInfos, info)
	}
	for i := range resp.Results {
		res := &resp.Results[i]
		if res.ErrorCode == 0 && len(res.CredentialInfos) == 0 {
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist: " + res.User)
		}
	}
	return resp, nil
}
