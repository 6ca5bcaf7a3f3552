package proxy

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// catchUpPace plays the stream in real time for 2 s, then 4 s of it in
// 3 s (the core catching up at its default 25 %), then 1 s of it in
// 1.25 s (slowing down), then in real time again.
func catchUpPace(m time.Duration) time.Duration {
	const (
		a = 2 * time.Second
		b = 6 * time.Second
		c = 7 * time.Second
	)
	switch {
	case m < a:
		return m
	case m < b:
		return a + (m-a)*3/4
	case m < c:
		return a + (b-a)*3/4 + (m-b)*5/4
	}
	return a + (b-a)*3/4 + (c-b)*5/4 + (m - c)
}

// While the core plays faster or slower than the stream, the proxy moves
// the RTP timestamps with its playout, so a real player gets the gain
// instead of buffering it: ffprobe, reading through the catch-up, sees
// every stream's timestamps rise, and video frames 25 ms apart (33 ms
// in the stream) while the core catches up, 42 ms while it slows down;
// ffmpeg decodes the same stretch without a complaint. Also with every
// keyframe slice cut in two by the origin's size cap (a first part that
// lasts 0, then a continuation at the same capture): the move waits for
// the continuation, and no frame's packets get two timestamps.
func TestRTSPCatchUpTimestamps(t *testing.T) {
	for _, split := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole", true: "split"}[split], func(t *testing.T) {
			testCatchUpTimestamps(t, split)
		})
	}
}

func testCatchUpTimestamps(t *testing.T, split bool) {
	c := loadClip(t)
	s := newTestServer(t, nil)
	if err := s.SetDescription(c.sdp); err != nil {
		t.Fatal(err)
	}
	startFeeder(t, s, c, feedOptions{pace: catchUpPace, split: split})
	time.Sleep(300 * time.Millisecond)

	var wg sync.WaitGroup
	var dec ffResult
	wg.Go(func() { dec = runFFmpeg(t, s.URL(), "tcp", 6, 30*time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/ffprobe", "-hide_banner", "-v", "error",
		"-rtsp_transport", "tcp", "-read_intervals", "%+7",
		"-show_entries", "packet=stream_index,pts", "-of", "csv=p=0", s.URL())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	wg.Wait()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v: %s", err, stderr.String())
	}
	if dec.frames < 150 || len(dec.problems) > 0 {
		t.Errorf("ffmpeg decoded %d frames (want ≥ 150), problems %q\n%s", dec.frames, dec.problems, dec.stderr)
	}

	video := strconv.Itoa(c.video)
	last := map[string]int64{}
	var steps []int64 // video frame to frame, 90 kHz ticks
	for line := range strings.SplitSeq(strings.TrimSpace(stdout.String()), "\n") {
		f := strings.Split(strings.TrimRight(strings.TrimSpace(line), ","), ",")
		if len(f) != 2 || f[1] == "N/A" {
			continue
		}
		pts, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("ffprobe line %q: %v", line, err)
		}
		if prev, ok := last[f[0]]; ok {
			if pts <= prev {
				t.Errorf("stream %s: timestamp %d after %d", f[0], pts, prev)
			}
			if f[0] == video {
				steps = append(steps, pts-prev)
			}
		}
		last[f[0]] = pts
	}
	if len(last) != len(c.desc.Medias) || len(steps) < 150 {
		t.Fatalf("ffprobe saw %d streams and %d video steps:\n%s", len(last), len(steps), stdout.String())
	}
	// Runs of frames at the paced spacing: 3000 ticks at real time,
	// 2250 catching up, 3750 slowing down (± 2 ms).
	run := func(want int64) (best int) {
		n := 0
		for _, d := range steps {
			if d >= want-180 && d <= want+180 {
				n++
				best = max(best, n)
			} else {
				n = 0
			}
		}
		return best
	}
	if r := run(3000); r < 20 {
		t.Errorf("longest run of frames at real-time spacing: %d, want ≥ 20", r)
	}
	if r := run(2250); r < 90 {
		t.Errorf("longest run of frames 25 ms apart (catching up): %d, want ≥ 90 of 120", r)
	}
	if r := run(3750); r < 20 {
		t.Errorf("longest run of frames 42 ms apart (slowing down): %d, want ≥ 20 of 30", r)
	}
}
