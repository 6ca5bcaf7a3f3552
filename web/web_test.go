package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/swarmtv/swarmtv/tracker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The pages work offline: no asset loads anything from another host.
func TestAssetsAreSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["'](https?:)?//|EventSource\(\s*["'](https?:)?//`)
	n := 0
	err := fs.WalkDir(assets, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, _ := assets.ReadFile(path)
		if m := external.Find(b); m != nil {
			t.Errorf("%s loads from another host: %q", path, m)
		}
		return nil
	})
	if err != nil || n < 4 {
		t.Fatalf("walked %d assets: %v", n, err)
	}
	if !strings.Contains(string(PeerPage()), `fetch("api/v1/peer"`) {
		t.Error("the peer page does not read its status relative to its own URL")
	}
}

func TestDashboardServesPageAssetsAndState(t *testing.T) {
	var seq atomic.Uint64
	state := func() tracker.DashboardState {
		return tracker.DashboardState{Schema: "swarmtv.dashboard/v1", Seq: seq.Add(1), Viewers: 7}
	}
	srv := httptest.NewServer(Dashboard(state, 20*time.Millisecond))
	defer srv.Close()
	for path, want := range map[string]string{
		"/":                    "<title>swarmtv",
		"/dashboard/app.js":    "EventSource",
		"/dashboard/style.css": ".tree",
		"/api/v1/dashboard":    `"viewers":7`,
	} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %s, body lacks %q", path, resp.Status, want)
		}
	}
	if resp, err := srv.Client().Get(srv.URL + "/dashboard/nope.js"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != 404 {
		t.Errorf("missing asset: %s", resp.Status)
	}

	// The event stream sends a state at once and then every period, and
	// its handler returns when the client goes.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/dashboard/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var got []uint64
	for len(got) < 3 && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var st tracker.DashboardState
			if err := json.Unmarshal([]byte(data), &st); err != nil {
				t.Fatal(err)
			}
			got = append(got, st.Seq)
		}
	}
	cancel()
	resp.Body.Close()
	if len(got) != 3 || !(got[0] < got[1] && got[1] < got[2]) {
		t.Errorf("event sequence %v", got)
	}
}

func TestTrackerHandlerRoutes(t *testing.T) {
	tr, err := tracker.New(tracker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tel := tracker.NewTelemetry(tr, tracker.TelemetryConfig{})
	tel.Sample(time.Now())
	reg := prometheus.NewRegistry()
	reg.MustRegister(tr, tel)
	srv := httptest.NewServer(TrackerHandler(tr.Handler(), tel, reg))
	defer srv.Close()
	for path, want := range map[string]string{
		"/healthz":          `"ok"`,
		"/v1/channels":      `"channels":[]`,
		"/metrics":          "swarmtv_telemetry_samples_total 1",
		"/api/v1/dashboard": `"schema":"swarmtv.dashboard/v1"`,
		"/":                 "operator dashboard",
	} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %s %q, want it to contain %q", path, resp.Status, b, want)
		}
	}
	// The API keeps its JSON errors.
	resp, err := srv.Client().Get(srv.URL + "/v1/channels/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("unknown channel: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
}
