package tracker

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by [Tracker] wrap them; an [*APIError]
// from [Client] matches them with [errors.Is] by its code.
var (
	ErrBadRequest     = errors.New("tracker: bad request")
	ErrBodyTooLarge   = errors.New("tracker: request body too large")
	ErrUnknownChannel = errors.New("tracker: unknown channel (is its origin running and registered?)")
	ErrUnknownPeer    = errors.New("tracker: unknown peer (it was removed or never joined; join the channel again)")
	ErrKeyMismatch    = errors.New("tracker: the channel is registered with a different public key (pick another name or use the channel's key)")
	ErrIDConflict     = errors.New("tracker: node ID is already the channel's origin")
	ErrNoCapacity     = errors.New("tracker: no node in the channel's tree has a free slot; retry later")
	ErrNotOrigin      = errors.New("tracker: the node is not the channel's registered origin (another origin replaced it)")
)

// Error codes: the "error" field of an error body.
const (
	CodeBadRequest       = "bad_request"
	CodeBodyTooLarge     = "body_too_large"
	CodeUnknownChannel   = "unknown_channel"
	CodeUnknownPeer      = "unknown_peer"
	CodeKeyMismatch      = "channel_key_mismatch"
	CodeIDConflict       = "id_conflict"
	CodeNoCapacity       = "no_capacity"
	CodeNotOrigin        = "not_origin"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeInternal         = "internal"
)

var codes = []struct {
	err    error
	code   string
	status int
}{
	{ErrBadRequest, CodeBadRequest, 400},
	{ErrBodyTooLarge, CodeBodyTooLarge, 413},
	{ErrUnknownChannel, CodeUnknownChannel, 404},
	{ErrUnknownPeer, CodeUnknownPeer, 404},
	{ErrKeyMismatch, CodeKeyMismatch, 409},
	{ErrIDConflict, CodeIDConflict, 409},
	{ErrNoCapacity, CodeNoCapacity, 503},
	{ErrNotOrigin, CodeNotOrigin, 409},
}

// errorCode maps an error from the tracker to its HTTP status and code.
func errorCode(err error) (status int, code string) {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.status, c.code
		}
	}
	return 500, CodeInternal
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// APIError is an error response from the tracker, as [Client] returns it.
type APIError struct {
	Status  int    // HTTP status
	Code    string // machine-readable code, one of the Code* constants (or another, from a newer tracker)
	Message string // human-readable text
}

func (e *APIError) Error() string {
	return fmt.Sprintf("tracker: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Is matches the sentinel error of e's code, e.g.
// errors.Is(err, ErrUnknownPeer).
func (e *APIError) Is(target error) bool {
	for _, c := range codes {
		if c.code == e.Code {
			return c.err == target
		}
	}
	return false
}
