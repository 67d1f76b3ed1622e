package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/lobby/lobby/transport"
)

var update = flag.Bool("update", false, "rewrite README.md's settings table from the flags")

// notConfig are the flags bound to no field of transport.Config: their
// defaults live in newFlagSet (or addClusterFlags) alone.
var notConfig = map[string]bool{
	"addr": true, "insecure-publish": true, "allowed-origins": true, "allowed-hosts": true, "publish-only-rooms": true,
	"pprof": true, "data-dir": true, "store-max-bytes": true, "log-level": true, "log-format": true, "rate-bytes": true,
	"nats-url": true, "nats-creds": true, "nats-token": true, "nats-user": true,
	"nats-password": true, "nats-stream": true, "nats-replicas": true, "max-stream-lag": true,
	"durable": true, "peers": true, "peer-addr": true, "durable-min-free": true, "latest-rooms": true,
	"gc-min-heap": true,
}

// configFields maps the address of every field of cfg (embedded structs
// walked into) to its path, such as "Config.Heartbeat".
func configFields(v reflect.Value, prefix string, into map[uintptr]string) {
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		if sf.Anonymous && f.Kind() == reflect.Struct {
			configFields(f, prefix+sf.Name+".", into)
			continue
		}
		into[f.Addr().Pointer()] = prefix + sf.Name
	}
}

// TestFlagDefaults: every flag bound to a field of transport.Config
// defaults to that field of transport.DefaultConfig, so that a flag left
// alone and a zero field mean the same; every other flag is listed in
// notConfig on purpose.
func TestFlagDefaults(t *testing.T) {
	o := &options{}
	fs := newFlagSet(o, io.Discard)
	fields := map[uintptr]string{}
	configFields(reflect.ValueOf(&o.server).Elem(), "", fields)
	def := reflect.ValueOf(transport.DefaultConfig())

	fs.VisitAll(func(f *flag.Flag) {
		path, bound := fields[reflect.ValueOf(f.Value).Pointer()]
		switch {
		case bound && notConfig[f.Name]:
			t.Errorf("--%s is bound to Config.%s but listed in notConfig", f.Name, path)
		case !bound && !notConfig[f.Name]:
			t.Errorf("--%s is bound to no field of transport.Config: bind it to one, or list it in notConfig", f.Name)
		case bound:
			want := def.FieldByName(path[strings.LastIndex(path, ".")+1:])
			if got := fmt.Sprint(want.Interface()); got != f.DefValue {
				t.Errorf("--%s defaults to %s, transport.DefaultConfig().%s is %s", f.Name, f.DefValue, path, got)
			}
		}
	})
	// --rate-bytes is a whole number standing for a float64 field.
	if got, want := fs.Lookup("rate-bytes").DefValue, strconv.FormatInt(int64(def.FieldByName("RateBytes").Float()), 10); got != want {
		t.Errorf("--rate-bytes defaults to %s, transport.DefaultConfig().RateBytes is %s", got, want)
	}
}

// settingsTable is README.md's table of the flags, made from the FlagSet.
func settingsTable(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | what |\n|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	fs.VisitAll(func(f *flag.Flag) {
		def := "`" + f.DefValue + "`"
		if f.DefValue == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", f.Name, envName(f.Name), cell(def), cell(f.Usage))
	})
	return b.String()
}

const (
	tableBegin = "<!-- settings table: made by `go test ./cmd/lobby -run TestSettingsTable -update`; do not edit -->\n"
	tableEnd   = "<!-- end of settings table -->\n"
)

// TestSettingsTable: README.md's settings table lists every flag with its
// default and usage, as --help does. Run with -update to rewrite it.
func TestSettingsTable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := settingsTable(newFlagSet(&options{}, io.Discard))
	begin, end := bytes.Index(readme, []byte(tableBegin)), bytes.Index(readme, []byte(tableEnd))
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no settings table between %q and %q", tableBegin, tableEnd)
	}
	got := string(readme[begin+len(tableBegin) : end])
	if got == want {
		return
	}
	if !*update {
		t.Fatalf("README.md's settings table is out of date; run go test ./cmd/lobby -run TestSettingsTable -update\n got:\n%s\nwant:\n%s", got, want)
	}
	out := append(append(append([]byte{}, readme[:begin+len(tableBegin)]...), want...), readme[end:]...)
	if err := os.WriteFile("README.md", out, 0o644); err != nil {
		t.Fatal(err)
	}
}
