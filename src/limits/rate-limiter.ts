/**
 * New-connection rate limits for visitors: a token bucket for everyone (per tunnel or per user,
 * as the relay chooses) and one per visitor address. A refused connection costs nothing: tokens
 * are taken from both buckets or from neither.
 *
 * Memory is bounded: at most `maxTrackedIps` address buckets, the least recently seen evicted
 * first. An evicted address starts again with a full bucket, so the bound should sit well above
 * the number of addresses seen per minute. Addresses are normalised (`::ffff:1.2.3.4` is
 * `1.2.3.4`, IPv6 in RFC 5952 form), and IPv6 visitors are counted per /64 by default: one host
 * usually holds a whole /64, so per-address limits on IPv6 would be free to evade.
 */
import { parseCidr, parseIp, formatCidr, formatIp } from '../access/cidr.js'
import { InvalidConfigError } from '../errors.js'
import { TokenBucket } from './token-bucket.js'

/** Options of {@link ConnectionRateLimiter}. A limit of 0 refuses every connection. */
export interface ConnectionRateLimiterOptions {
  /** New connections per minute for all addresses together; null/undefined = no overall limit. */
  perMinute?: number | null
  /** New connections per minute from one address (IPv6: one /64); null/undefined = none. */
  perIpPerMinute?: number | null
  /** Most address buckets kept (default 10000); the least recently seen go first. */
  maxTrackedIps?: number
  /** IPv6 addresses are grouped by this prefix length (default 64; 128 = per address). */
  ipv6PrefixLength?: number
  /** Clock in ms used when allow()/check() get no `now`. Default `performance.now`. */
  now?: () => number
}

/** The answer of ConnectionRateLimiter.check: allowed, or which limit refused and when to retry. */
export type RateVerdict =
  | { ok: true }
  | {
    ok: false
    /** Which limit refused: the overall one or the visitor address's. */
    scope: 'all' | 'ip'
    /** The configured limit that was reached, in connections per minute. */
    perMinute: number
    /** ms until one more connection would be allowed. */
    retryAfterMs: number
    /** E.g. "new-connection rate limit of 60 per minute reached for 203.0.113.7; retry in 1 s". */
    message: string
  }

const DEFAULT_MAX_TRACKED = 10_000

/**
 * Limits how fast visitors open new connections, overall and per address (IPv6 per /64).
 * Each bucket holds a minute's worth, so a quiet limit of 60 admits 60 at once, then 1 per second.
 */
export class ConnectionRateLimiter {
  /** The overall limit in connections per minute; null for none. */
  readonly perMinute: number | null
  /** The per-address limit in connections per minute; null for none. */
  readonly perIpPerMinute: number | null
  readonly #maxTracked: number
  readonly #v6Prefix: number
  readonly #clock: () => number
  /** The time of the current allow() call; the buckets read it as their clock. */
  #at = 0
  /** The overall bucket, made at the first check so that it starts on the callers' clock. */
  #all: TokenBucket | undefined
  /** Address key → bucket, least recently seen first (Map insertion order). */
  readonly #ips = new Map<string, TokenBucket>()

  constructor (opts: ConnectionRateLimiterOptions) {
    this.perMinute = checkLimit('perMinute', opts.perMinute)
    this.perIpPerMinute = checkLimit('perIpPerMinute', opts.perIpPerMinute)
    this.#maxTracked = opts.maxTrackedIps ?? DEFAULT_MAX_TRACKED
    if (!Number.isInteger(this.#maxTracked) || this.#maxTracked < 1) throw new InvalidConfigError('maxTrackedIps', `must be an integer ≥ 1, got ${opts.maxTrackedIps}`)
    this.#v6Prefix = opts.ipv6PrefixLength ?? 64
    if (!Number.isInteger(this.#v6Prefix) || this.#v6Prefix < 1 || this.#v6Prefix > 128) throw new InvalidConfigError('ipv6PrefixLength', `must be an integer from 1 to 128, got ${opts.ipv6PrefixLength}`)
    this.#clock = opts.now ?? (() => performance.now())
  }

  /**
   * May a new connection from `ip` start now? Counts it when it may. An unknown address
   * (undefined) is held only to the overall limit.
   */
  allow (ip: string | undefined, now?: number): boolean {
    return this.check(ip, now).ok
  }

  /** Like allow(), with the reason and the retry delay when refused. */
  check (ip: string | undefined, now?: number): RateVerdict {
    this.#at = now ?? this.#clock()
    if (this.#all === undefined && this.perMinute !== null && this.perMinute > 0) this.#all = this.#bucket(this.perMinute)
    const key = ip === undefined ? undefined : this.key(ip)
    if (key !== undefined && this.perIpPerMinute === 0) return this.#refuse('ip', 0, undefined, key)
    if (this.perMinute === 0) return this.#refuse('all', 0, undefined, key)
    const ipBucket = key === undefined || this.perIpPerMinute === null ? undefined : this.#ipBucket(key)
    if (ipBucket !== undefined && ipBucket.tokens < 1) return this.#refuse('ip', this.perIpPerMinute!, ipBucket, key)
    if (this.#all !== undefined && this.#all.tokens < 1) return this.#refuse('all', this.perMinute!, this.#all, key)
    ipBucket?.tryTake(1)
    this.#all?.tryTake(1)
    return { ok: true }
  }

  /**
   * The key an address is counted under: IPv4 dotted quad (IPv4-mapped IPv6 folded), IPv6 as
   * its /64 (or `ipv6PrefixLength`) network. Text that is not an address is its own key.
   */
  key (ip: string): string {
    const parsed = parseIp(ip)
    if (parsed === undefined) return ip
    if (parsed.family === 4 || this.#v6Prefix === 128) return formatIp(parsed)
    return formatCidr(parseCidr(`${formatIp(parsed)}/${this.#v6Prefix}`))
  }

  /** Address buckets currently kept (≤ maxTrackedIps). */
  get trackedIps (): number { return this.#ips.size }

  /** Is an address bucket kept for this address (after normalisation)? */
  tracks (ip: string): boolean { return this.#ips.has(this.key(ip)) }

  #ipBucket (key: string): TokenBucket {
    let bucket = this.#ips.get(key)
    if (bucket !== undefined) {
      this.#ips.delete(key)
    } else {
      bucket = this.#bucket(this.perIpPerMinute!)
      if (this.#ips.size >= this.#maxTracked) this.#ips.delete(this.#ips.keys().next().value!)
    }
    this.#ips.set(key, bucket)
    return bucket
  }

  #bucket (perMinute: number): TokenBucket {
    return new TokenBucket({ ratePerSecond: perMinute / 60, burst: Math.max(1, perMinute), now: () => this.#at })
  }

  #refuse (scope: 'all' | 'ip', perMinute: number, bucket: TokenBucket | undefined, key: string | undefined): RateVerdict {
    const retryAfterMs = bucket === undefined ? Infinity : Math.ceil(((1 - bucket.tokens) / bucket.rate) * 1000)
    const who = scope === 'ip' ? ` for ${key}` : ''
    const retry = retryAfterMs === Infinity ? '' : `; retry in ${Math.max(1, Math.ceil(retryAfterMs / 1000))} s`
    return { ok: false, scope, perMinute, retryAfterMs, message: `new-connection rate limit of ${perMinute} per minute reached${who}${retry}` }
  }
}

function checkLimit (name: string, value: number | null | undefined): number | null {
  if (value === undefined || value === null) return null
  if (!(value >= 0) || !Number.isFinite(value)) throw new InvalidConfigError(name, `must be a finite number ≥ 0 or null, got ${value}`)
  return value
}
