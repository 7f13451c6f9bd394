/**
 * Plan quotas the relay asks about: before a tunnel is opened, before a visitor connection is
 * accepted, and periodically for live connections (a monthly transfer quota reached mid-transfer
 * ends the connection). Usage comes from callbacks so the gate holds no counters of its own;
 * limits may be a function so plan changes apply to the next question.
 *
 * Refusals carry the `MPORT_ERR_QUOTA_EXCEEDED` code, the limit's name and a sentence for the
 * client ("monthly transfer quota of 10.0 GiB reached"); `quotaError()` turns one into the
 * store's `QuotaExceededError`.
 */
import { formatBytes } from '../cli/output.js'
import { QuotaExceededError } from '../errors.js'
import type { PlanLimits as Limits } from '../tunnel/accounts.js'

/** The limits the gate enforces; null or absent means unlimited. */
export type QuotaLimits = Partial<Pick<Limits, 'maxTunnels' | 'maxConnections' | 'monthlyBytes'>>

export type QuotaLimitName = keyof QuotaLimits

export interface QuotaUsage {
  /** Live visitor connections now, not counting the one being asked about. */
  connections: () => number
  /** Bytes in + out this calendar month (UTC), including live connections' bytes so far. */
  monthlyBytes: () => number
  /** Tunnels open now, not counting the one being asked about (needed for checkNewTunnel). */
  tunnels?: () => number
}

export type QuotaVerdict =
  | { ok: true }
  | {
    ok: false
    code: 'MPORT_ERR_QUOTA_EXCEEDED'
    /** Which limit was reached. */
    limit: QuotaLimitName
    /** Its configured value. */
    value: number
    message: string
  }

export interface QuotaGateOptions {
  limits: QuotaLimits | (() => QuotaLimits)
  usage: QuotaUsage
}

const OK: QuotaVerdict = { ok: true }

export class QuotaGate {
  #limits: QuotaLimits | (() => QuotaLimits)
  readonly #usage: QuotaUsage

  constructor (opts: QuotaGateOptions) {
    this.#limits = opts.limits
    this.#usage = opts.usage
  }

  /** The limits in force now. */
  get limits (): QuotaLimits {
    return typeof this.#limits === 'function' ? this.#limits() : this.#limits
  }

  setLimits (limits: QuotaLimits | (() => QuotaLimits)): void {
    this.#limits = limits
  }

  /** May one more visitor connection start? (concurrent connections, monthly transfer) */
  checkNewConnection (): QuotaVerdict {
    const limits = this.limits
    const max = limits.maxConnections
    if (max != null && this.#usage.connections() + 1 > max) {
      return refuse('maxConnections', max, `concurrent connection limit of ${max} reached`)
    }
    return this.#checkBytes(limits)
  }

  /** May one more tunnel open? (tunnel count, monthly transfer) */
  checkNewTunnel (): QuotaVerdict {
    const limits = this.limits
    const max = limits.maxTunnels
    if (max != null && (this.#usage.tunnels?.() ?? 0) + 1 > max) {
      return refuse('maxTunnels', max, `tunnel limit of ${max} reached`)
    }
    return this.#checkBytes(limits)
  }

  /**
   * May live connections go on? Only the monthly transfer quota ends live connections; a lower
   * connection limit applies to new connections, never to those already open.
   */
  checkLive (): QuotaVerdict {
    return this.#checkBytes(this.limits)
  }

  #checkBytes (limits: QuotaLimits): QuotaVerdict {
    const max = limits.monthlyBytes
    if (max != null && this.#usage.monthlyBytes() >= max) {
      return refuse('monthlyBytes', max, `monthly transfer quota of ${formatBytes(max)} reached`)
    }
    return OK
  }
}

/** The store's error for a refusal, e.g. to throw or to send to the client. */
export function quotaError (verdict: Extract<QuotaVerdict, { ok: false }>): QuotaExceededError {
  return new QuotaExceededError(verdict.limit, verdict.value, verdict.message)
}

function refuse (limit: QuotaLimitName, value: number, message: string): QuotaVerdict {
  return { ok: false, code: 'MPORT_ERR_QUOTA_EXCEEDED', limit, value, message }
}
