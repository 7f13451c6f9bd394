/**
 * Reloading a running relay service: plan defaults, named static tokens and the relay's live
 * settings applied without dropping what is still allowed. Checked whole before anything
 * changes (Caddy's "apply whole or not at all"); reloads run one at a time.
 */
import { IpFilter } from 'mport/access'
import { InvalidConfigError, MportError } from 'mport/errors'
import type { PlanLimits, Relay, RelayReconfiguration } from 'mport/relay'
import type { Store } from '../store/types.js'
import type { NamedToken, RelayTokens } from './relay-tokens.js'

/**
 * What a reload may change on a running service: the plan defaults (existing sessions get the
 * new limits at once), the named static tokens (a removed one's sessions end), and the relay's
 * live settings (RelayReconfiguration: reserved names, client IP filter, lease grace, per-address
 * rate). A field left out stays as it is.
 */
export interface RelayReload extends Omit<RelayReconfiguration, 'refreshPlans'> {
  /** The whole new default plan (unset keys: unlimited). */
  planDefaults?: Partial<PlanLimits>
  /** The whole new list of named static tokens. */
  tokens?: readonly NamedToken[]
}

/** What a reload ended because the new settings no longer allow it. */
export interface RelayReloadResult {
  /** Client sessions ended: their token was removed or their address is no longer allowed. */
  sessionsEnded: number
  /** Tunnels closed because their subdomain is now reserved. */
  tunnelsClosed: number
}

/** The parts a reload changes. */
export interface ReloadTargets {
  relay: Relay
  store: Pick<Store, 'setDefaultLimits'>
  tokens: RelayTokens
}

/** A reload function over the service's parts; calls queue, so two SIGHUPs never interleave. */
export function reloader (targets: ReloadTargets): (next: RelayReload) => Promise<RelayReloadResult> {
  let last: Promise<unknown> = Promise.resolve()
  return async next => {
    const run = last.then(async () => await applyReload(targets, next))
    last = run.catch(() => {})
    return await run
  }
}

async function applyReload ({ relay, store, tokens }: ReloadTargets, next: RelayReload): Promise<RelayReloadResult> {
  // Everything that can refuse is checked before anything changes: the addresses, then the plan
  // (the store checks it and swaps it in one step).
  if (next.clientIpFilter !== undefined) new IpFilter(next.clientIpFilter)
  if (next.planDefaults !== undefined) {
    try {
      store.setDefaultLimits(next.planDefaults)
    } catch (err) {
      throw err instanceof MportError && err.code === 'MPORT_ERR_INVALID_INPUT' ? new InvalidConfigError('plan', err.message) : err
    }
  }
  let sessionsEnded = 0
  if (next.tokens !== undefined) {
    for (const gone of tokens.replace(next.tokens)) sessionsEnded += relay.disconnect(gone.principalId, gone.tokenId)
  }
  const { planDefaults, tokens: _tokens, ...live } = next
  const done = await relay.reconfigure({ ...live, refreshPlans: planDefaults !== undefined })
  return { sessionsEnded: sessionsEnded + done.clientsClosed, tunnelsClosed: done.tunnelsClosed }
}
