package debugserve

import (
	"errors"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ServeHTTP answers the debuginfod API:
//
//	GET|HEAD /buildid/ID/debuginfo   the debug file with build-id ID
//	GET|HEAD /buildid/ID/executable  the (stripped) ELF file with build-id ID
//	GET|HEAD /buildid/ID/source/...  404: debug images hold no sources
//	GET /metrics                     counters in the Prometheus text format
//
// A malformed ID gets 400 without a look at the index; an unknown one, or
// one whose images are all gone, 404; a registry that fails while the file
// is read 502 (elfutils' client remembers both as a miss for a while). Responses carry X-Debuginfod-Size (the file's size),
// X-Debuginfod-File (its path in the image) and X-Debuginfod-Archive (the
// debug image it came from).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" && r.Method == http.MethodGet {
		s.m.write(w)
		return
	}
	kind, code := "other", 0
	defer func() { s.m.request(kind, code) }()
	fail := func(c int, msg string) {
		code = c
		http.Error(w, msg, c)
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "buildid" {
		fail(http.StatusNotFound, "not found: debuginfod serves /buildid/ID/debuginfo and /buildid/ID/executable")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		fail(http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	id, err := ParseBuildID(parts[1])
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case parts[2] == "source":
		kind = "source"
		fail(http.StatusNotFound, "no sources: debug images hold debug files and executables")
		return
	case len(parts) == 3 && (parts[2] == kindDebuginfo || parts[2] == kindExecutable):
		kind = parts[2]
	default:
		fail(http.StatusNotFound, "not found")
		return
	}
	locs, err := s.locate(r.Context(), id, kind)
	if len(locs) == 0 {
		if err != nil {
			s.log.Error("indexing executables", "buildid", id, "err", err)
			fail(http.StatusBadGateway, "reading the images that hold "+id+": "+err.Error())
			return
		}
		fail(http.StatusNotFound, "no "+kind+" with build-id "+id)
		return
	}
	var errs []error
	for _, loc := range locs {
		ok, err := s.serve(w, r, loc)
		if ok {
			code = http.StatusOK
			return
		}
		if r.Context().Err() != nil {
			code = 499 // the client went away
			return
		}
		s.log.Warn("fetching", "buildid", id, "kind", kind, "image", loc.Image, "err", err)
		errs = append(errs, err)
	}
	if !slices.ContainsFunc(errs, func(err error) bool { return !isGone(err) }) {
		// Every image that held it is gone (deleted, blobs collected).
		fail(http.StatusNotFound, "no "+kind+" with build-id "+id+" any more: "+errors.Join(errs...).Error())
		return
	}
	fail(http.StatusBadGateway, "reading "+kind+" "+id+": "+errors.Join(errs...).Error())
}

// isGone reports an error saying that a blob or a file is not there (as
// opposed to a registry failing to answer).
func isGone(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusNotFound
	}
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotInLayer)
}

// serve answers with the file at loc; false, without a byte written, when it
// cannot be had.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, loc location) (bool, error) {
	rec, err := s.idx.image(loc.Image)
	if err != nil {
		return false, err
	}
	h := w.Header()
	setHeaders := func() {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("X-Debuginfod-Size", strconv.FormatInt(loc.Size, 10))
		h.Set("X-Debuginfod-File", "/"+loc.Path)
		h.Set("X-Debuginfod-Archive", rec.Name)
		h.Set("Cache-Control", "public, max-age=31536000, immutable") // a build-id's file never changes
	}
	if r.Method == http.MethodHead {
		setHeaders()
		h.Set("Content-Length", strconv.FormatInt(loc.Size, 10))
		w.WriteHeader(http.StatusOK)
		return true, nil
	}
	f, remove, err := s.fetch(r.Context(), loc)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if remove != nil {
		defer remove()
	}
	setHeaders()
	s.m.bytes.Add(loc.Size)
	http.ServeContent(w, r, "", time.Time{}, f)
	return true, nil
}
