// Package omaha is the Omaha v3 wire contract shared by Switchyard's update server
// (omaha-server) and its host daemon (update-engine), and compatible with Flatcar's
// update_engine on one side and Nebraska on the other. It imports the standard library only;
// both sides import it, and it imports nothing of ours.
//
// # Parties and exchange
//
// A host POSTs a <request protocol="3.0"> to /v1/update/ with Content-Type text/xml and gets a
// <response protocol="3.0"> back. One request carries one <app> per updatable thing (Flatcar
// sends exactly one, appid FlatcarAppID), and an app carries any of:
//
//	<ping active="1"/>     "I am alive"; answered by <ping status="ok"/>
//	<updatecheck/>         "anything for me?"; answered by <updatecheck status="noupdate"/>
//	                       or status="ok" with urls, manifest, packages and actions
//	<event eventtype="T" eventresult="R" [errorcode="E"] [previousversion="V"]/>
//	                       progress and results; each answered by one <event status="ok"/>
//
// What a Flatcar engine sends: an update check is ping + updatecheck + one event (3/2 with
// previousversion, usually "", or 3/0 errorcode 44 after a rollback); a ping-only request
// while it waits for a reboot; event-only requests 13/1 (download started), 14/1 (download
// finished), 3/1 (installed, reboot needed), 3/0 with errorcode on failure, 3/9 when deferred.
// Nebraska also knows 800/1 (installed, completion pending). The group is app@track and the
// architecture is app@board (amd64-usr, arm64-usr); os@arch is not sent.
//
// What a Flatcar engine reads from a response: the first app's updatecheck status (ok or
// noupdate; anything else is ErrorCodeOmahaResponseInvalid, 34), the first manifest's version,
// every url codebase, the first package's name and size, and the postinstall action's sha256
// (base64 SHA-256 of the payload). Response.Offer reads the same and checks more. A policy
// hold is noupdate, never an error. App-level errors (unknown app, invalid version, …) are
// AppStatus values, and reach Go code as *StatusError.
//
// Error codes in events are a base code ORed with flag bits (ErrorFlagDevMode 1<<31,
// ErrorFlagResumed 1<<30, ErrorFlagTestImage 1<<29, ErrorFlagTestOmahaURL 1<<28); failed
// HTTP checks report 2000 + status. ErrorCode.String names both halves.
//
// # Parsing invariants
//
// ParseRequest and ParseResponse read at most Limits.MaxBodyBytes (1 MiB by default) and
// refuse, with a typed error, before anything reaches a struct: bodies over the cap
// (*LimitError, ErrBodyTooLarge), malformed XML (*SyntaxError, ErrMalformed), any DOCTYPE or
// other <!…> declaration and any entity but the five XML predefines (ErrEntity; entities are
// never expanded, external or internal), nesting deeper than MaxDepth, more than MaxElements
// elements, attribute values longer than MaxAttrBytes, more than MaxApps apps or MaxEvents
// events per app (*LimitError, ErrLimit), content after the root, and a protocol other than
// 3.0 (*ProtocolError, ErrProtocol). Unknown elements and attributes are ignored, so newer
// peers can add them. Request.Validate then checks the fields (*ValidationError,
// ErrInvalid; its Status is the app status to answer). HTTPStatus maps all of these to an
// HTTP status. Marshal writes compact UTF-8 with every attribute value escaped, and for any
// document ParseX accepts, parsing what Marshal writes yields the same value (fuzzed).
//
// Send posts a request with Content-Type text/xml through any Doer (an *http.Client) and
// parses the answer under the same limits; a non-200 answer is an *HTTPError whose ErrorCode
// is the 2000+status code a Flatcar engine reports.
//
// Versions (4081.2.0, 4081.2.0+nightly-20240101, 0.0.0.0) parse with ParseVersion and order
// with Version.Compare: numeric components, then semver pre-release rules; build metadata
// does not order.
//
// # Switchyard extensions
//
// Extensions are optional attributes that old peers ignore; a Switchyard peer must work when
// they are absent. Each is listed with the date it was added.
//
//   - 2026-11-25 manifest@sy_release (Manifest.Release, Offer.Release): the release counter
//     the payload's TUF target carries, so a client can refuse a rollback early.
//   - 2026-11-25 package@sy_target (Package.TUFTarget): the TUF target path pinning the file.
//   - 2026-11-25 event@sy_detail (Event.Detail): a short human-readable failure reason, at
//     most 1024 bytes, no control characters.
//   - 2026-12-03 host signatures (package omaha/hostsig): the HTTP headers
//     X-Switchyard-Host-Key, X-Switchyard-Host-Time and X-Switchyard-Host-Signature, an
//     Ed25519 signature over the method, Host, path, time and SHA-256 of the exact body,
//     with which a host proves its key on every request. Headers, not attributes: the body
//     is what is signed. A server that does not know them ignores them; a request without
//     them is an unproven host's.
//   - 2026-12-03 errorcode 1001 (ErrorCodeDeltaSourceMismatch), the first of Switchyard's
//     codes (1000–1999): a delta payload did not fit the host's active partition.
//
// Nebraska's own additions that this package carries unchanged: package@hash_sha256 (hex
// SHA-256), manifest@is_floor, @floor_reason, @is_target, app@multi_manifest_ok.
package omaha
