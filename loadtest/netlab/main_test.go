package netlab_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every socket reader, STUN server and namespace thread ends with its
// test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
