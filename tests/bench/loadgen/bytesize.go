package loadgen

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseBytes reads a size such as 512KiB, 8MiB, 2GB or 1000 (bytes).
// Binary suffixes (KiB, MiB, GiB) are powers of 1024, decimal ones (KB,
// MB, GB) powers of 1000, as storage vendors and Kafka tools use them.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional KiB/MiB/GiB/KB/MB/GB suffix", s)
	}
	return int64(v * float64(mult)), nil
}
