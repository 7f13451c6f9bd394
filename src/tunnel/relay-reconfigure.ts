/**
 * What a config reload can change on a running Relay (Relay.reconfigure), and what it ended.
 * Everything here applies to live sessions without dropping those still allowed; a field left
 * out keeps its current value.
 */

/** The live-changeable part of a relay's configuration; omitted fields stay as they are. */
export interface RelayReconfiguration {
  /** Subdomains nobody may take, besides the built-in ones (www, api, …); a live tunnel on one closes. */
  reservedNames?: readonly string[]
  /** Which addresses may open a client session (CIDRs or addresses; deny wins); sessions from refused ones end. */
  clientIpFilter?: { allow?: readonly string[], deny?: readonly string[] }
  /** How long a departed client's lease is held, for clients leaving from now on. */
  leaseGrace?: number // ms
  /** New connections per minute from one visitor address, per tunnel (null: unlimited); live tunnels' limiters start anew. */
  connectionsPerIpPerMinute?: number | null
  /** Ask the policy for every account's plan now (the plan defaults changed); bandwidth applies to running transfers at once. */
  refreshPlans?: boolean
}

/** What Relay.reconfigure ended because the new configuration no longer allows it. */
export interface RelayReconfigured {
  /** Live tunnels closed because their subdomain is now reserved. */
  tunnelsClosed: number
  /** Client sessions ended because their address is no longer allowed. */
  clientsClosed: number
}
