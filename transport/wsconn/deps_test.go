package wsconn

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports: wsconn imports the standard library only (see doc.go).
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("wsconn imports %s; it may import the standard library only", imp)
		}
	}
}
