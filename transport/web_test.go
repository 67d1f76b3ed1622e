package transport

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/coder/websocket"

	"github.com/lobby/lobby/actors"
	"github.com/lobby/lobby/actors/questionnaire/store"
)

// webServer is a Server behind an httptest server, stopped when the test
// ends.
func webServer(t *testing.T) *httptest.Server {
	t.Helper()
	s, err := New(Config{Config: actors.Config{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return srv
}

func get(t *testing.T, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestWebServesPagesAndFiles(t *testing.T) {
	srv := webServer(t)
	tests := []struct {
		name, path  string
		status      int
		contentType string
		contains    string
	}{
		{"chat page", "/", 200, "text/html; charset=utf-8", `<script type="module" src="/chat.js"></script>`},
		{"dashboard page", "/dashboard", 200, "text/html; charset=utf-8", `src="/dashboard.js"`},
		{"status page", "/status", 200, "text/html; charset=utf-8", `src="/status.js"`},
		{"client", "/lobby.js", 200, "text/javascript; charset=utf-8", "export class Lobby"},
		{"page module", "/chat.js", 200, "text/javascript; charset=utf-8", `from "/lobby.js"`},
		{"stylesheet", "/style.css", 200, "text/css; charset=utf-8", ":root"},
		{"icon", "/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"vendored uPlot", "/vendor/uPlot.esm.js", 200, "text/javascript; charset=utf-8", "The MIT License"},
		{"vendored uPlot css", "/vendor/uPlot.min.css", 200, "text/css; charset=utf-8", ".uplot"},
		{"no such page", "/nothing", 404, "application/json", `"error":"not_found"`},
		{"no such vendored file", "/vendor/react.js", 404, "application/json", `"error":"not_found"`},
		{"no directory listing", "/vendor/", 404, "application/json", `"error":"not_found"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, "GET", srv.URL+tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body does not contain %q:\n%.300s", tt.contains, body)
			}
		})
	}
}

func TestWebSecurityHeaders(t *testing.T) {
	srv := webServer(t)
	for _, path := range []string{"/", "/dashboard", "/status", "/lobby.js", "/vendor/uPlot.esm.js"} {
		resp, _ := get(t, "GET", srv.URL+path, nil)
		want := map[string]string{
			"Content-Security-Policy": webCSP,
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "no-cache",
			// Public files: another site's page may import /lobby.js.
			"Access-Control-Allow-Origin": "*",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("GET %s: %s %q, want %q", path, k, got, v)
			}
		}
	}
	// The policy allows nothing inline and nothing from elsewhere.
	for _, part := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(webCSP, part) {
			t.Errorf("CSP %q lacks %q", webCSP, part)
		}
	}
	if strings.Contains(webCSP, "unsafe") || strings.Contains(webCSP, "*") {
		t.Errorf("CSP %q allows more than the server's own files", webCSP)
	}
}

func TestWebETagRevalidation(t *testing.T) {
	srv := webServer(t)
	first, body := get(t, "GET", srv.URL+"/lobby.js", nil)
	etag := first.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q, want a strong ETag", etag)
	}
	tests := []struct {
		name, method, ifNoneMatch string
		status                    int
		wantBody                  bool
	}{
		{"unchanged", "GET", etag, http.StatusNotModified, false},
		{"unchanged among others", "GET", `"other", ` + etag, http.StatusNotModified, false},
		{"any", "GET", "*", http.StatusNotModified, false},
		{"changed", "GET", `"other"`, http.StatusOK, true},
		{"weak form of the same", "GET", "W/" + etag, http.StatusNotModified, false},
		{"no validator", "GET", "", http.StatusOK, true},
		{"head", "HEAD", "", http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.ifNoneMatch != "" {
				h.Set("If-None-Match", tt.ifNoneMatch)
			}
			resp, got := get(t, tt.method, srv.URL+"/lobby.js", h)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if resp.Header.Get("ETag") != etag {
				t.Errorf("ETag %q, want %q", resp.Header.Get("ETag"), etag)
			}
			if tt.wantBody && got != body || !tt.wantBody && got != "" {
				t.Errorf("body of %d bytes, want the file: %v", len(got), tt.wantBody)
			}
		})
	}
	other, _ := get(t, "GET", srv.URL+"/style.css", nil)
	if other.Header.Get("ETag") == etag {
		t.Error("two different files have the same ETag")
	}
}

func TestLoadWebAssets(t *testing.T) {
	pages := fstest.MapFS{
		"web/index.html":     {Data: []byte("<p>chat")},
		"web/dashboard.html": {Data: []byte("<p>dashboard")},
		"web/status.html":    {Data: []byte("<p>status")},
	}
	with := func(name, data string) fstest.MapFS {
		fsys := fstest.MapFS{name: {Data: []byte(data)}}
		for k, v := range pages {
			fsys[k] = v
		}
		return fsys
	}
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		wantErr string
	}{
		{"pages and a script", with("web/a.js", "x"), ""},
		{"a file of an unknown type", with("web/tool.exe", "MZ"), `no content type for extension ".exe"`},
		{"a page without its file", fstest.MapFS{"web/index.html": {Data: []byte("x")}}, "page /dashboard has no file dashboard.html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assets, err := loadWebAssets(tt.fsys, "web")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if assets["/"] != assets["/index.html"] || assets["/a.js"] == nil {
				t.Fatalf("assets %v: want / to be index.html and /a.js served", assets)
			}
		})
	}
	// The ETag follows the content, not the name.
	a, err := loadWebAssets(with("web/a.js", "same"), "web")
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadWebAssets(with("web/b.js", "same"), "web")
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadWebAssets(with("web/a.js", "changed"), "web")
	if err != nil {
		t.Fatal(err)
	}
	if a["/a.js"].etag != b["/b.js"].etag || a["/a.js"].etag == c["/a.js"].etag {
		t.Errorf("ETags %s, %s, %s: want equal for equal content, different for changed content",
			a["/a.js"].etag, b["/b.js"].etag, c["/a.js"].etag)
	}
}

// TestUpgradeToPagePathJoinsRoom: /dashboard and /status are pages for a
// plain GET, and rooms for a WebSocket (the seed's GET /{room} shape).
func TestUpgradeToPagePathJoinsRoom(t *testing.T) {
	srv := webServer(t)
	for _, room := range []string{"dashboard", "status", "lobby.js"} {
		t.Run(room, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/" + room
			ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{SubprotocolJSON}})
			if err != nil {
				t.Fatalf("dial %s: %v", url, err)
			}
			defer ws.CloseNow()
			_, data, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var welcome struct{ Type, Room string }
			if err := json.Unmarshal(data, &welcome); err != nil || welcome.Type != "welcome" || welcome.Room != room {
				t.Fatalf("first frame %s, want a welcome to room %q", data, room)
			}
			ws.Close(websocket.StatusNormalClosure, "")
		})
	}
	resp, body := get(t, "GET", srv.URL+"/dashboard", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<title>Lobby · dashboard</title>") {
		t.Fatalf("plain GET /dashboard: %d %.200s, want the page", resp.StatusCode, body)
	}
}

// questionnaireServer is webServer with a questionnaire store, so that the
// questionnaire's routes and pages are served.
func questionnaireServer(t *testing.T) *httptest.Server {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Config: actors.Config{Logger: slog.New(slog.DiscardHandler), Questionnaires: st}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
		if err := st.Close(); err != nil {
			t.Errorf("close the store: %v", err)
		}
	})
	return srv
}

// TestWebQuestionnairePages: /q/new, /q/{id} and /q/{id}/present are pages
// for any id (the page itself says when there is no such questionnaire),
// with the headers of every page; other paths under /q/ are JSON 404s; and
// without a questionnaire store there are no such pages.
func TestWebQuestionnairePages(t *testing.T) {
	srv := questionnaireServer(t)
	const id = "abcdefghijklmnop"
	tests := []struct {
		name, path string
		status     int
		contains   string
	}{
		{"new", "/q/new", 200, `<script type="module" src="/q-new.js"></script>`},
		{"participant", "/q/" + id, 200, `<script type="module" src="/q-participant.js"></script>`},
		{"presenter", "/q/" + id + "/present", 200, `<script type="module" src="/q-presenter.js"></script>`},
		{"participant of an id that is not one", "/q/not-an-id", 200, `src="/q-participant.js"`},
		{"shared module", "/questionnaire.js", 200, "export class QSocket"},
		{"vendored QR code", "/vendor/qrcode.mjs", 200, "The MIT License"},
		{"too deep", "/q/a/b/c", 404, `"error":"not_found"`},
		{"another page of an id", "/q/" + id + "/results", 404, `"error":"not_found"`},
		{"no id", "/q/", 404, `"error":"not_found"`},
		{"bare q", "/q", 404, `"error":"not_found"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, "GET", srv.URL+tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %.200s", resp.StatusCode, tt.status, body)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body does not contain %q:\n%.300s", tt.contains, body)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if tt.status != 200 {
				if got := resp.Header.Get("Content-Type"); got != "application/json" {
					t.Errorf("Content-Type %q, want application/json", got)
				}
				return
			}
			want := map[string]string{
				"Content-Type":            "text/html; charset=utf-8",
				"Content-Security-Policy": webCSP,
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-cache",
			}
			if strings.HasSuffix(tt.path, "js") {
				want["Content-Type"] = "text/javascript; charset=utf-8"
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s %q, want %q", k, got, v)
				}
			}
			if etag := resp.Header.Get("ETag"); !strings.HasPrefix(etag, `"`) {
				t.Errorf("ETag %q, want a strong ETag", etag)
			}
		})
	}

	// Every id gets the same page: one ETag, and a 304 for it.
	a, _ := get(t, "GET", srv.URL+"/q/"+id, nil)
	b, body := get(t, "GET", srv.URL+"/q/bbbbbbbbbbbbbbbb", http.Header{"If-None-Match": {a.Header.Get("ETag")}})
	if b.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("a participant page of another id with the first's ETag: %d %q, want 304", b.StatusCode, body)
	}

	// The page of an unknown id is served, and its API call says 404.
	resp, body := get(t, "GET", srv.URL+"/questionnaires/"+id, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error":"unknown_questionnaire"`) {
		t.Errorf("GET /questionnaires/%s: %d %s, want 404 unknown_questionnaire", id, resp.StatusCode, body)
	}

	// Without a questionnaire store, no questionnaire pages.
	plain := webServer(t)
	for _, path := range []string{"/q/new", "/q/" + id, "/q/" + id + "/present"} {
		resp, body := get(t, "GET", plain.URL+path, nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error":"not_found"`) {
			t.Errorf("GET %s without a store: %d %.100s, want a JSON 404", path, resp.StatusCode, body)
		}
	}
}
