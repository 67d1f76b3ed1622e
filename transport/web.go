package transport

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
)

// webFiles are the web UI's pages, scripts, styles and vendored libraries,
// served as they are: no build step, nothing fetched from elsewhere.
//
//go:embed web
var webFiles embed.FS

// webPages maps a page's path to the file that serves it. Every other file
// under web/ is served at its own path (/lobby.js, /vendor/uPlot.esm.js).
var webPages = map[string]string{
	"/":          "index.html",
	"/dashboard": "dashboard.html",
	"/status":    "status.html",
}

// webTypes is the Content-Type of each file extension the web UI uses. A
// file of any other extension under web/ fails loadWebAssets, so that adding
// one is a decision, not a browser's guess (every answer says nosniff).
var webTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
}

// webCSP is every web answer's Content-Security-Policy: scripts, styles,
// images and connections (WebSocket included) from the server's own origin
// only, no inline script or style element, no framing by other sites.
// Style properties set from a script (uPlot sizes its canvas so) are CSSOM,
// which the policy allows.
const webCSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// webAsset is one file of the web UI, ready to serve.
type webAsset struct {
	name        string
	body        []byte
	contentType string
	// etag is a strong ETag derived from the content, so a browser
	// revalidates with If-None-Match and gets 304 until the file changes.
	etag string
}

// webAssets are the web UI's files by URL path. Static after construction.
type webAssets map[string]*webAsset

// loadWebAssets reads every file under root in fsys and computes its ETag,
// once, at start.
func loadWebAssets(fsys fs.FS, root string) (webAssets, error) {
	assets := make(webAssets)
	err := fs.WalkDir(fsys, root, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if path.Ext(name) == ".md" {
			return nil // the files' documentation (web/README.md), not served
		}
		ct, ok := webTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("web asset %s: no content type for extension %q", name, path.Ext(name))
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		rel := strings.TrimPrefix(name, root)
		assets[rel] = &webAsset{
			name:        path.Base(name),
			body:        body,
			contentType: ct,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load web assets: %w", err)
	}
	// In order, so that the error names the same page every time.
	for _, page := range slices.Sorted(maps.Keys(webPages)) {
		file := webPages[page]
		a, ok := assets["/"+file]
		if !ok {
			return nil, fmt.Errorf("load web assets: page %s has no file %s", page, file)
		}
		assets[page] = a
	}
	return assets, nil
}

// serve answers a GET or HEAD for the asset at urlPath, and reports
// whether there is one.
func (a webAssets) serve(w http.ResponseWriter, r *http.Request, urlPath string) bool {
	asset, ok := a[urlPath]
	if !ok {
		return false
	}
	h := w.Header()
	h.Set("Content-Type", asset.contentType)
	h.Set("ETag", asset.etag)
	// no-cache: keep it, but ask (If-None-Match) before each use, so a new
	// server's files are seen at once and an unchanged file costs a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", webCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// The files are public and carry no credentials: a page elsewhere may
	// import /lobby.js as a module, which browsers fetch with CORS.
	h.Set("Access-Control-Allow-Origin", "*")
	// ServeContent answers If-None-Match with 304, HEAD without a body and
	// Range requests. A zero time sends no Last-Modified: the ETag is the
	// validator.
	http.ServeContent(w, r, asset.name, time.Time{}, bytes.NewReader(asset.body))
	return true
}

// serveWeb is GET / and GET /vendor/...: the web UI's files that no room
// name can shadow.
func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request) {
	if !s.web.serve(w, r, r.URL.Path) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such route")
	}
}

// servePage returns the handler of a page whose path holds a parameter:
// the questionnaire's pages GET /q/new, /q/{id} and /q/{id}/present (their
// routes are in routes.go). Every id gets the same file: the page reads
// the id from its own URL, asks GET /questionnaires/{id}, and itself says
// "no such questionnaire" when the answer is 404. file is the page's file
// under web/, such as "/q-participant.html".
func (s *Server) servePage(file string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.web.serve(w, r, file) {
			writeError(w, http.StatusNotFound, codeNotFound, "no such route")
		}
	}
}

// serveRoomOrPage is GET /{room}. With an Upgrade header it joins the room,
// the seed's route shape, whatever the name: an upgrade to /dashboard
// joins room "dashboard". A plain GET is the web UI page or file of that
// name (/dashboard, /status, /lobby.js, /style.css), or 404.
func (s *Server) serveRoomOrPage(w http.ResponseWriter, r *http.Request) {
	if isUpgrade(r) {
		s.serveRoom(w, r)
		return
	}
	s.serveWeb(w, r)
}
