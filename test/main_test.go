package test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when any goroutine outlives the tests: every
// server a test starts must stop everything it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
