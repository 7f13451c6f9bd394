/**
 * `mport/client`: the client core (exposes local services through a relay), tunnel specs and
 * the store of relays whose certificates the user trusts.
 *
 * @packageDocumentation
 */
export { Client, type ClientOptions } from './tunnel/client.js'
export type { ClientEvents, TunnelStatus, VisitorInfo, VisitorStats } from './tunnel/client-events.js'
export { parseTunnelSpec, parseHostPort, type TunnelSpec, type HostPort } from './tunnel/spec.js'
export { KnownRelays, type KnownRelay } from './transport/known-relays.js'
