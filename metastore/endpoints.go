package metastore

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// FormatEndpoints encodes listeners as the backends store them:
// "NAME://host:port,..." in order ("" for none).
func FormatEndpoints(es []Endpoint) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Name + "://" + net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
	}
	return strings.Join(parts, ",")
}

// ParseEndpoints decodes FormatEndpoints' encoding.
func ParseEndpoints(s string) ([]Endpoint, error) {
	if s == "" {
		return nil, nil
	}
	var out []Endpoint
	for part := range strings.SplitSeq(s, ",") {
		name, addr, ok := strings.Cut(part, "://")
		if !ok {
			return nil, fmt.Errorf("listener %q: want NAME://host:port", part)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", part, err)
		}
		p, err := strconv.ParseInt(port, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("listener %q: port: %w", part, err)
		}
		out = append(out, Endpoint{Name: name, Host: host, Port: int32(p)})
	}
	return out, nil
}
