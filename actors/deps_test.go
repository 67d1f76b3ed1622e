package actors

import (
	"os/exec"
	"path"
	"strings"
	"testing"
)

// depRules are the import rules of Lobby's packages, as Go's own
// go/build/deps_test.go holds the standard library's: for each package
// (a path under the module; "x/*" is every package below x), the Lobby
// packages it may import. A package with no rule fails the test, so a new
// package comes with its rule.
var depRules = map[string][]string{
	"messages":                   {},
	"actors/internal/*":          {},
	"actors/socket":              {"messages"},
	"actors/socket/sockettest":   {"actors/socket", "messages"},
	"actors/broker":              {"messages"},
	"actors/echo":                {"actors/socket", "messages"},
	"actors/chat":                {"actors/socket", "actors/broker", "messages"},
	"actors/questionnaire":       {"actors/socket", "actors/questionnaire/store", "messages"},
	"actors/questionnaire/store": {},
	"actors/cluster":             {"actors/broker", "messages"},
	// An extension imports the toolkit and the seams it extends.
	"actors/examples":   {},
	"actors/examples/*": {"actors/socket", "actors/chat", "messages"},
	// The facade may import every feature but the cluster broker, which
	// the binary gives it as a Broker.
	"actors": {"actors/socket", "actors/echo", "actors/chat", "actors/broker", "actors/questionnaire",
		"actors/questionnaire/store", "actors/internal/*", "messages"},
	"transport":        {"actors", "actors/socket", "actors/questionnaire/store", "messages", "transport/wsconn"},
	"transport/wsconn": {},
	"cmd/*":            {"*"},
	"test":             {"*"},
	"test/*":           {"*"},
}

// forbidden are the outside packages only some of Lobby's may import:
// actors never touch the network, and only the cluster broker knows NATS.
var forbidden = []struct {
	prefix  string
	allowed []string
}{
	{"net/http", []string{"transport", "transport/*", "cmd/*", "test", "test/*"}},
	{"github.com/coder/websocket", []string{"transport", "transport/*", "cmd/*", "test", "test/*"}},
	{"github.com/nats-io/", []string{"actors/cluster", "cmd/*", "test", "test/*"}},
}

const module = "github.com/lobby/lobby"

func ruleFor(rules map[string][]string, pkg string) ([]string, bool) {
	if r, ok := rules[pkg]; ok {
		return r, true
	}
	for dir := pkg; dir != "."; {
		dir = path.Dir(dir)
		if r, ok := rules[dir+"/*"]; ok {
			return r, true
		}
	}
	return nil, false
}

func matches(patterns []string, pkg string) bool {
	for _, p := range patterns {
		if p == "*" || p == pkg || strings.HasSuffix(p, "/*") && strings.HasPrefix(pkg, strings.TrimSuffix(p, "*")) {
			return true
		}
	}
	return false
}

// TestImportRules holds every package of the module (its non-test files)
// to depRules and forbidden.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		if pkg == "" {
			continue
		}
		seen++
		allowed, ok := ruleFor(depRules, pkg)
		if !ok {
			t.Errorf("package %s has no import rule in depRules", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if ours, isOurs := strings.CutPrefix(imp, module+"/"); isOurs {
				if !matches(allowed, ours) {
					t.Errorf("%s imports %s, which its rule does not allow", pkg, ours)
				}
				continue
			}
			for _, f := range forbidden {
				if strings.HasPrefix(imp, f.prefix) && !matches(f.allowed, pkg) {
					t.Errorf("%s imports %s, which only %v may", pkg, imp, f.allowed)
				}
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list listed %d packages; the rules were not checked", seen)
	}
}
