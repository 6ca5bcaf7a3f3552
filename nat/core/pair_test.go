package core

import "testing"

// The tracker hears NAT classes by name: every name round-trips, and the
// typical behaviours give the pairing table of LAB.md (EIM↔EIM direct;
// full or restricted cone ↔ symmetric direct; port-restricted or
// symmetric ↔ symmetric relayed).
func TestTypicalPairing(t *testing.T) {
	for _, ty := range []Type{TypeOpen, TypeFullCone, TypeRestricted, TypePortRestricted, TypeSymmetric} {
		got, ok := ParseType(ty.String())
		if !ok || got != ty {
			t.Fatalf("ParseType(%q) = %v, %v", ty.String(), got, ok)
		}
		if Typical(ty).Type != ty {
			t.Fatalf("Typical(%v).Type = %v", ty, Typical(ty).Type)
		}
	}
	if _, ok := ParseType("carrier-grade"); ok {
		t.Fatal("ParseType accepted an unknown name")
	}
	want := map[[2]Type]bool{
		{TypeFullCone, TypeFullCone}: true, {TypeFullCone, TypeRestricted}: true, {TypeFullCone, TypePortRestricted}: true,
		{TypeRestricted, TypeRestricted}: true, {TypeRestricted, TypePortRestricted}: true, {TypePortRestricted, TypePortRestricted}: true,
		{TypeFullCone, TypeSymmetric}: true, {TypeRestricted, TypeSymmetric}: true,
		{TypePortRestricted, TypeSymmetric}: false, {TypeSymmetric, TypeSymmetric}: false,
		{TypeOpen, TypeSymmetric}: true, {TypeOpen, TypePortRestricted}: true,
	}
	for pair, w := range want {
		a, b := Typical(pair[0]), Typical(pair[1])
		if CanPunch(a, b) != w || CanPunch(b, a) != w {
			t.Errorf("CanPunch(%v, %v) = %v, want %v", pair[0], pair[1], CanPunch(a, b), w)
		}
	}
	if CanPunch(Typical(TypeUnknown), Typical(TypeFullCone)) {
		t.Error("an unknown NAT was judged punchable")
	}
}

// RFC 5780 §4.4 with a one-address server: filtering cannot be told
// apart beyond "change-port answered or not", so Class takes the
// stricter fitting type; no NAT is open; no answer is no class.
func TestClassWithOneAddressServer(t *testing.T) {
	o := Observations{Local: Addr{"10.0.0.2", 4000}, Primary: Addr{"203.0.113.2", 3478}, Other: Addr{"203.0.113.2", 3479},
		Mapped1: Addr{"198.51.100.1", 4000}, Mapped3: Addr{"198.51.100.1", 4000}, FilterChangePort: true}
	if ty, ok := Class(Classify(o), o); !ok || ty != TypeRestricted {
		t.Fatalf("change-port answered: %v %v, want restricted", ty, ok)
	}
	o.FilterChangePort = false
	if ty, ok := Class(Classify(o), o); !ok || ty != TypePortRestricted {
		t.Fatalf("change-port unanswered: %v %v, want portrestricted", ty, ok)
	}
	o.Mapped1, o.Mapped3 = o.Local, o.Local
	if ty, ok := Class(Classify(o), o); !ok || ty != TypeOpen {
		t.Fatalf("no NAT: %v %v, want open", ty, ok)
	}
	if _, ok := Class(Classify(Observations{Local: o.Local, Primary: o.Primary}), Observations{}); ok {
		t.Fatal("no answer gave a class")
	}
}

// RFC 5128 §3.6: a symmetric NAT with predictable ports can be punched
// from any endpoint-independent mapping, even port-restricted; two
// remote-dependent mappings still cannot, predicted or not.
func TestCanPunchPredicting(t *testing.T) {
	pr, sym := Typical(TypePortRestricted), Typical(TypeSymmetric)
	if CanPunch(pr, sym) || CanPunchPredicting(pr, sym, false, false) {
		t.Fatal("port-restricted ↔ symmetric punchable without prediction")
	}
	if !CanPunchPredicting(pr, sym, false, true) || !CanPunchPredicting(sym, pr, true, false) {
		t.Fatal("port-restricted ↔ predictable symmetric not punchable")
	}
	if CanPunchPredicting(sym, sym, true, true) {
		t.Fatal("symmetric ↔ symmetric punchable")
	}
	if !CanPunchPredicting(Typical(TypeFullCone), sym, false, false) {
		t.Fatal("prediction lost a pair CanPunch allows")
	}
	if CanPunchPredicting(Typical(TypeUnknown), sym, true, true) {
		t.Fatal("unknown NAT punchable")
	}
}
