package transport

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzCheckStatistics: checkStatistics, which decodes a dashboard body one
// record at a time, agrees with decoding it whole, for every body up to
// the record cap, and never panics.
func FuzzCheckStatistics(f *testing.F) {
	for _, s := range []string{`[]`, `[{}]`, `[{"product_line":"A","total_amount":1.5}]`, `[1]`, `[{"total_trx":"x"}]`,
		`[{},{}]`, `{"a":1}`, `[[]]`, `[null]`, `[{"product_line_id":1e400}]`, "[" + strings.Repeat("{},", 20) + "{}]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		body := []byte(strings.TrimSpace(s))
		if len(body) == 0 || !json.Valid(body) {
			return // readJSONBody refuses those first
		}
		var whole []statisticRecord
		wantOK := body[0] == '[' && json.Unmarshal(body, &whole) == nil && len(whole) <= maxStatisticRecords
		if got := checkStatistics(body); (got == nil) != wantOK {
			t.Fatalf("checkStatistics(%q) = %v, whole decode ok=%v", body, got, wantOK)
		}
	})
}
