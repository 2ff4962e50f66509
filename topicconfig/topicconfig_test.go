package topicconfig

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
		msg         string
	}{
		{"retention.ms", "-1", true, ""},
		{"retention.ms", "0", true, ""},
		{"retention.ms", "-2", false, "value must be at least -1"},
		{"retention.ms", "1h", false, "not a valid long"},
		{"retention.ms", "99999999999999999999", false, "not a valid long"},
		{"retention.bytes", "1048576", true, ""},
		{"retention.bytes", "-7", false, "at least -1"},
		{"cleanup.policy", "compact,delete", true, ""},
		{"cleanup.policy", "delete, compact", true, ""},
		{"cleanup.policy", "remove", false, "invalid cleanup policy"},
		{"cleanup.policy", "", false, "invalid cleanup policy"},
		{"min.cleanable.dirty.ratio", "1.5", false, "between 0 and 1"},
		{"message.timestamp.type", "LogAppendTime", true, ""},
		{"bogus.config", "1", false, "Unknown topic config name: bogus.config"},
	} {
		err := Validate(tc.name, tc.value)
		if tc.ok != (err == nil) || err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("Validate(%s, %q) = %v, want ok=%v containing %q", tc.name, tc.value, err, tc.ok, tc.msg)
		}
	}
	if err := ValidateAll(map[string]string{"retention.ms": "1", "zzz": "1", "aaa": "2"}); err == nil || !strings.Contains(err.Error(), "aaa") {
		t.Fatalf("ValidateAll reports %v, want the first bad name in order (aaa)", err)
	}
	// Rules between configs, as Kafka's LogConfig has them.
	for _, bad := range []map[string]string{
		{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"},
		{"cleanup.policy": "compact", "remote.storage.enable": "true"},
	} {
		if err := ValidateAll(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateAll(%v) = %v, want INVALID_CONFIG", bad, err)
		}
	}
	for _, ok := range []map[string]string{
		{"min.compaction.lag.ms": "5", "max.compaction.lag.ms": "5"},
		{"cleanup.policy": "delete", "remote.storage.enable": "true"},
		{"cleanup.policy": "compact,delete", "delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0"},
	} {
		if err := ValidateAll(ok); err != nil {
			t.Errorf("ValidateAll(%v) = %v", ok, err)
		}
	}
}

func TestParseWithDefaults(t *testing.T) {
	k := Parse(nil, KafkaDefaults())
	if k.RetentionMs != 604800000 || k.RetentionBytes != -1 || !k.Delete || k.Compact || k.MaxMessageBytes != 1048588 {
		t.Fatalf("Kafka defaults: %+v", k)
	}
	d := Defaults{Retention: time.Minute, RetentionBytes: 1 << 20}
	if got := Parse(nil, d); got.RetentionMs != 60000 || got.RetentionBytes != 1<<20 {
		t.Fatalf("flag defaults: %+v", got)
	}
	if got := Parse(nil, Defaults{Retention: -1, RetentionBytes: -1}); got.RetentionMs != -1 {
		t.Fatalf("forever: %+v", got)
	}
	// A topic's own values win; one that does not parse falls back.
	got := Parse(map[string]string{"retention.ms": "5000", "retention.bytes": "junk", "cleanup.policy": "compact"}, d)
	if got.RetentionMs != 5000 || got.RetentionBytes != 1<<20 || got.Delete || !got.Compact {
		t.Fatalf("topic values: %+v", got)
	}
	if d.Default("cleanup.policy") != "delete" || d.Default("retention.ms") != "60000" {
		t.Fatalf("Default: %s %s", d.Default("cleanup.policy"), d.Default("retention.ms"))
	}
}

func TestDefsSortedAndComplete(t *testing.T) {
	all := All()
	if !slices.IsSortedFunc(all, func(a, b Def) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("defs not sorted by name: Lookup's binary search needs them sorted")
	}
	for _, d := range all {
		if got, ok := Lookup(d.Name); !ok || got.Name != d.Name {
			t.Errorf("Lookup(%s) = %+v, %v", d.Name, got, ok)
		}
		if err := Validate(d.Name, d.Default); err != nil {
			t.Errorf("default of %s does not validate: %v", d.Name, err)
		}
		if d.Synonym == "" {
			t.Errorf("%s has no broker synonym", d.Name)
		}
	}
}
