package acl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// Config configures the authorizer.
type Config struct {
	// SuperUsers are principals ("User:admin") allowed everything
	// (super.users).
	SuperUsers []string
	// AllowEveryoneIfNoACLFound allows an operation on a resource that
	// no ACL entry matches (allow.everyone.if.no.acl.found). Off, as in
	// Kafka: a resource without ACLs is closed to everyone but super
	// users.
	AllowEveryoneIfNoACLFound bool
	// RefreshInterval is how often the cache is reloaded even without a
	// change notification: a bound on staleness if a notification is
	// lost (and the only reload with a store that cannot notify, for
	// changes another process makes).
	RefreshInterval time.Duration
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{RefreshInterval: 30 * time.Second}
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	for _, p := range c.SuperUsers {
		if err := Validate(metastore.ACL{ResourceType: int8(kmsg.ACLResourceTypeTopic), Name: "x",
			PatternType: int8(kmsg.ACLResourcePatternTypeLiteral), Principal: p, Host: "*",
			Operation: int8(kmsg.ACLOperationAll), Permission: int8(kmsg.ACLPermissionTypeAllow)}); err != nil {
			errs = append(errs, fmt.Errorf("super user %q: want User:<name>", p))
		}
	}
	if c.RefreshInterval <= 0 {
		errs = append(errs, fmt.Errorf("refresh interval %s: must be positive", c.RefreshInterval))
	}
	return errors.Join(errs...)
}

// Store is what the authorizer needs of the metastore.
type Store = metastore.ACLs

// Authorizer decides requests from a cache of the metastore's ACLs. The
// cache is loaded by Load and kept current by Run: a change notification
// (metastore.ACLWatcher) reloads it within a round trip, a periodic
// reload bounds staleness otherwise, and this agent's own changes
// (Create, Delete) reload it before they return.
type Authorizer struct {
	cfg    Config
	store  Store
	logger *slog.Logger
	super  map[string]bool

	reloads  prometheus.Counter
	failures prometheus.Counter

	// mu guards byType and loaded.
	mu     sync.RWMutex
	byType map[int8][]metastore.ACL
	loaded bool
	// reloadMu serializes reloads, so a reload that read the store
	// earlier never replaces the cache after one that read it later.
	reloadMu sync.Mutex
}

// New builds an authorizer; it denies everything but super users until
// Load succeeds.
func New(cfg Config, store Store, logger *slog.Logger, reg prometheus.Registerer) (*Authorizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Authorizer{cfg: cfg, store: store, logger: logger, super: map[string]bool{}, byType: map[int8][]metastore.ACL{}}
	for _, p := range cfg.SuperUsers {
		a.super[p] = true
	}
	a.reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "silt_acl_reloads_total",
		Help: "Reloads of the ACL cache from the metastore.",
	})
	a.failures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "silt_acl_reload_failures_total",
		Help: "Reloads of the ACL cache that failed (the previous ACLs stay in force).",
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{a.reloads, a.failures} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register acl metrics: %w", err)
			}
		}
	}
	return a, nil
}

// Load reads every ACL into the cache.
func (a *Authorizer) Load(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	acls, err := a.store.ListACLs(ctx)
	if err != nil {
		a.failures.Inc()
		return fmt.Errorf("load acls: %w", err)
	}
	byType := map[int8][]metastore.ACL{}
	for _, x := range acls {
		byType[x.ResourceType] = append(byType[x.ResourceType], x)
	}
	a.mu.Lock()
	a.byType, a.loaded = byType, true
	a.mu.Unlock()
	a.reloads.Inc()
	return nil
}

// Run keeps the cache current until ctx ends: it reloads on every change
// notification when the store sends them, and every RefreshInterval.
func (a *Authorizer) Run(ctx context.Context) {
	changed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	if w, ok := a.store.(metastore.ACLWatcher); ok {
		wg.Go(func() {
			err := w.WatchACLs(ctx, func() {
				select {
				case changed <- struct{}{}:
				default: // a reload is already due
				}
			})
			if err != nil && ctx.Err() == nil {
				a.logger.Error("acl watcher stopped", "err", err)
			}
		})
	}
	tick := time.NewTicker(a.cfg.RefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
		if err := a.Load(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("acl reload failed; the previous ACLs stay in force", "err", err)
		}
	}
}

// Ready reports whether the ACLs were loaded at least once.
func (a *Authorizer) Ready() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.loaded
}

// IsSuperUser reports whether principal is a super user.
func (a *Authorizer) IsSuperUser(principal string) bool { return a.super[principal] }

// Authorize decides whether principal, connected from host (an IP), may
// perform op on the resource of type rt named name.
func (a *Authorizer) Authorize(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if a.super[principal] {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if !a.loaded {
		return false
	}
	matched, allowed := false, false
	for _, x := range a.byType[int8(rt)] {
		if !matchesName(kmsg.ACLResourcePatternType(x.PatternType), x.Name, name) {
			continue
		}
		matched = true
		if !appliesTo(x, principal, host) {
			continue
		}
		eop := kmsg.ACLOperation(x.Operation)
		switch kmsg.ACLPermissionType(x.Permission) {
		case kmsg.ACLPermissionTypeDeny:
			if eop == kmsg.ACLOperationAll || eop == op {
				return false
			}
		case kmsg.ACLPermissionTypeAllow:
			if grants(eop, op) {
				allowed = true
			}
		}
	}
	if !matched {
		return a.cfg.AllowEveryoneIfNoACLFound
	}
	return allowed
}

// AuthorizeAny decides whether principal may perform op on at least one
// resource of type rt (Kafka's authorizeByResourceType, KIP-679: an
// idempotent producer needs WRITE on some topic, or IDEMPOTENT_WRITE on
// the cluster). An ALLOW counts unless a DENY of the same operation
// covers its whole pattern.
func (a *Authorizer) AuthorizeAny(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	if a.super[principal] {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if !a.loaded {
		return false
	}
	entries := a.byType[int8(rt)]
	if len(entries) == 0 {
		return a.cfg.AllowEveryoneIfNoACLFound
	}
	var denies []metastore.ACL
	for _, x := range entries {
		eop := kmsg.ACLOperation(x.Operation)
		if kmsg.ACLPermissionType(x.Permission) == kmsg.ACLPermissionTypeDeny && appliesTo(x, principal, host) &&
			(eop == kmsg.ACLOperationAll || eop == op) {
			denies = append(denies, x)
		}
	}
	for _, x := range entries {
		if kmsg.ACLPermissionType(x.Permission) != kmsg.ACLPermissionTypeAllow || !appliesTo(x, principal, host) ||
			!grants(kmsg.ACLOperation(x.Operation), op) {
			continue
		}
		covered := slices.ContainsFunc(denies, func(d metastore.ACL) bool {
			pt := kmsg.ACLResourcePatternType(d.PatternType)
			if pt == kmsg.ACLResourcePatternTypeLiteral {
				return d.Name == WildcardResource || d.Name == x.Name && x.PatternType == d.PatternType
			}
			return matchesName(pt, d.Name, x.Name) // a deny prefix covering the allowed name or prefix
		})
		if !covered {
			return true
		}
	}
	return false
}

// Operations returns the bit set (bit n for operation code n) of ops that
// principal may perform on the resource: Metadata's and
// DescribeCluster's authorized operations.
func (a *Authorizer) Operations(principal, host string, rt kmsg.ACLResourceType, name string, ops []kmsg.ACLOperation) int32 {
	var bits int32
	for _, op := range ops {
		if a.Authorize(principal, host, op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}

// appliesTo reports whether an entry names the principal and host.
func appliesTo(x metastore.ACL, principal, host string) bool {
	if x.Principal != principal && x.Principal != WildcardPrincipal {
		return false
	}
	if x.Host == WildcardHost || x.Host == host {
		return true
	}
	// Compare IPs in canonical form ("::ffff:10.0.0.1" is 10.0.0.1).
	h, e := net.ParseIP(host), net.ParseIP(x.Host)
	return h != nil && e != nil && h.Equal(e)
}

// Create validates and stores entries, then reloads the cache.
func (a *Authorizer) Create(ctx context.Context, acls []metastore.ACL) error {
	if err := a.store.CreateACLs(ctx, acls); err != nil {
		return err
	}
	return a.Load(ctx)
}

// Describe returns the stored entries the filter selects, read from the
// metastore (not the cache), so an entry created through any agent is
// described by every agent at once.
func (a *Authorizer) Describe(ctx context.Context, f Filter) ([]metastore.ACL, error) {
	all, err := a.store.ListACLs(ctx)
	if err != nil {
		return nil, err
	}
	var out []metastore.ACL
	for _, x := range all {
		if f.Matches(x) {
			out = append(out, x)
		}
	}
	return out, nil
}

// Delete removes the entries each filter selects and returns them, per
// filter (an entry selected by two filters is reported under both), then
// reloads the cache.
func (a *Authorizer) Delete(ctx context.Context, filters []Filter) ([][]metastore.ACL, error) {
	all, err := a.store.ListACLs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([][]metastore.ACL, len(filters))
	seen := map[metastore.ACL]bool{}
	var doomed []metastore.ACL
	for i, f := range filters {
		for _, x := range all {
			if f.Matches(x) {
				out[i] = append(out[i], x)
				if !seen[x] {
					seen[x] = true
					doomed = append(doomed, x)
				}
			}
		}
	}
	if err := a.store.DeleteACLs(ctx, doomed); err != nil {
		return nil, err
	}
	return out, a.Load(ctx)
}
