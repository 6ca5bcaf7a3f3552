package sim

import (
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// A run gives the same trace and report with one worker or two (the
// viewer parts' windows taken by two goroutines: parts.go, crew.go; two by default where
// GOMAXPROCS is 2 or more, as it is set here), steady, with churn
// (crashes too), a tracker killed and restarted, symmetric NATs behind
// relays, shorter delays (a shorter lookahead, more windows) and the
// overlay with a partition; the churn and outage runs with a steady
// block (its handlers read other peers: it runs on
// one worker).
func TestWorkersSameRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	steady := small(60, 8*time.Second, 3)
	churn := small(60, 8*time.Second, 4)
	churn.Churn, churn.CrashShare = 0.4, 0.5
	churn.MeasureFrom = 4 * time.Second // a steady block, taken in each viewer part
	outage := small(60, 10*time.Second, 5)
	outage.KillTrackerAt, outage.RestartTrackerAt = 4*time.Second, 6*time.Second
	outage.MeasureFrom = 5 * time.Second
	relays := small(60, 8*time.Second, 6)
	relays.NATMix = NATMix{0.1, 0, 0, 0.3, 0.6}
	near := small(60, 8*time.Second, 7)
	near.DelayScale = 0.3
	split := small(60, 10*time.Second, 8)
	split.Overlay, split.PartitionAt, split.HealAt = true, 4*time.Second, 7*time.Second
	for _, x := range []struct {
		name    string
		c       Config
		workers int // that run by default
	}{{"steady", steady, 2}, {"churn", churn, 2}, {"tracker outage", outage, 2}, {"relays", relays, 2}, {"short delays", near, 2}, {"overlay partition", split, 1}} {
		t.Run(x.name, func(t *testing.T) {
			two, s2 := run(t, x.c)
			x.c.Workers = 1
			one, s1 := run(t, x.c)
			if s2.workers != x.workers || s1.workers != 1 {
				t.Errorf("ran on %d workers by default, want %d; on %d with Workers 1", s2.workers, x.workers, s1.workers)
			}
			if s1.windows == 0 || s1.windows != s2.windows || s2.events != s1.events {
				t.Errorf("windows %d / %d, events %d / %d", s1.windows, s2.windows, s1.events, s2.events)
			}
			if *one.TraceHash != *two.TraceHash {
				t.Errorf("trace %s with one worker, %s with two", *one.TraceHash, *two.TraceHash)
			}
			if a, b := reportJSON(t, one), reportJSON(t, two); a != b {
				t.Errorf("reports differ:\n%s\n%s", a, b)
			}
		})
	}
}

// merge adds every figure of another part's metrics: a field added to
// metrics and forgotten in merge would leave the viewer parts' share out of
// the report.
func TestMetricsMergeEveryField(t *testing.T) {
	c := DefaultConfig()
	var m, o metrics
	m.init(&c)
	o.init(&c)
	ov := reflect.ValueOf(&o).Elem()
	// steady*: each part's own clock, not summed.
	skip := map[string]bool{"started": true, "k": true, "isps": true, "placementBefore": true, "lag": true, "lat": true,
		"steadyFrom": true, "steadyAt": true, "steadyOn": true}
	for i := range ov.NumField() {
		f := ov.Field(i)
		name := ov.Type().Field(i).Name
		if skip[name] {
			continue
		}
		f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
		if !setOnes(f) {
			t.Errorf("metrics.%s (%v): the test does not know how to fill it", name, f.Type())
		}
	}
	m.merge(&o)
	unmerged(t, "metrics", reflect.ValueOf(&m).Elem(), skip)
}

// unmerged fails for every field of v left zero, looking into the
// phases' figures (qoe) field by field.
func unmerged(t *testing.T, name string, v reflect.Value, skip map[string]bool) {
	t.Helper()
	for i := range v.NumField() {
		fn := v.Type().Field(i).Name
		if skip[fn] {
			continue
		}
		f := v.Field(i)
		if f.Type() == reflect.TypeFor[qoe]() {
			unmerged(t, name+"."+fn, f, nil)
			continue
		}
		if f.IsZero() {
			t.Errorf("%s.%s is not merged", name, fn)
		}
	}
}

// setOnes sets every number in v to 1 and gives slices one element; it
// reports false for a kind it does not know.
func setOnes(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint64:
		v.SetUint(1)
	case reflect.Float64:
		v.SetFloat(1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		return setOnes(v.Index(0))
	case reflect.Array:
		for i := range v.Len() {
			if !setOnes(v.Index(i)) {
				return false
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if !setOnes(reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()) {
				return false
			}
		}
	default:
		return false
	}
	return true
}
