package agent

// DeleteTopics: v0-v6.
//
// Behaviour:
//   - v0-v5 name topics; v6 names them or gives their ids (both set is
//     INVALID_REQUEST, an unknown id UNKNOWN_TOPIC_ID, an unknown name
//     UNKNOWN_TOPIC_OR_PARTITION).
//   - Deletion removes the topic (its name is free again at once), its
//     producer state and committed offsets in the metastore; its batch
//     index rows and the objects only they use are reclaimed by the
//     storage janitor in bounded steps. This agent's topic cache forgets
//     the topic at once; other agents within topicCacheTTL.
//
// Authorization (when on): DELETE on each topic, named or by id (else
// TOPIC_AUTHORIZATION_FAILED).
//
// Differences from Kafka: none intended; deletion is complete when
// answered (Kafka's is asynchronous).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// deleteAuthorized checks DELETE on the topic (as Kafka's controller: a
// topic named by id the principal may not delete answers
// TOPIC_AUTHORIZATION_FAILED, whether or not it may describe it).
func (a *Agent) deleteAuthorized(ctx context.Context, r *request, rt kmsg.DeleteTopicsRequestTopic) error {
	if a.authz == nil {
		return nil
	}
	var name string
	if rt.Topic != nil {
		name = *rt.Topic
	} else {
		t, err := a.topicByID(ctx, metastore.TopicID(rt.TopicID))
		if err != nil {
			return nil // deleteTopic answers it
		}
		name = t.Name
	}
	if !r.authorized(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, name) {
		return kerr.TopicAuthorizationFailed
	}
	return nil
}

func (a *Agent) handleDeleteTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)

	targets := req.Topics
	if req.Version < 6 {
		targets = make([]kmsg.DeleteTopicsRequestTopic, 0, len(req.TopicNames))
		for _, n := range req.TopicNames {
			t := kmsg.NewDeleteTopicsRequestTopic()
			t.Topic = kmsg.StringPtr(n)
			targets = append(targets, t)
		}
	}
	for _, rt := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		err := a.deleteAuthorized(ctx, r, rt)
		if err == nil {
			err = a.deleteTopic(ctx, rt)
		}
		if err != nil {
			st.ErrorCode = errorCode(err)
			if rt.Topic == nil && st.ErrorCode == kerr.UnknownTopicOrPartition.Code {
				st.ErrorCode = kerr.UnknownTopicID.Code
			}
			st.ErrorMessage = kmsg.StringPtr(errMessage(err))
			r.logError(st.ErrorCode, err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (a *Agent) deleteTopic(ctx context.Context, rt kmsg.DeleteTopicsRequestTopic) error {
	var id metastore.TopicID = rt.TopicID
	if rt.Topic != nil && !id.IsZero() {
		return kafkaErr(kerr.InvalidRequest, "topic %s given by both name and id", *rt.Topic)
	}
	name := ""
	if rt.Topic != nil {
		name = *rt.Topic
	} else {
		t, err := a.store.TopicByID(ctx, id)
		if err != nil {
			return err
		}
		name = t.Name
		rt.Topic = &name
	}
	a.topics.invalidate(name)
	if err := a.store.DeleteTopic(ctx, name); err != nil {
		return err // the store's errors name the topic
	}
	a.topics.invalidate(name)
	a.logger.Info("topic deleted", "topic", name)
	return nil
}
