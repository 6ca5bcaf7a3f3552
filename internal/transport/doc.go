// Package transport is swarmtv's real-network driver.
//
// An [Endpoint] is a node's one UDP socket: a quic-go Transport carrying
// every QUIC connection the node makes or accepts, plus non-QUIC packets
// (STUN) handed to an optional handler. Connections are mutually
// authenticated with TLS 1.3 and self-signed certificates; a node's
// [Identity] is its key, and its swarm.NodeID is the key's fingerprint
// ([IDFromCert]). A dialer names the node it expects and the handshake
// fails with [ErrFingerprint] if another key answers.
//
// A [Driver] runs one swarm.Node on an Endpoint. One goroutine owns the
// node (as etcd raft's node.go owns a RawNode): network readers, public
// methods and the timer all hand it work over channels; after each input
// it drains Node.Ready and acts on it — queues chunks to children, sends
// fetch requests to the origin, calls OnPlay and OnLost, closes the
// connections of nodes that misbehaved — and re-arms one timer from
// Node.NextDeadline.
//
// # Streams
//
// Every stream starts with a Hello frame from the side that opened it.
// A Hello with stripes set subscribes the opener as a child: the accepting
// node pushes Chunk frames on that stream through a per-child writer
// goroutine with a bounded queue (a child that falls behind is dropped
// with Bye Slow). A Hello without stripes opens a fetch stream: the opener
// sends Request frames and gets a Chunk or Missing frame for each. Chunk
// frames arriving on any stream are verified by the node; a sender of a
// bad chunk, or of anything that is not a well-formed frame, has its
// connection closed with an application error code ([CodeBadChunk],
// [CodeProtocol]).
//
// A node has one parent link per distinct parent: a subscription whose
// Hello asks for the stripes that parent feeds (SetParents,
// SetStripeParent). When a parent's stripes change, its link subscribes
// again on the same connection (the parent replaces the old
// subscription); stripes of other parents are not disturbed. A new or
// renewed link asks from the slice after the newest held on its stripes
// (swarm.Node.NextMissing) rather than from the parent's newest
// keyframe, so a switch costs few duplicates. OnLost reports a failed
// parent once, with every stripe it fed.
//
// The parent link tells the node its parent is up (swarm.Node.ParentUp)
// once the subscription's Hello is written on an open stream, so the dial
// counts against the connect timeout and not against ParentTimeout. A
// Request for slice 0 (no origin makes one) is answered with the
// requested stripe's chunk of the newest keyframe slice the node holds,
// or Missing: a peer that has received nothing asks so where the stream
// is.
//
// # Partner mesh and Alives
//
// SetPartners names the nodes a node pulls missing chunks from (the proxy
// takes its tracker backups). The node opens one partner stream to each
// with a Partner frame; the partner registers it as a watcher, writes its
// buffer map on the stream at once and in answer to each MapRequest frame
// (the node asks when it has a chunk to pull that no partner's map
// shows), and answers the node's Request frames in order with Chunk or
// Missing — Missing
// also when its children's send queues are backed up: pulls are served
// from spare upload only. A partner the node gives up on (silent, bad
// data) is closed and not taken again for a while. A parent writes an
// Alive frame on a child's subscription stream when the node had nothing
// to push to it for swarm.Config.AliveInterval (see mesh.go).
//
// # Overlay
//
// An [Overlay] runs the channel's overlay.Node the same way (one owner
// goroutine, one timer): ring members are named by their key fingerprint
// ([OverlayPeer]), messages travel as wire overlay frames on one stream
// per member, and connection or stream failures become NodeFailed. A
// Driver given the Overlay (DriverConfig.Overlay) hands it the overlay
// streams opened on its connections; without a Driver, the Overlay
// accepts connections itself (OverlayConfig.Accept).
//
// # Goroutines
//
// Endpoint owns its non-QUIC reader; Driver.Run owns every goroutine the
// driver starts (accept loop, one per connection and per stream, child
// writers, parent link, fetcher, partner links and watcher writers) and
// waits for all of them before it
// returns.
package transport
