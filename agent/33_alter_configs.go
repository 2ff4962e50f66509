package agent

// AlterConfigs: v0-v2 (legacy; IncrementalAlterConfigs supersedes it).
//
// Behaviour: a topic resource's configs are replaced as a whole: the
// given ones are set, every other explicitly set config goes back to its
// default, as Kafka's legacy AlterConfigs does; a GROUP_CONFIG resource's
// likewise. Validation and answers as IncrementalAlterConfigs;
// validate_only stores nothing.
//
// Authorization (when on): ALTER_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED) or the cluster for broker resources
// (CLUSTER_AUTHORIZATION_FAILED), per resource.
//
// Differences from Kafka: broker configs cannot be altered
// (INVALID_REQUEST).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (a *Agent) handleAlterConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := r.configAuthorized(kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName)
		if err == nil {
			err = a.replaceConfigs(ctx, rr, req.ValidateOnly)
		}
		if err != nil {
			sr.ErrorCode = errorCode(err)
			sr.ErrorMessage = kmsg.StringPtr(errMessage(err))
			r.logError(sr.ErrorCode, err, "resource", rr.ResourceName)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func (a *Agent) replaceConfigs(ctx context.Context, rr kmsg.AlterConfigsRequestResource, validateOnly bool) error {
	if rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig {
		return a.replaceGroupConfigs(ctx, rr, validateOnly)
	}
	if rr.ResourceType != kmsg.ConfigResourceTypeTopic {
		return kafkaErr(kerr.InvalidRequest, "silt cannot alter %s configs", rr.ResourceType)
	}
	next := make(map[string]string, len(rr.Configs))
	for _, c := range rr.Configs {
		if _, dup := next[c.Name]; dup {
			return kafkaErr(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		if c.Value == nil {
			return kafkaErr(kerr.InvalidRequest, "Null value not supported for topic configs: %s", c.Name)
		}
		next[c.Name] = *c.Value
	}
	if err := validateTopicConfigs(next); err != nil {
		return err
	}
	current, err := a.topicConfigs(ctx, rr.ResourceName)
	if err != nil {
		return err
	}
	return a.storeTopicConfigs(ctx, rr.ResourceName, current, next, validateOnly)
}
