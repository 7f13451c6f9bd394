/**
 * The relay's RelayPolicy backed by the store: plan limits and month totals come from the
 * database, usage goes to a UsageRecorder (flushed in batches), and a token stays valid while
 * the store still resolves it. Built-in relay tokens (not user accounts) are unlimited.
 */
import type { Principal } from 'mport/relay'
import { UNLIMITED, type PlanLimits, type RelayPolicy, type UsageCounts } from 'mport/relay'
import type { StoreAuthenticator } from './authenticator.js'
import type { Store } from './types.js'
import type { UsageRecorder } from './usage-recorder.js'

/** The relay's RelayPolicy over the store: plan limits, reservations and usage per user. */
export class StoreRelayPolicy implements RelayPolicy {
  readonly #store: Store
  readonly #usage: UsageRecorder
  readonly #auth: StoreAuthenticator
  readonly #isBuiltin: (tokenId: string) => boolean

  /**
   * `builtinTokens`: the relay's own tokens, which the store does not know: their ids, or a
   * function asked each time (the set a config reload changes).
   */
  constructor (store: Store, usage: UsageRecorder, auth: StoreAuthenticator, builtinTokens: Iterable<string> | ((tokenId: string) => boolean) = []) {
    this.#store = store
    this.#usage = usage
    this.#auth = auth
    const ids = typeof builtinTokens === 'function' ? undefined : new Set(builtinTokens)
    this.#isBuiltin = ids === undefined ? builtinTokens as (tokenId: string) => boolean : id => ids.has(id)
  }

  async limits (p: Principal): Promise<PlanLimits> {
    return p.builtin === true ? UNLIMITED : await this.#store.effectiveLimits(p.id)
  }

  async monthBytes (p: Principal): Promise<number> {
    return p.builtin === true ? 0 : await this.#store.monthBytes(p.id)
  }

  async stillValid (tokenId: string): Promise<boolean> {
    return this.#isBuiltin(tokenId) || await this.#auth.isValid(tokenId)
  }

  tunnelUp (p: Principal, tunnel: string): void {
    if (p.builtin !== true) this.#usage.tunnelUp(p.id, tunnel)
  }

  tunnelDown (p: Principal, tunnel: string): void {
    if (p.builtin !== true) this.#usage.tunnelDown(p.id, tunnel)
  }

  record (p: Principal, tunnel: string, counts: UsageCounts): void {
    if (p.builtin !== true) this.#usage.add(p.id, tunnel, counts)
  }

  async reservations (): Promise<Array<{ kind: 'subdomain' | 'port', value: string, userId: string }>> {
    return (await this.#store.listReservations()).map(r => ({ kind: r.kind, value: r.value, userId: r.userId }))
  }
}
