/**
 * `mport/client`: the client core (exposes local services through a relay), tunnel specs and
 * the store of relays whose certificates the user trusts.
 *
 * @packageDocumentation
 */
export { Client, type ClientOptions, type ClientEvents, type TunnelStatus, type VisitorInfo } from './tunnel/client.js'
export { parseTunnelSpec, parseHostPort, type TunnelSpec, type HostPort } from './tunnel/spec.js'
export { KnownRelays, type KnownRelay } from './transport/known-relays.js'
