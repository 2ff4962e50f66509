package agent

// AlterUserScramCredentials: v0.
//
// Behaviour: deletions and upsertions of SCRAM credentials in the
// metastore, answered per user. An upsertion carries the salt and the
// salted password (the client ran PBKDF2; the password never reaches the
// agent), from which the stored and server keys are derived; only those
// are kept. An unknown mechanism answers UNSUPPORTED_SASL_MECHANISM,
// iterations outside 4096-16384 or an empty user UNACCEPTABLE_CREDENTIAL,
// deleting a missing credential RESOURCE_NOT_FOUND, the same user and
// mechanism twice DUPLICATE_RESOURCE. Needs ALTER on the cluster
// (CLUSTER_AUTHORIZATION_FAILED). Every agent authenticates with the new
// credential at once (credentials are read at each login, not cached).
//
// Differences from Kafka: none intended.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/metastore"
)

func (a *Agent) handleAlterUserSCRAMCredentials(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	results := map[string]int{}
	result := func(user string) *kmsg.AlterUserSCRAMCredentialsResponseResult {
		i, ok := results[user]
		if !ok {
			i = len(resp.Results)
			results[user] = i
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User = user
			resp.Results = append(resp.Results, res)
		}
		return &resp.Results[i]
	}
	setErr := func(user string, code *kerr.Error, msg string) {
		res := result(user)
		if res.ErrorCode == 0 {
			res.ErrorCode, res.ErrorMessage = code.Code, kmsg.StringPtr(msg)
			r.logError(code.Code, errors.New(msg), "user", user)
		}
	}
	allowed := r.authorizedCluster(kmsg.ACLOperationAlter)
	type key struct {
		user string
		mech int8
	}
	seen := map[key]int{}
	for _, d := range req.Deletions {
		seen[key{d.Name, d.Mechanism}]++
	}
	for _, u := range req.Upsertions {
		seen[key{u.Name, u.Mechanism}]++
	}
	check := func(user string, mech int8) bool {
		switch {
		case !allowed:
			setErr(user, kerr.ClusterAuthorizationFailed, "ALTER on the cluster is required")
		case a.creds == nil:
			setErr(user, kerr.KafkaStorageError, errNoCredentialStore.Error())
		case user == "":
			setErr(user, kerr.UnacceptableCredential, "Username must not be empty")
		case scramMechanismName(mech) == "":
			setErr(user, kerr.UnsupportedSaslMechanism, fmt.Sprintf("Unknown SCRAM mechanism %d", mech))
		case seen[key{user, mech}] > 1:
			setErr(user, kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
		default:
			result(user)
			return true
		}
		return false
	}
	var upserts []metastore.ScramCredential
	for _, u := range req.Upsertions {
		if !check(u.Name, u.Mechanism) {
			continue
		}
		c, err := sasl.ScramCredentialFromSaltedPassword(scramMechanismName(u.Mechanism), u.Name, u.Salt, u.SaltedPassword, int(u.Iterations))
		if err != nil || len(u.Salt) == 0 || len(u.SaltedPassword) == 0 {
			setErr(u.Name, kerr.UnacceptableCredential, fmt.Sprintf("Invalid credential: %v", err))
			continue
		}
		upserts = append(upserts, c)
	}
	for _, d := range req.Deletions {
		if !check(d.Name, d.Mechanism) || result(d.Name).ErrorCode != 0 {
			continue
		}
		err := a.creds.DeleteScramCredential(ctx, d.Name, scramMechanismName(d.Mechanism))
		switch {
		case errors.Is(err, metastore.ErrUnknownCredential):
			setErr(d.Name, kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")
		case err != nil:
			setErr(d.Name, kerr.KafkaStorageError, err.Error())
		default:
			a.logger.Info("scram credential deleted", "audit", true, "principal", r.principal(), "user", d.Name, "mechanism", scramMechanismName(d.Mechanism))
		}
	}
	for _, c := range upserts {
		if result(c.User).ErrorCode != 0 {
			continue
		}
		if err := a.creds.UpsertScramCredential(ctx, c); err != nil {
			setErr(c.User, kerr.KafkaStorageError, err.Error())
			continue
		}
		a.logger.Info("scram credential set", "audit", true, "principal", r.principal(), "user", c.User, "mechanism", c.Mechanism)
	}
	return resp, nil
}
