package metastore

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTopicName(t *testing.T) {
	valid := []string{"a", "orders", "Orders.v2", "a_b-c.d", strings.Repeat("x", 249), "...", "__consumer_offsets"}
	for _, name := range valid {
		if err := ValidateTopicName(name); err != nil {
			t.Errorf("ValidateTopicName(%q) = %v, want nil", name, err)
		}
	}
	invalid := []string{"", ".", "..", strings.Repeat("x", 250), "a b", "a/b", "é", "a\x00", "topic!"}
	for _, name := range invalid {
		if err := ValidateTopicName(name); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ValidateTopicName(%q) = %v, want ErrInvalidTopic", name, err)
		}
	}
}

func TestNewTopicID(t *testing.T) {
	a, b := NewTopicID(), NewTopicID()
	if a.IsZero() || a == b {
		t.Fatalf("NewTopicID gave %s and %s", a, b)
	}
	if v := a[6] >> 4; v != 4 {
		t.Fatalf("version nibble %d, want 4", v)
	}
}
