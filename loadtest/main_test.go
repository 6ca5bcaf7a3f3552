package loadtest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The matrix's process waiters, pair goroutines and HTTP connections end
// with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
