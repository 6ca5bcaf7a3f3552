package core

import "testing"

// Tests named after the RFC 5780 (and RFC 4787) sections they check, in
// the manner of raft's raft_paper_test.go.

var (
	local   = Addr{"10.0.1.2", 40000}
	a1p1    = Addr{"203.0.113.2", 3478}
	a2p2    = Addr{"203.0.113.3", 3479}
	mappedX = Addr{"198.51.100.7", 40000}
	mappedY = Addr{"198.51.100.7", 51234}
	mappedZ = Addr{"198.51.100.7", 61111}
)

func base() Observations {
	return Observations{Local: local, Primary: a1p1, Other: a2p2, Mapped1: mappedX, FilterTested: true}
}

// RFC 5780 §4.3: "If the XOR-MAPPED-ADDRESS is equal to the local
// address, then there is no NAT."
func TestRFC5780_4_3_NoNATWhenMappedEqualsLocal(t *testing.T) {
	o := base()
	o.Mapped1, o.Mapped2, o.Mapped3 = local, local, local
	o.FilterChangeIPPort, o.FilterChangePort = true, true
	r := Classify(o)
	if r.NAT || r.Mapping != EndpointIndependent || r.Type != TypeOpen {
		t.Fatalf("got %+v, want no NAT, open", r)
	}
	// A firewall without NAT that filters is not "open".
	o.FilterChangeIPPort, o.FilterChangePort = false, false
	if r := Classify(o); r.Type != TypePortRestricted || r.NAT {
		t.Fatalf("filtering firewall: got %+v, want portrestricted without NAT", r)
	}
}

// RFC 5780 §4.3 test II: the same mapping towards A2:P1 as towards A1:P1
// means endpoint-independent mapping.
func TestRFC5780_4_3_EndpointIndependentMapping(t *testing.T) {
	o := base()
	o.Mapped2, o.Mapped3 = mappedX, mappedX
	if r := Classify(o); r.Mapping != EndpointIndependent || !r.NAT {
		t.Fatalf("got %+v", r)
	}
}

// RFC 5780 §4.3 test III: X2 != X1 but X3 == X2 means address-dependent
// mapping.
func TestRFC5780_4_3_AddressDependentMapping(t *testing.T) {
	o := base()
	o.Mapped2, o.Mapped3 = mappedY, mappedY
	r := Classify(o)
	if r.Mapping != AddressDependent || r.Type != TypeSymmetric {
		t.Fatalf("got %+v", r)
	}
}

// RFC 5780 §4.3 test III: X3 != X2 means address-and-port-dependent
// mapping.
func TestRFC5780_4_3_AddressAndPortDependentMapping(t *testing.T) {
	o := base()
	o.Mapped2, o.Mapped3 = mappedY, mappedZ
	r := Classify(o)
	if r.Mapping != AddressAndPortDependent || r.Type != TypeSymmetric {
		t.Fatalf("got %+v", r)
	}
}

// RFC 5780 §4.3 with a single-address server: only the port can change,
// so a same mapping is reported as endpoint-independent with
// SingleAddress set, a different one as address-and-port-dependent.
func TestRFC5780_4_3_SingleAddressServer(t *testing.T) {
	o := base()
	o.Other = Addr{a1p1.IP, 3479}
	o.Mapped3 = mappedX
	if r := Classify(o); r.Mapping != EndpointIndependent || !r.SingleAddress {
		t.Fatalf("same mapping: got %+v", r)
	}
	o.Mapped3 = mappedY
	if r := Classify(o); r.Mapping != AddressAndPortDependent {
		t.Fatalf("other mapping: got %+v", r)
	}
	o.Mapped3 = Addr{}
	if r := Classify(o); r.Mapping != Unknown || r.Type != TypeUnknown {
		t.Fatalf("no answer: got %+v", r)
	}
}

// RFC 5780 §4.3: a missing answer to test II leaves the mapping unknown,
// never guessed.
func TestRFC5780_4_3_MissingAnswerIsUnknown(t *testing.T) {
	o := base()
	if r := Classify(o); r.Mapping != Unknown || r.Type != TypeUnknown {
		t.Fatalf("got %+v", r)
	}
	o.Mapped2 = mappedY
	if r := Classify(o); r.Mapping != Unknown {
		t.Fatalf("test III unanswered: got %+v", r)
	}
}

// RFC 5780 §4.4 test II: an answer from the alternate address and port
// means endpoint-independent filtering (with EIM: a full cone).
func TestRFC5780_4_4_EndpointIndependentFiltering(t *testing.T) {
	o := base()
	o.Mapped2, o.Mapped3 = mappedX, mappedX
	o.FilterChangeIPPort, o.FilterChangePort = true, true
	r := Classify(o)
	if r.Filtering != EndpointIndependent || r.Type != TypeFullCone {
		t.Fatalf("got %+v", r)
	}
}

// RFC 5780 §4.4 test III: no answer to test II but one from the primary
// address and alternate port means address-dependent filtering
// (restricted cone).
func TestRFC5780_4_4_AddressDependentFiltering(t *testing.T) {
	o := base()
	o.Mapped2, o.Mapped3 = mappedX, mappedX
	o.FilterChangePort = true
	r := Classify(o)
	if r.Filtering != AddressDependent || r.Type != TypeRestricted {
		t.Fatalf("got %+v", r)
	}
}

// RFC 5780 §4.4: no answer to tests II and III means
// address-and-port-dependent filtering (port-restricted cone).
func TestRFC5780_4_4_AddressAndPortDependentFiltering(t *testing.T) {
	o := base()
	o.Mapped2, o.Mapped3 = mappedX, mappedX
	r := Classify(o)
	if r.Filtering != AddressAndPortDependent || r.Type != TypePortRestricted {
		t.Fatalf("got %+v", r)
	}
	o.FilterTested = false
	if r := Classify(o); r.Filtering != Unknown || r.Type != TypeUnknown {
		t.Fatalf("untested filtering: got %+v", r)
	}
}

// RFC 5780 §4.4 with address-dependent mapping: the filtering does not
// change the name, the NAT is symmetric.
func TestRFC5780_4_4_SymmetricWhateverFiltering(t *testing.T) {
	for _, f := range [][2]bool{{true, true}, {false, true}, {false, false}} {
		o := base()
		o.Mapped2, o.Mapped3 = mappedY, mappedZ
		o.FilterChangeIPPort, o.FilterChangePort = f[0], f[1]
		if r := Classify(o); r.Type != TypeSymmetric {
			t.Fatalf("filter answers %v: got %+v", f, r)
		}
	}
}

// RFC 5780 §4.3 test I unanswered: UDP to the server is blocked.
func TestRFC5780_4_3_NoAnswerMeansBlocked(t *testing.T) {
	o := base()
	o.Mapped1 = Addr{}
	if r := Classify(o); r.Type != TypeBlocked {
		t.Fatalf("got %+v", r)
	}
}

// RFC 4787 §4.1 port preservation: the mapped port equals the local port.
func TestRFC4787_4_1_PortPreservation(t *testing.T) {
	o := base()
	o.Mapped2, o.Mapped3 = mappedX, mappedX
	if r := Classify(o); !r.PortPreserved {
		t.Fatalf("mapped %v from %v: want port preserved", o.Mapped1, o.Local)
	}
	o.Mapped1, o.Mapped2, o.Mapped3 = mappedY, mappedY, mappedY
	if r := Classify(o); r.PortPreserved {
		t.Fatalf("mapped %v from %v: want port not preserved", o.Mapped1, o.Local)
	}
}

// RFC 4787 §4.3 / RFC 5780 §4.6: a mapping that is lost comes back on
// another address or port; the watch reports it once per change.
func TestRFC4787_4_3_MappingChangeDetected(t *testing.T) {
	var w MappingWatch
	if ch, _ := w.Observe(mappedX); ch {
		t.Fatal("first mapping reported as a change")
	}
	if ch, _ := w.Observe(mappedX); ch {
		t.Fatal("same mapping reported as a change")
	}
	if ch, _ := w.Observe(Addr{}); ch {
		t.Fatal("missing answer reported as a change")
	}
	ch, prev := w.Observe(mappedY)
	if !ch || prev != mappedX || w.Current() != mappedY || w.Changes() != 1 {
		t.Fatalf("changed=%v prev=%v current=%v changes=%d", ch, prev, w.Current(), w.Changes())
	}
}

func result(t Type) Result {
	r := Result{Type: t, NAT: t != TypeOpen, Mapping: EndpointIndependent}
	switch t {
	case TypeOpen, TypeFullCone:
		r.Filtering = EndpointIndependent
	case TypeRestricted:
		r.Filtering = AddressDependent
	case TypePortRestricted:
		r.Filtering = AddressAndPortDependent
	case TypeSymmetric:
		r.Mapping, r.Filtering = AddressAndPortDependent, AddressAndPortDependent
	}
	return r
}

// The pairing rule as measured in the lab (LAB.md): EIM with EIM punches
// whatever the filtering; full or restricted cone with symmetric
// punches; port-restricted with symmetric and symmetric with symmetric
// need a relay.
func TestCanPunchMatrix(t *testing.T) {
	types := []Type{TypeOpen, TypeFullCone, TypeRestricted, TypePortRestricted, TypeSymmetric}
	want := map[[2]Type]bool{
		{TypePortRestricted, TypeSymmetric}: false,
		{TypeSymmetric, TypePortRestricted}: false,
		{TypeSymmetric, TypeSymmetric}:      false,
	}
	for _, a := range types {
		for _, b := range types {
			w, ok := want[[2]Type{a, b}]
			if !ok {
				w = true
			}
			if got := CanPunch(result(a), result(b)); got != w {
				t.Errorf("CanPunch(%v, %v) = %v, want %v", a, b, got, w)
			}
		}
	}
	if CanPunch(Result{Type: TypeBlocked}, result(TypeOpen)) {
		t.Error("blocked host can punch")
	}
}

func TestNames(t *testing.T) {
	if TypePortRestricted.String() != "portrestricted" || AddressDependent.String() != "address-dependent" {
		t.Fatal("names changed; the simulator and reports use them")
	}
	if s := (Addr{"2001:db8::1", 5}).String(); s != "[2001:db8::1]:5" {
		t.Fatalf("v6 addr: %s", s)
	}
}
