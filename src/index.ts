/**
 * mport: a self-hostable tunnel. A relay on a public machine and a client behind NAT share one
 * TLS connection that carries many streams (yamux-compatible, with per-stream backpressure).
 *
 * This entry holds the library: errors, the multiplexer, the relay and client cores, their
 * authenticators, TLS and certificate helpers, config files and access rules. Narrower entries:
 * `mport/mux`, `mport/relay`, `mport/client`, `mport/transport`, `mport/http`, `mport/access`,
 * `mport/limits`, `mport/config`, `mport/errors`; `mport/cli` and `mport/gc-tuning` are for the bins.
 *
 * @packageDocumentation
 */
export * from './errors.js'
export * from './mux.js'
export * from './relay.js'
export * from './client.js'
export * from './transport.js'
export * from './config.js'
export * from './access.js'
export { VERSION } from './version.js'
