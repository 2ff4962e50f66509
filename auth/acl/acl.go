// Package acl is Kafka's authorization model: ACL entries (principal,
// host, operation, permission) on resource patterns (topic, group,
// cluster, transactional id; literal or prefixed names), filters as
// DescribeAcls and DeleteAcls carry them, and an Authorizer that decides
// requests from a cache of the metastore's ACLs, kept current on every
// agent.
//
// Decisions follow Kafka's AclAuthorizer and StandardAuthorizer: super
// users may do anything; a DENY entry that matches wins over any ALLOW;
// ALLOW of READ, WRITE, DELETE or ALTER implies DESCRIBE, and ALLOW of
// ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL matches every operation,
// "User:*" every principal, host "*" every host, literal name "*" every
// resource of its type; a resource no entry matches is allowed only with
// allow.everyone.if.no.acl.found.
package acl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/auth"
	"github.com/siltdata/silt/metastore"
)

// ClusterName is the one cluster resource's name.
const ClusterName = "kafka-cluster"

// Wildcards.
const (
	WildcardResource  = "*"
	WildcardHost      = "*"
	WildcardPrincipal = "User:*"
)

// ErrInvalid marks an ACL that cannot be created, or a filter that
// cannot be used (INVALID_REQUEST).
var ErrInvalid = errors.New("invalid acl")

// Validate checks an entry for CreateAcls, as Kafka does.
func Validate(a metastore.ACL) error {
	switch kmsg.ACLResourceType(a.ResourceType) {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeTransactionalId,
		kmsg.ACLResourceTypeDelegationToken, kmsg.ACLResourceTypeUser:
	case kmsg.ACLResourceTypeCluster:
		if a.Name != ClusterName {
			return fmt.Errorf("%w: the cluster resource is named %q, not %q", ErrInvalid, ClusterName, a.Name)
		}
	default:
		return fmt.Errorf("%w: resource type %d", ErrInvalid, a.ResourceType)
	}
	switch kmsg.ACLResourcePatternType(a.PatternType) {
	case kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed:
	default:
		return fmt.Errorf("%w: pattern type %d (want LITERAL or PREFIXED)", ErrInvalid, a.PatternType)
	}
	if a.Name == "" {
		return fmt.Errorf("%w: empty resource name", ErrInvalid)
	}
	switch op := kmsg.ACLOperation(a.Operation); {
	case op >= kmsg.ACLOperationAll && op <= kmsg.ACLOperationDescribeTokens:
	default:
		return fmt.Errorf("%w: operation %d", ErrInvalid, a.Operation)
	}
	switch kmsg.ACLPermissionType(a.Permission) {
	case kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny:
	default:
		return fmt.Errorf("%w: permission type %d", ErrInvalid, a.Permission)
	}
	if typ, name, ok := auth.SplitPrincipal(a.Principal); !ok || name == "" || typ != auth.UserType && typ != "Group" {
		return fmt.Errorf("%w: principal %q (want User:<name>)", ErrInvalid, a.Principal)
	}
	if a.Host == "" {
		return fmt.Errorf("%w: empty host (use * for any)", ErrInvalid)
	}
	return nil
}

// Filter selects entries, as DescribeAcls and DeleteAcls requests do:
// ANY (or nil) fields match everything; pattern type MATCH selects the
// entries that would apply to the resource named Name (literal equal or
// "*", or a prefix of it).
type Filter struct {
	ResourceType kmsg.ACLResourceType
	Name         *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// ValidateFilter rejects filters with unknown codes.
func ValidateFilter(f Filter) error {
	if f.ResourceType < kmsg.ACLResourceTypeAny || f.ResourceType > kmsg.ACLResourceTypeUser {
		return fmt.Errorf("%w: resource type %d", ErrInvalid, f.ResourceType)
	}
	if f.PatternType < kmsg.ACLResourcePatternTypeAny || f.PatternType > kmsg.ACLResourcePatternTypePrefixed {
		return fmt.Errorf("%w: pattern type %d", ErrInvalid, f.PatternType)
	}
	if f.Operation < kmsg.ACLOperationAny || f.Operation > kmsg.ACLOperationDescribeTokens {
		return fmt.Errorf("%w: operation %d", ErrInvalid, f.Operation)
	}
	if f.Permission < kmsg.ACLPermissionTypeAny || f.Permission > kmsg.ACLPermissionTypeAllow {
		return fmt.Errorf("%w: permission type %d", ErrInvalid, f.Permission)
	}
	return nil
}

// Matches reports whether the filter selects a.
func (f Filter) Matches(a metastore.ACL) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && int8(f.ResourceType) != a.ResourceType {
		return false
	}
	if !f.matchesPattern(a) {
		return false
	}
	if f.Principal != nil && *f.Principal != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && int8(f.Operation) != a.Operation {
		return false
	}
	return f.Permission == kmsg.ACLPermissionTypeAny || int8(f.Permission) == a.Permission
}

// matchesPattern is Kafka's ResourcePatternFilter.matches.
func (f Filter) matchesPattern(a metastore.ACL) bool {
	pt := kmsg.ACLResourcePatternType(a.PatternType)
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny, kmsg.ACLResourcePatternTypeMatch:
	default:
		if f.PatternType != pt {
			return false
		}
	}
	if f.Name == nil {
		return true
	}
	if f.PatternType != kmsg.ACLResourcePatternTypeMatch {
		return *f.Name == a.Name
	}
	return matchesName(pt, a.Name, *f.Name)
}

// matchesName reports whether a pattern (type, name) applies to the
// resource named name.
func matchesName(pt kmsg.ACLResourcePatternType, pattern, name string) bool {
	switch pt {
	case kmsg.ACLResourcePatternTypeLiteral:
		return pattern == name || pattern == WildcardResource
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(name, pattern)
	}
	return false
}

// grants reports whether an ALLOW of allowed grants op: ALL grants
// everything, READ/WRITE/DELETE/ALTER imply DESCRIBE, ALTER_CONFIGS
// implies DESCRIBE_CONFIGS (Kafka's implication; DENY entries do not
// imply).
func grants(allowed, op kmsg.ACLOperation) bool {
	switch {
	case allowed == kmsg.ACLOperationAll || allowed == op:
		return true
	case op == kmsg.ACLOperationDescribe:
		switch allowed {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case op == kmsg.ACLOperationDescribeConfigs:
		return allowed == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// Format writes an entry for logs and the CLI.
func Format(a metastore.ACL) string {
	return fmt.Sprintf("(principal=%s, host=%s, operation=%s, permission=%s) on %s:%s:%s",
		a.Principal, a.Host, kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission),
		kmsg.ACLResourceType(a.ResourceType), kmsg.ACLResourcePatternType(a.PatternType), a.Name)
}
