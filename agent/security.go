package agent

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth/acl"
	"github.com/siltdata/silt/auth/sasl"
	"github.com/siltdata/silt/metastore"
)

// newSecurity builds what the listeners and the authorizer need: the TLS
// files, the SASL server (when a listener uses SASL) and the authorizer
// (when Config.Authorize).
func (a *Agent) newSecurity() error {
	if err := a.loadTLS(); err != nil {
		return err
	}
	if slices.ContainsFunc(a.cfg.listeners(), Listener.SASL) {
		scfg := a.cfg.SASL
		scfg.OAuth.Logger = a.logger
		s, err := sasl.New(a.ctx, scfg, a.creds, a.logger)
		if err != nil {
			return fmt.Errorf("sasl: %w", err)
		}
		a.sasl = s
	}
	if a.cfg.Authorize {
		store, ok := a.store.(metastore.ACLs)
		if !ok {
			a.closeSecurity()
			return errors.New("authorizer: the metastore cannot store ACLs")
		}
		authz, err := acl.New(a.cfg.ACL, store, a.logger, a.reg)
		if err != nil {
			a.closeSecurity()
			return fmt.Errorf("authorizer: %w", err)
		}
		a.authz = authz
	}
	return nil
}

// closeSecurity stops the SASL server's background work (a JWKS URL's
// refresh). The authorizer's goroutine ends with a.ctx.
func (a *Agent) closeSecurity() {
	if a.sasl != nil {
		a.sasl.Close()
	}
}

// Authorization checks: every handler asks through these, with the
// operation and resource Kafka's KafkaApis uses for the same request.

// authorized reports whether the request's principal may perform op on
// the resource; a denial is logged as an audit line. Without an
// authorizer everything is allowed.
func (r *request) authorized(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return r.authorize(op, rt, name, true)
}

// authorizedQuiet is authorized without the audit line, for filters
// (Metadata listing all topics, ListGroups) where Kafka does not log
// what it leaves out.
func (r *request) authorizedQuiet(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return r.authorize(op, rt, name, false)
}

func (r *request) authorize(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string, log bool) bool {
	authz := r.conn.a.authz
	if authz == nil {
		return true
	}
	principal, host := r.conn.principalAndHost()
	if authz.Authorize(principal, host, op, rt, name) {
		return true
	}
	if log {
		r.auditDenied(principal, host, op, rt, name)
	}
	return false
}

// authorizedCluster is authorized on the cluster resource.
func (r *request) authorizedCluster(op kmsg.ACLOperation) bool {
	return r.authorized(op, kmsg.ACLResourceTypeCluster, acl.ClusterName)
}

// authorizedAny reports whether the principal may perform op on some
// resource of type rt (KIP-679's authorizeByResourceType).
func (r *request) authorizedAny(op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	authz := r.conn.a.authz
	if authz == nil {
		return true
	}
	principal, host := r.conn.principalAndHost()
	return authz.AuthorizeAny(principal, host, op, rt)
}

// authorizedOps is the bit set of ops the principal may perform on the
// resource (the authorized_operations fields); everything in ops without
// an authorizer.
func (r *request) authorizedOps(rt kmsg.ACLResourceType, name string, ops []kmsg.ACLOperation) int32 {
	authz := r.conn.a.authz
	if authz == nil {
		var bits int32
		for _, op := range ops {
			bits |= 1 << op
		}
		return bits
	}
	principal, host := r.conn.principalAndHost()
	return authz.Operations(principal, host, rt, name, ops)
}

// auditDenied is the audit line of a denied request: who, from where,
// which API, operation and resource.
func (r *request) auditDenied(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) {
	r.conn.a.metrics.denials.WithLabelValues(kmsg.NameForKey(r.kreq.Key())).Inc()
	r.conn.a.logger.Info("authorization denied", "audit", true,
		"principal", principal, "host", host, "client", r.conn.remote, "client_id", r.clientID,
		"api", kmsg.NameForKey(r.kreq.Key()), "operation", op.String(), "resource_type", rt.String(), "resource", name)
}

// configAuthorized checks op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a
// config resource: a topic, or a broker (the cluster resource, as Kafka
// checks broker configs). It returns the Kafka error to answer, or nil.
func (r *request) configAuthorized(op kmsg.ACLOperation, rt kmsg.ConfigResourceType, name string) error {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if !r.authorized(op, kmsg.ACLResourceTypeTopic, name) {
			return kerr.TopicAuthorizationFailed
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !r.authorizedCluster(op) {
			return kerr.ClusterAuthorizationFailed
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		// Kafka checks the group's DESCRIBE_CONFIGS / ALTER_CONFIGS.
		if !r.authorized(op, kmsg.ACLResourceTypeGroup, name) {
			return kerr.GroupAuthorizationFailed
		}
	}
	return nil
}

// Operations reported as authorized_operations, per resource type (the
// operations Kafka defines for each).
var (
	topicOps = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
		kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	clusterOps = []kmsg.ACLOperation{kmsg.ACLOperationCreate, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
		kmsg.ACLOperationIdempotentWrite}
	groupOps = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete}
	// modernGroupOps are what Kafka 4.x reports for consumer and share
	// groups, whose configs are resources too.
	modernGroupOps = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
)

// principalAndHost is the connection's principal and client IP.
func (c *conn) principalAndHost() (string, string) {
	c.authMu.Lock()
	p := c.principal
	c.authMu.Unlock()
	return p, c.host
}

// clientHost is the IP of a remote address.
func clientHost(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}
