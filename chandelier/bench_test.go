package chandelier

import (
	"testing"
	"time"
)

// Benchmarks of one optimizer round (issue 4: a round for 10,000 peers
// under 1 s on the tracker's machine). "full" builds every tree from
// scratch; "churn1pct" is a steady-state round in which 0.5 % of the
// peers leave and as many join (1 % churn); "batch10" is a round like
// the simulator's join batches and periodic rounds, in which 10 peers
// leave and 10 join: every stripe is placed and its backups refreshed
// for a small change. Figures on a shared 2-core machine are noisy.

func BenchmarkRound1k(b *testing.B)   { benchRound(b, 1_000) }
func BenchmarkRound10k(b *testing.B)  { benchRound(b, 10_000) }
func BenchmarkRound100k(b *testing.B) { benchRound(b, 100_000) }

func benchRound(b *testing.B, n int) {
	b.Run("full", func(b *testing.B) {
		w := newWorld(1, 1.5, 4)
		peers := w.joinN(n, t0)
		b.ReportAllocs()
		for b.Loop() {
			o := newOpt(b, testConfig(16))
			o.Round(t0, Changes{Join: peers})
		}
	})
	b.Run("churn1pct", func(b *testing.B) { benchChurn(b, n, n/200) })
	b.Run("batch10", func(b *testing.B) { benchChurn(b, n, 10) })
}

// benchChurn times rounds in which k of n peers leave and k join.
func benchChurn(b *testing.B, n, k int) {
	w := newWorld(1, 1.5, 4)
	o := newOpt(b, testConfig(16))
	now := t0
	o.Round(now, Changes{Join: w.joinN(n, now)})
	b.ReportAllocs()
	var moved int
	for b.Loop() {
		b.StopTimer()
		now = now.Add(time.Second)
		ch := Changes{Leave: w.leaveN(k), Join: w.joinN(k, now)}
		b.StartTimer()
		moved += o.Round(now, ch).Moved
	}
	b.ReportMetric(float64(moved)/float64(b.N), "moved/round")
}

// BenchmarkBaseline10k is the Baseline's full round, for scale.
func BenchmarkBaseline10k(b *testing.B) {
	w := newWorld(1, 1.5, 4)
	peers := w.joinN(10_000, t0)
	for b.Loop() {
		bl := newBase(b, testConfig(16), 1)
		bl.Round(t0, Changes{Join: peers})
	}
}
