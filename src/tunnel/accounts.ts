/**
 * Per-user limits on the relay: the plan's tunnel and connection counts, a monthly transfer
 * quota, a bandwidth shared by all of a user's connections (shaped by backpressure), and a
 * new-connection rate per tunnel and per visitor address. Usage is counted as data flows, not
 * only when a connection ends, so a quota can stop a transfer midway.
 *
 * The relay asks a RelayPolicy (backed by the store in production) for limits and hands it the
 * counts; without a policy nothing is limited.
 */
import { ConnectionRateLimiter } from '../limits/rate-limiter.js'
import { TokenBucket } from '../limits/token-bucket.js'
import { QuotaExceededError } from '../errors.js'
import type { Principal } from './auth.js'

/** A user's plan; null means unlimited. */
export interface PlanLimits {
  /** Tunnels open at once, across all of the user's clients. */
  maxTunnels: number | null
  /** Visitor connections open at once, across all of the user's tunnels. */
  maxConnections: number | null
  /** Bytes (in + out) per calendar month; reaching it cuts live connections. */
  monthlyBytes: number | null
  /** Bandwidth in bytes per second, shared by all of the user's connections (0 means unlimited). */
  bandwidthBytesPerSecond: number | null
  /** New visitor connections per minute, per tunnel (0 means unlimited). */
  connectionsPerMinute: number | null
}

/** Usage to add to a user's record: bytes each way and new connections. */
export interface UsageCounts { bytesIn?: number, bytesOut?: number, connections?: number }

/** Where the relay gets each user's plan, month total, token validity and reservations, and where it reports usage. */
export interface RelayPolicy {
  /** The user's plan; asked when the user connects and on every accounting round. */
  limits (principal: Principal): Promise<PlanLimits>
  /** Bytes (in + out) the user moved this calendar month, as recorded so far. */
  monthBytes (principal: Principal): Promise<number>
  /** False once the token is revoked or the user disabled: live sessions are then cut. */
  stillValid (tokenId: string): Promise<boolean>
  /** A tunnel of the user opened; for live tunnel listings. */
  tunnelUp (principal: Principal, tunnel: string): void
  /** A tunnel of the user closed. */
  tunnelDown (principal: Principal, tunnel: string): void
  /** Usage to add: a new connection, or the bytes that flowed since the last report (deltas, not totals). */
  record (principal: Principal, tunnel: string, counts: UsageCounts): void
  /** Subdomains and ports reserved by users: theirs across days, nobody else's. */
  reservations (): Promise<Array<{ kind: 'subdomain' | 'port', value: string, userId: string }>>
}

/** Live byte counters of one visitor connection (updated by the proxy as data flows). */
export interface LiveCounters { aToB: number, bToA: number }

/** A visitor connection as its user's account tracks it. */
export interface LiveConnection {
  readonly tunnel: string
  readonly counters: LiveCounters
  /** What was already reported to the policy (set by the account). */
  reportedIn: number
  reportedOut: number
  /** Ends the connection (the monthly quota ran out). */
  abort (err: Error): void
}

/** A plan with no limits: what every user has on a relay without a policy. */
export const UNLIMITED: PlanLimits = { maxTunnels: null, maxConnections: null, monthlyBytes: null, bandwidthBytesPerSecond: null, connectionsPerMinute: null }

/** One user's live state on this relay. */
export class Account {
  readonly principal: Principal
  /** The plan as the policy last gave it. */
  limits: PlanLimits = UNLIMITED
  /** Shared by every connection of the user; undefined when bandwidth is unlimited. */
  bucket: TokenBucket | undefined
  /** Tunnels the user has open on this relay. */
  tunnels = 0
  readonly #live = new Set<LiveConnection>()
  #monthBase = 0
  #monthLive = 0
  #perIp: number | null

  constructor (principal: Principal, perIpPerMinute: number | null) {
    this.principal = principal
    this.#perIp = perIpPerMinute
  }

  /** Visitor connections the user has open on this relay. */
  get connections (): number { return this.#live.size }
  /** Bytes this month: recorded before, plus what flowed since. */
  get monthBytes (): number { return this.#monthBase + this.#monthLive }

  /** New limits and month total from the policy; bandwidth changes apply to live connections at once. */
  update (limits: PlanLimits, monthBytes: number): void {
    this.limits = limits
    this.#monthBase = monthBytes
    this.#monthLive = 0
    const rate = limits.bandwidthBytesPerSecond
    if (rate === null || rate <= 0) {
      this.bucket?.setRate(Infinity)
    } else if (this.bucket === undefined) {
      this.bucket = new TokenBucket({ ratePerSecond: rate, burst: burstFor(rate) })
    } else {
      // The burst follows the rate: a lowered plan must not keep the old plan's quarter second.
      this.bucket.setRate(rate, burstFor(rate))
    }
  }

  /** New connections per minute from one visitor address (a reload changed it); tunnels' limiters are made anew by the caller. */
  setPerIpPerMinute (perIpPerMinute: number | null): void {
    this.#perIp = perIpPerMinute
  }

  /** A limiter for one tunnel's new connections, per the plan (undefined when unlimited). */
  rateLimiter (): ConnectionRateLimiter | undefined {
    const perMinute = this.limits.connectionsPerMinute
    if ((perMinute === null || perMinute <= 0) && this.#perIp === null) return undefined
    return new ConnectionRateLimiter({ perMinute: perMinute !== null && perMinute > 0 ? perMinute : null, perIpPerMinute: this.#perIp })
  }

  /** Throws QuotaExceededError when one more tunnel would break the plan. */
  checkTunnel (): void {
    const max = this.limits.maxTunnels
    if (max !== null && this.tunnels >= max) throw new QuotaExceededError('maxTunnels', max, `your plan allows ${max} tunnel${max === 1 ? '' : 's'}`)
  }

  /** Throws QuotaExceededError when a new visitor connection would break the plan. */
  checkConnection (): void {
    const max = this.limits.maxConnections
    if (max !== null && this.#live.size >= max) throw new QuotaExceededError('maxConnections', max, `your plan allows ${max} concurrent connections`)
    this.checkMonth()
  }

  /** Throws QuotaExceededError once the month's bytes reach the plan's `monthlyBytes`. */
  checkMonth (): void {
    const quota = this.limits.monthlyBytes
    if (quota !== null && this.monthBytes >= quota) throw new QuotaExceededError('monthlyBytes', quota, `monthly transfer quota of ${formatGiB(quota)} reached`)
  }

  /** Tracks a visitor connection until untrack(). */
  track (c: LiveConnection, policy: RelayPolicy | undefined): void {
    this.#live.add(c)
    policy?.record(this.principal, c.tunnel, { connections: 1 })
  }

  /** The connection ended: reports its last bytes and forgets it. */
  untrack (c: LiveConnection, policy: RelayPolicy | undefined): void {
    this.#report(c, policy)
    this.#live.delete(c)
  }

  /**
   * Reports what flowed since the last sample; when the monthly quota is reached, aborts every
   * live connection and returns the error (the relay then closes the user's tunnels).
   */
  sample (policy: RelayPolicy | undefined): QuotaExceededError | undefined {
    for (const c of this.#live) this.#report(c, policy)
    try {
      this.checkMonth()
      return undefined
    } catch (err) {
      for (const c of [...this.#live]) c.abort(err as Error)
      return err as QuotaExceededError
    }
  }

  #report (c: LiveConnection, policy: RelayPolicy | undefined): void {
    const dIn = c.counters.aToB - c.reportedIn
    const dOut = c.counters.bToA - c.reportedOut
    if (dIn === 0 && dOut === 0) return
    c.reportedIn = c.counters.aToB
    c.reportedOut = c.counters.bToA
    this.#monthLive += dIn + dOut
    policy?.record(this.principal, c.tunnel, { bytesIn: dIn, bytesOut: dOut })
  }
}

/** A quarter second of burst: smooth enough, and small enough to shape within 10%. */
function burstFor (rate: number): number {
  return Math.max(16 * 1024, Math.round(rate / 4))
}

function formatGiB (n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`
}

/** A live client session, as the accounting round sees it. */
export interface LiveSession {
  tokenId: string
  /** Ends the session because its token no longer resolves. */
  revoke (): void
}

export interface AccountingHooks {
  sessions (): Iterable<LiveSession>
  /** The user's monthly quota ran out: close their tunnels and tell their clients. */
  quotaExceeded (principal: Principal, err: QuotaExceededError): void
  warn (err: Error): void
}

/**
 * The relay's accounts: one Account per principal, the reservation table, and the periodic
 * round that samples usage, enforces quotas and (every 5th round) re-checks tokens and
 * refreshes plans and reservations. Rounds never overlap, however slow the store.
 */
export class Accounts {
  readonly #policy: RelayPolicy | undefined
  #perIp: number | null
  readonly #byPrincipal = new Map<string, Account>()
  /** `kind:value` → user id. */
  #reserved = new Map<string, string>()
  #ticks = 0
  #running = false

  constructor (policy: RelayPolicy | undefined, perIpPerMinute: number | null) {
    this.#policy = policy
    this.#perIp = perIpPerMinute
  }

  get (principalId: string): Account | undefined {
    return this.#byPrincipal.get(principalId)
  }

  /** The live account of a principal, with fresh limits from the policy. */
  async for (principal: Principal): Promise<Account> {
    let account = this.#byPrincipal.get(principal.id)
    if (account === undefined) {
      account = new Account(principal, this.#perIp)
      this.#byPrincipal.set(principal.id, account)
    }
    if (this.#policy !== undefined) account.update(await this.#policy.limits(principal), await this.#policy.monthBytes(principal))
    return account
  }

  /** New connections per minute from one visitor address, for every account from now on (a reload). */
  setPerIpPerMinute (perIpPerMinute: number | null): void {
    this.#perIp = perIpPerMinute
    for (const a of this.#byPrincipal.values()) a.setPerIpPerMinute(perIpPerMinute)
  }

  /**
   * Asks the policy for every account's plan now (after the plan defaults changed): a lower
   * bandwidth shapes running transfers at once (the shared bucket's rate changes).
   */
  async refreshLimits (warn: (err: Error) => void): Promise<void> {
    const policy = this.#policy
    if (policy === undefined) return
    for (const account of this.#byPrincipal.values()) {
      try {
        const flowed = account.monthBytes
        account.update(await policy.limits(account.principal), Math.max(flowed, await policy.monthBytes(account.principal)))
      } catch (err) {
        warn(err as Error)
      }
    }
  }

  /** Who reserved a subdomain or port, if anyone. */
  reservedBy (kind: 'subdomain' | 'port', value: string | number): string | undefined {
    return this.#reserved.get(`${kind}:${String(value).toLowerCase()}`)
  }

  async refreshReservations (warn: (err: Error) => void): Promise<void> {
    if (this.#policy === undefined) return
    try {
      this.#reserved = new Map((await this.#policy.reservations()).map(r => [`${r.kind}:${r.value.toLowerCase()}`, r.userId]))
    } catch (err) {
      warn(err as Error)
    }
  }

  /** Reports what flowed since the last sample (and at shutdown, the last counts). */
  sampleAll (): void {
    for (const a of this.#byPrincipal.values()) a.sample(this.#policy)
  }

  async round (hooks: AccountingHooks): Promise<void> {
    if (this.#running) return
    this.#running = true
    try {
      await this.#round(hooks)
    } finally {
      this.#running = false
    }
  }

  async #round (hooks: AccountingHooks): Promise<void> {
    const policy = this.#policy
    this.#ticks++
    for (const account of this.#byPrincipal.values()) {
      const over = account.sample(policy)
      if (over !== undefined) hooks.quotaExceeded(account.principal, over)
    }
    if (policy === undefined || this.#ticks % 5 !== 0) return
    await this.refreshReservations(hooks.warn)
    for (const s of [...hooks.sessions()]) {
      try {
        if (!await policy.stillValid(s.tokenId)) s.revoke()
      } catch (err) {
        hooks.warn(err as Error)
      }
    }
    await this.refreshLimits(hooks.warn)
  }
}
