// Package loadtest is swarmtv's real-process, real-network test harness.
// Its subpackage netlab builds an emulated internet of network
// namespaces with real Linux NAT routers of every classic type.
package loadtest
