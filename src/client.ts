/**
 * `mport/client`: the client core (exposes local services through a relay), tunnel specs, the
 * store of relays whose certificates the user trusts and the store of its lease between processes,
 * and the ways to reach the relay (transports, proxies).
 *
 * @packageDocumentation
 */
export { Client, DEFAULT_DRAIN_TIMEOUT, type ClientOptions } from './tunnel/client.js'
export { checkHealth, parseHealthCheck, DEFAULT_HEALTH_INTERVAL, type HealthCheckSpec, type HealthResult, type HealthTimer } from './tunnel/client-health.js'
export type { GroupPolicy } from './tunnel/messages.js'
export type { ClientEvents, TunnelState, TunnelStatus, VisitorInfo, VisitorStats } from './tunnel/client-events.js'
export type { TunnelRetryOptions } from './tunnel/client-retries.js'
export type { TunnelChanges } from './tunnel/client-tunnel-set.js'
export type { HttpVisitorTap } from './tunnel/client-tap.js'
// The HTTP/1.1 message parser the inspector records with (the relay's request metadata uses it too).
export { HttpMessageParser, HttpParseError, MAX_HEAD_BYTES, declaredFraming, headerValue, type BodyFraming, type MessageHead, type ParserSink } from './http/message-parser.js'
export { LeaseFile, memoryOnlyLeaseStore, type LeaseFileOptions, type LeaseStore, type RememberedTunnel, type StoredLease } from './tunnel/client-lease-store.js'
export { parseTunnelSpec, parseHostPort, relayAddress, type TunnelSpec, type HostPort } from './tunnel/spec.js'
export { KnownRelays, type KnownRelay } from './transport/known-relays.js'
export { TRANSPORT_CHOICES, type ClientTransportOptions, type TransportChoice } from './tunnel/client-transport.js'
export { TransportMemory, TRANSPORTS, type RememberedTransport, type TransportName } from './transport/transport-memory.js'
export { parseProxyUrl, type ProxyConfig, type ProxyKind } from './transport/proxy-url.js'
export { proxyFromEnv, bypassesProxy, type ProxiedScheme } from './transport/proxy-env.js'
