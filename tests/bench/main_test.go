package bench

import (
	"os"
	"testing"

	"github.com/siltdata/silt/tests/harness"
)

// TestMain stops the harness's servers after the report and then checks
// that every client, process watcher and sampler the report started is
// gone.
func TestMain(m *testing.M) { os.Exit(harness.RunCheckingLeaks(m)) }
