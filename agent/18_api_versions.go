package agent

// ApiVersions: v0-v5.
//
// Behaviour:
//   - Lists every API in the apis table with the versions registered
//     there, so what is advertised is exactly what is implemented.
//   - A request version above v5 is answered with UNSUPPORTED_VERSION in a
//     v0 response that lists the supported APIs (KIP-511); the client then
//     retries with a version it finds there. The server handles that case
//     before decoding (conn.decode), because the body's layout is unknown.
//   - v3+: the client software name and version must match Kafka's
//     pattern, else INVALID_REQUEST, as Kafka answers.
//   - v5+ (KIP-1242): a client naming the cluster and node it expects must
//     name both (else INVALID_REQUEST); if they are not this cluster and
//     this agent's node id (the address now belongs to another agent), the
//     answer is REBOOTSTRAP_REQUIRED.
//   - The response header is always v0 (no tagged fields), even for the
//     flexible v3+, as the protocol requires.
//
//   - v3+ lists one feature, supported and finalized: transaction.version
//     2 (KIP-890 part 2), which clients that know it (Kafka 4.x, franz-go)
//     read as "EndTxn v5 bumps the epoch, Produce v12 and TxnOffsetCommit
//     v5 add to the transaction implicitly". The finalized features' epoch
//     is fixed at 1: they never change.
//
// Differences from Kafka: only transaction.version is listed (Kafka also
// lists metadata.version, group.version and others, which describe
// features silt does not have or need); Kafka lists only the ApiVersions
// range in the UNSUPPORTED_VERSION answer, silt lists all.

import (
	"context"
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// softwareNameRe is Kafka's rule for client software names and versions.
var softwareNameRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (a *Agent) handleApiVersions(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (!softwareNameRe.MatchString(req.ClientSoftwareName) || !softwareNameRe.MatchString(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		r.logError(resp.ErrorCode, nil, "software_name", req.ClientSoftwareName, "software_version", req.ClientSoftwareVersion)
	}
	if resp.ErrorCode == 0 && req.Version >= 5 {
		hasCluster, hasNode := req.ClusterID != nil, req.NodeID != -1
		switch {
		case hasCluster != hasNode:
			resp.ErrorCode = kerr.InvalidRequest.Code
			r.logError(resp.ErrorCode, nil, "cluster_id", req.ClusterID, "node_id", req.NodeID)
		case hasCluster && (*req.ClusterID != a.cfg.ClusterID || req.NodeID != a.NodeID()):
			resp.ErrorCode = kerr.RebootstrapRequired.Code
			r.logError(resp.ErrorCode, nil, "cluster_id", *req.ClusterID, "node_id", req.NodeID)
		}
	}
	resp.ApiKeys = supportedAPIKeys()
	if req.Version >= 3 {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = transactionVersionFeature, 0, transactionVersion
		resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{sf}
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = transactionVersionFeature, transactionVersion, transactionVersion
		resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{ff}
		resp.FinalizedFeaturesEpoch = 1
	}
	return resp, nil
}

// The transaction version silt's agents run (Kafka's transaction.version
// feature): 2 is KIP-890 part 2.
const (
	transactionVersionFeature       = "transaction.version"
	transactionVersion        int16 = 2
)

// unsupportedApiVersions is the v0 answer to an ApiVersions request of a
// version this agent does not know.
func unsupportedApiVersions() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = supportedAPIKeys()
	return resp
}

// supportedAPIKeys lists the apis table, by key.
func supportedAPIKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apiTable))
	for _, api := range apiTable {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = api.key, api.min, api.max
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y kmsg.ApiVersionsResponseApiKey) int { return int(x.ApiKey) - int(y.ApiKey) })
	return keys
}
