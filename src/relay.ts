/**
 * `mport/relay`: the relay core (the public side of tunnels) and what it is configured with:
 * authenticators, plans and accounting, the port range and the data directory.
 *
 * @packageDocumentation
 */
export { Relay, DEFAULT_CONTROL_PORT, DEFAULT_PORT_RANGE, type RelayOptions, type RelayEvents, type ClientInfo, type TunnelInfo, type ConnectionInfo } from './tunnel/relay.js'
export { StaticTokens, AnyAuthenticator, FailureLimiter, generateToken, tokenId, tokenKey, type Authenticator, type Principal, type Credential } from './tunnel/auth.js'
export { Account, UNLIMITED, type PlanLimits, type RelayPolicy, type UsageCounts } from './tunnel/accounts.js'
export { parsePortRange, formatRange, type PortRange } from './tunnel/ports.js'
export { prepareRelayData, defaultDataDir, type RelayData } from './tunnel/data-dir.js'
