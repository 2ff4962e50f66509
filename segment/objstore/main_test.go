package objstore_test

import (
	"os"
	"testing"

	"github.com/siltdata/silt/tests/harness"
)

// TestMain starts MinIO through the harness when a test asks for it and
// checks for leaked goroutines once the harness has stopped it.
func TestMain(m *testing.M) { os.Exit(harness.RunCheckingLeaks(m)) }
