package transport

import (
	"go/build"
	"strings"
	"testing"
)

const module = "github.com/lobby/lobby/"

// TestImportRules checks the import rules of doc.go: transport imports of
// the project only actors, actors/store, messages and its own wsconn; no
// package of actors/ or messages/ imports transport.
func TestImportRules(t *testing.T) {
	allowed := map[string]bool{
		module + "actors": true, module + "actors/store": true,
		module + "messages": true, module + "transport/wsconn": true,
	}
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, module) && !allowed[imp] {
			t.Errorf("transport imports %s; doc.go allows actors, actors/store, messages and transport/wsconn", imp)
		}
	}
	for _, dir := range []string{"../actors", "../actors/store", "../actors/cluster", "../messages"} {
		pkg, err := build.ImportDir(dir, build.ImportComment)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range append(pkg.Imports, pkg.TestImports...) {
			if strings.HasPrefix(imp, module+"transport") {
				t.Errorf("%s imports %s; only cmd/ and test/ may", dir, imp)
			}
		}
	}
}
