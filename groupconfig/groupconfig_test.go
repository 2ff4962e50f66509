package groupconfig

import (
	"errors"
	"testing"
	"time"
)

func TestCheckMatchesKafka(t *testing.T) {
	d := KafkaDefaults()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, value string
		ok          bool
	}{
		{ShareRecordLockDurationMs, "14999", false}, {ShareRecordLockDurationMs, "15000", true}, {ShareRecordLockDurationMs, "60001", false},
		{ShareDeliveryCountLimit, "1", false}, {ShareDeliveryCountLimit, "2", true}, {ShareDeliveryCountLimit, "10", true}, {ShareDeliveryCountLimit, "11", false},
		{ConsumerSessionTimeoutMs, "44999", false}, {ConsumerSessionTimeoutMs, "45000", true}, {ConsumerSessionTimeoutMs, "60001", false},
		{ConsumerHeartbeatIntervalMs, "4999", false}, {ConsumerHeartbeatIntervalMs, "15000", true},
		{SharePartitionMaxRecordLocks, "99", false}, {SharePartitionMaxRecordLocks, "4000", true}, {SharePartitionMaxRecordLocks, "4001", false},
		{ShareAutoOffsetReset, "earliest", true}, {ShareAutoOffsetReset, "EARLIEST", false}, {ShareAutoOffsetReset, "by_duration:PT1H", true},
		{ShareAutoOffsetReset, "by_duration:P1DT2H3M4.5S", true}, {ShareAutoOffsetReset, "by_duration:P", false}, {ShareAutoOffsetReset, "by_duration:1h", false},
		{ShareIsolationLevel, "read_committed", true}, {ShareIsolationLevel, "x", false},
		{ShareSessionTimeoutMs, "abc", false}, {"unknown.key", "1", false},
	} {
		err := Check(d, c.name, &c.value)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s=%s: %v, want ok=%v", c.name, c.value, err, c.ok)
		}
	}
	if err := Check(d, ShareAutoOffsetReset, nil); err != nil {
		t.Errorf("deleting a known config: %v", err)
	}
}

func TestEffective(t *testing.T) {
	d := KafkaDefaults()
	g := Effective(d, map[string]string{ShareAutoOffsetReset: "by_duration:P1DT1M", ShareDeliveryCountLimit: "3", ConsumerSessionTimeoutMs: "1"})
	if g.ShareAutoOffsetReset.Kind != ResetByDuration || g.ShareAutoOffsetReset.Duration != 24*time.Hour+time.Minute {
		t.Fatalf("reset %+v", g.ShareAutoOffsetReset)
	}
	if g.ShareDeliveryCountLimit != 3 || g.ConsumerSessionTimeout != d.ConsumerSessionTimeout || g.ShareRecordLockDuration != 30*time.Second {
		t.Fatalf("effective %+v", g)
	}
}
