/**
 * mport-relay: the relay as a service: the relay core with a persistent store of users,
 * tokens, plans and usage (SQLite or PostgreSQL) and the REST API over it.
 *
 * @packageDocumentation
 */
export { startRelayService, type RelayService, type RelayServiceOptions } from './service/relay-service.js'
export * from './store/index.js'
export * from './api/index.js'
export { relayUsers } from './cli/relay-users.js'
