/**
 * `mport/relay`: the relay core (the public side of tunnels) and what it is configured with:
 * authenticators, plans and accounting, the port range and the data directory.
 *
 * @packageDocumentation
 */
export { Relay, type TunnelListing } from './tunnel/relay.js'
export type { ClusterHooks, ClusterLease, LocalTunnels } from './tunnel/cluster-hooks.js'
export type { FrontTarget, Visitor } from './tunnel/http-front.js'
export type { Lease, PublicTunnel } from './tunnel/lease.js'
export { DEFAULT_CONTROL_PORT } from './tunnel/constants.js'
export { DEFAULT_PORT_RANGE, type RelayOptions } from './tunnel/relay-options.js'
export type { RelayReconfiguration, RelayReconfigured } from './tunnel/relay-reconfigure.js'
export type { GroupInfo, GroupMemberInfo, MemberState } from './tunnel/tunnel-group.js'
export type { RelayEvents, ClientInfo, TunnelInfo, ConnectionInfo, RefusedTunnelInfo } from './tunnel/relay-events.js'
export { StaticTokens, AnyAuthenticator, FailureLimiter, generateToken, tokenId, tokenKey, type Authenticator, type Principal, type Credential } from './tunnel/auth.js'
export { Account, UNLIMITED, type PlanLimits, type RelayPolicy, type UsageCounts } from './tunnel/accounts.js'
export { parsePortRange, formatRange, type PortRange } from './tunnel/ports.js'
export { prepareRelayData, defaultDataDir, type RelayData } from './tunnel/data-dir.js'
