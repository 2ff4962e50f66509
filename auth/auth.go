// Package auth holds silt's security: who a client is (principals, from a
// TLS client certificate or a SASL exchange) and what it may do. The
// agent wires it into connections and request handlers; nothing here
// knows the protocol server.
//
//	auth/tlsconf   TLS server configuration from certificate files that
//	               reload on change, and principals from client certificates
//	auth/sasl      SASL server mechanisms: PLAIN, SCRAM-SHA-256/512 (against
//	               the metastore's credentials) and OAUTHBEARER (JWT)
//	auth/acl       Kafka's ACL model and an authorizer that caches the
//	               metastore's ACLs on every agent
package auth

import "strings"

// Principal types and the principal of a client that did not
// authenticate, as Kafka names them.
const (
	UserType  = "User"
	Anonymous = "User:ANONYMOUS"
)

// User is the principal of an authenticated user name.
func User(name string) string { return UserType + ":" + name }

// SplitPrincipal splits "Type:name"; ok is false without a type.
func SplitPrincipal(p string) (typ, name string, ok bool) {
	typ, name, ok = strings.Cut(p, ":")
	return typ, name, ok && typ != ""
}
