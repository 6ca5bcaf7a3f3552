package tracker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

func (t *Tracker) newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /v1/channels", t.handleRegister)
	mux.HandleFunc("GET /v1/channels", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, t.Channels())
	})
	mux.HandleFunc("GET /v1/channels/{name}", func(w http.ResponseWriter, r *http.Request) {
		info, err := t.Channel(r.PathValue("name"))
		reply(w, info, err)
	})
	mux.HandleFunc("POST /v1/channels/{name}/join", func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		// A peer's ISP comes from the prefix table, not from its claim.
		req.ISP = t.cfg.ISPs.ispOf(req.Addr, r.RemoteAddr)
		resp, err := t.Join(r.PathValue("name"), req)
		reply(w, resp, err)
	})
	mux.HandleFunc("POST /v1/channels/{name}/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var req HeartbeatRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		resp, err := t.Heartbeat(r.PathValue("name"), req)
		reply(w, resp, err)
	})
	mux.HandleFunc("POST /v1/channels/{name}/leave", func(w http.ResponseWriter, r *http.Request) {
		var req LeaveRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		if err := t.Leave(r.PathValue("name"), req); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/channels/{name}/parent-lost", func(w http.ResponseWriter, r *http.Request) {
		var req ParentLostRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		resp, err := t.ParentLost(r.PathValue("name"), req)
		reply(w, resp, err)
	})
	mux.HandleFunc("POST /v1/channels/{name}/origin-heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var req OriginHeartbeatRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		resp, err := t.OriginHeartbeat(r.PathValue("name"), req)
		reply(w, resp, err)
	})
	mux.HandleFunc("GET /v1/channels/{name}/tree", func(w http.ResponseWriter, r *http.Request) {
		view, err := t.Tree(r.PathValue("name"))
		reply(w, view, err)
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				t.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, fmt.Errorf("internal error"))
			}
		}()
		if t.routeProbe(w, r) { // the upload probe bounds its own body (probe.go)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		mux.ServeHTTP(&jsonErrors{ResponseWriter: w, req: r}, r)
	})
}

func (t *Tracker) handleRegister(w http.ResponseWriter, r *http.Request) {
	var req RegisterRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	created, err := t.Register(req)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, req.Channel)
}

// decode reads one JSON value from the (size-limited) body into v. Unknown
// fields are allowed; anything else that is not exactly one JSON value of
// the right shape is an error.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON value")
			if terr != nil {
				err = terr
			}
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return fmt.Errorf("%w: the body exceeds %d bytes", ErrBodyTooLarge, MaxBodyBytes)
	case errors.Is(err, io.EOF):
		return badRequest("empty body; send a JSON object")
	default:
		return badRequest("malformed JSON body: %v", err)
	}
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	status, code := errorCode(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = "internal error; see the tracker's log"
	}
	writeJSON(w, status, ErrorBody{Error: code, Message: msg})
}

// jsonErrors turns the plain-text errors of http.ServeMux (404 for an
// unknown path, 405 for a wrong method) into JSON error bodies.
type jsonErrors struct {
	http.ResponseWriter
	req     *http.Request
	swallow bool // the mux's own body is being dropped
}

func (w *jsonErrors) WriteHeader(status int) {
	h := w.Header()
	if status < 400 || strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.swallow = true
	body := ErrorBody{Error: CodeNotFound, Message: fmt.Sprintf("no endpoint %s %s", w.req.Method, truncate(w.req.URL.Path))}
	switch status {
	case http.StatusNotFound:
	case http.StatusMethodNotAllowed:
		body = ErrorBody{Error: CodeMethodNotAllowed,
			Message: fmt.Sprintf("method %s is not allowed here; allowed: %s", truncate(w.req.Method), h.Get("Allow"))}
	default:
		body = ErrorBody{Error: strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_"), Message: http.StatusText(status)}
	}
	b, _ := json.Marshal(body)
	h.Del("Content-Length")
	h.Del("X-Content-Type-Options")
	h.Set("Content-Type", "application/json")
	w.ResponseWriter.WriteHeader(status)
	w.ResponseWriter.Write(append(b, '\n'))
}

func (w *jsonErrors) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *jsonErrors) Unwrap() http.ResponseWriter { return w.ResponseWriter }
