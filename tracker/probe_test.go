package tracker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A real probe over loopback: the tracker times the body and answers a
// rate consistent with the bytes and time it reports.
func TestProbeUpload(t *testing.T) {
	env := newEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := env.cl.ProbeUpload(ctx, 200*time.Millisecond, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes < MinProbeBytes || res.Bytes > 4<<20 {
		t.Fatalf("probe sent %d bytes, want %d..%d", res.Bytes, MinProbeBytes, 4<<20)
	}
	want := float64(res.Bytes) * 8 / (res.DurationMS / 1000)
	if res.UploadBPS <= 0 || float64(res.UploadBPS) < 0.99*want || float64(res.UploadBPS) > 1.01*want {
		t.Fatalf("rate %d bit/s for %d bytes in %.3f ms (want ≈ %.0f)", res.UploadBPS, res.Bytes, res.DurationMS, want)
	}
	t.Logf("loopback probe: %d bytes in %.2f ms = %.1f Mbit/s", res.Bytes, res.DurationMS, float64(res.UploadBPS)/1e6)
}

func TestProbeRejects(t *testing.T) {
	env := newEnv(t, 1)
	h := env.tr.Handler()
	for _, tt := range []struct {
		name   string
		method string
		body   io.Reader
		length int64 // Content-Length; -1 unknown
		status int
		code   string
	}{
		{"get", http.MethodGet, nil, 0, 405, CodeMethodNotAllowed},
		{"too small", http.MethodPost, bytes.NewReader(make([]byte, 1000)), 1000, 400, CodeBadRequest},
		{"declared too large", http.MethodPost, strings.NewReader("x"), MaxProbeBytes + 1, 413, CodeBodyTooLarge},
		{"too large", http.MethodPost, io.LimitReader(zeros{}, MaxProbeBytes+1), -1, 413, CodeBodyTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, ProbePath, tt.body)
			r.ContentLength = tt.length
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), `"error":"`+tt.code+`"`) {
				t.Fatalf("status %d body %s, want %d %s", w.Code, w.Body, tt.status, tt.code)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A body that stalls is cut off with 408 probe_timeout and frees its slot.
func TestProbeSlowBody(t *testing.T) {
	probeTimeout = 200 * time.Millisecond
	t.Cleanup(func() { probeTimeout = ProbeTimeout })
	env := newEnv(t, 1)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go func() {
		pw.Write(make([]byte, 20<<10)) // then nothing until the test ends
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.srv.URL+ProbePath, pr)
	resp, err := env.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), CodeProbeTimeout) {
		t.Fatalf("status %d body %s, want 408 %s", resp.StatusCode, body, CodeProbeTimeout)
	}
	if n := len(probeSlots); n != 0 {
		t.Fatalf("%d probe slots still held", n)
	}
}

// Probes beyond maxProbes at once are refused with probe_busy.
func TestProbeBusy(t *testing.T) {
	env := newEnv(t, 1)
	for range maxProbes {
		probeSlots <- struct{}{}
	}
	t.Cleanup(func() {
		for range maxProbes {
			<-probeSlots
		}
	})
	_, err := env.cl.ProbeUpload(context.Background(), 10*time.Millisecond, MinProbeBytes)
	if !errors.Is(err, ErrProbeBusy) {
		t.Fatalf("err %v, want ErrProbeBusy", err)
	}
}
