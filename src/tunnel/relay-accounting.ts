/**
 * Accounting and revocation on the relay: the periodic round (usage sampled, quotas enforced,
 * tokens re-checked, plans and reservations refreshed; accounts.ts), and cutting the sessions
 * of a revoked token or a disabled user, at once or when the round finds them.
 */
import { AuthFailedError, type QuotaExceededError } from '../errors.js'
import type { Session } from '../mux/session.js'
import type { Accounts, RelayPolicy } from './accounts.js'
import type { Principal } from './auth.js'
import type { ControlChannel } from './control.js'
import type { ClientMessage } from './messages.js'
import { hangUpAfterGrace, refuseClient } from './relay-handshake.js'

/** A live client connection, as accounting sees it. */
export interface AccountedConn {
  readonly session: Session
  readonly control: ControlChannel<ClientMessage>
  readonly tokenId: string
  readonly lease: { readonly principal: Principal }
}

export interface RelayAccountingOptions {
  accounts: Accounts
  policy: RelayPolicy | undefined
  intervalMs: number
  /** The live client connections. */
  conns (): Iterable<AccountedConn>
  /** The user's monthly quota ran out: close their tunnels and tell their clients. */
  quotaExceeded (principal: Principal, err: QuotaExceededError): void
  warn (err: Error): void
}

export class RelayAccounting {
  readonly #o: RelayAccountingOptions
  #timer: NodeJS.Timeout | undefined

  constructor (options: RelayAccountingOptions) {
    this.#o = options
  }

  /** Loads the reservations, then runs a round every interval. */
  async start (): Promise<void> {
    await this.#o.accounts.refreshReservations(err => this.#o.warn(err))
    this.#timer = setInterval(() => { void this.#round() }, this.#o.intervalMs)
    this.#timer.unref()
  }

  /** No more rounds (the relay is shutting down). */
  stop (): void {
    clearInterval(this.#timer)
  }

  /** Checks the user's live sessions against the policy now (after a token was revoked). */
  async revalidate (principalId: string): Promise<void> {
    const policy = this.#o.policy
    if (policy === undefined) return
    for (const conn of [...this.#o.conns()]) {
      if (conn.lease.principal.id === principalId && !await policy.stillValid(conn.tokenId)) this.disconnect(principalId, conn.tokenId)
    }
  }

  /** Ends the live sessions of a user (all, or those authenticated with `tokenId`); returns how many. */
  disconnect (principalId: string, tokenId?: string): number {
    let n = 0
    for (const conn of [...this.#o.conns()]) {
      if (conn.lease.principal.id !== principalId || (tokenId !== undefined && conn.tokenId !== tokenId)) continue
      n++
      revoke(conn)
    }
    return n
  }

  /** Every interval: usage counted, quotas enforced; every 5th: revoked tokens cut, plans refreshed. */
  async #round (): Promise<void> {
    await this.#o.accounts.round({
      sessions: () => [...this.#o.conns()].map(conn => ({ tokenId: conn.tokenId, revoke: () => revoke(conn) })),
      quotaExceeded: (principal, err) => this.#o.quotaExceeded(principal, err),
      warn: err => this.#o.warn(err),
    })
  }
}

/** Ends a session whose token no longer resolves: the client is told why, then hung up on. */
export function revoke (conn: AccountedConn): void {
  refuseClient(conn.session, conn.control, new AuthFailedError('the token was revoked or its user disabled'))
  hangUpAfterGrace(conn.session)
}
