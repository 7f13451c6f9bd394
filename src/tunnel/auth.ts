/**
 * Token authentication without the token on the wire.
 *
 * A token never leaves the client: it sends a public token id and an HMAC over the relay's
 * fresh nonce and the TLS channel binding, so a proof can neither be replayed nor relayed by
 * a man in the middle. The relay resolves token ids through an Authenticator, the seam where
 * per-user accounts plug in (token → principal).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** Who a token belongs to. */
export interface Principal {
  /** Stable identifier (a user id, or `token-N` for relay-level tokens); accounting is keyed by it. */
  id: string
  /** Display name, shown to the client in `welcome` and in relay events. */
  name: string
  /** A relay-level token (from --token or the data dir), not a user account: no plan limits apply. */
  builtin?: boolean
}

/** What an Authenticator knows about a token: the key to check its proof with, and whose it is. */
export interface Credential {
  /** HMAC key derived from the token (tokenKey()). */
  key: Buffer
  /** Whose token it is. */
  principal: Principal
}

/** Resolves a token id to its verification key and principal, or undefined when unknown or revoked. */
export interface Authenticator {
  /** The credential for a token id (see tokenId()), or undefined when unknown or revoked. */
  resolve (tokenId: string): Promise<Credential | undefined> | Credential | undefined
}

const AUTH_LABEL = 'mport-auth-v1'

/** A new random access token. */
export function generateToken (): string {
  return 'mpt_' + randomBytes(24).toString('base64url')
}

/** Public identifier of a token: safe to send and to log. */
export function tokenId (token: string): string {
  return createHash('sha256').update('mport-token-id\0').update(token).digest('base64url').slice(0, 22)
}

/** The HMAC key both sides derive from a token. */
export function tokenKey (token: string): Buffer {
  return createHash('sha256').update('mport-token-key\0').update(token).digest()
}

/** HMAC-SHA256(key, label ‖ nonce ‖ channel binding). */
export function authProof (key: Buffer, nonce: Buffer, binding: Buffer): Buffer {
  return createHmac('sha256', key).update(AUTH_LABEL).update(nonce).update(binding).digest()
}

/** Constant-time check of a proof. */
export function verifyProof (key: Buffer, nonce: Buffer, binding: Buffer, proof: Buffer): boolean {
  const expected = authProof(key, nonce, binding)
  return proof.length === expected.length && timingSafeEqual(proof, expected)
}

/** An Authenticator for a fixed set of tokens (the relay's generated token, or tokens from config). */
export class StaticTokens implements Authenticator {
  readonly #byId = new Map<string, Credential>()

  constructor (tokens: Iterable<{ token: string, principal?: Principal }>) {
    let n = 0
    for (const { token, principal } of tokens) {
      n++
      this.#byId.set(tokenId(token), { key: tokenKey(token), principal: { ...(principal ?? { id: `token-${n}`, name: `token ${n}` }), builtin: true } })
    }
  }

  resolve (id: string): Credential | undefined {
    return this.#byId.get(id)
  }
}

/** Tries each Authenticator in turn: the relay's own tokens first, then user accounts. */
export class AnyAuthenticator implements Authenticator {
  readonly #list: Authenticator[]
  constructor (...list: Authenticator[]) {
    this.#list = list
  }

  async resolve (id: string): Promise<Credential | undefined> {
    for (const a of this.#list) {
      const c = await a.resolve(id)
      if (c !== undefined) return c
    }
    return undefined
  }
}

/**
 * Counts failed attempts per source address in a sliding window and refuses further attempts
 * past the limit. The map is bounded: the oldest entries go first.
 */
export class FailureLimiter {
  readonly #max: number
  readonly #windowMs: number
  readonly #maxEntries: number
  readonly #failures = new Map<string, number[]>()

  constructor (maxFailures = 5, windowMs = 60_000, maxEntries = 10_000) {
    this.#max = maxFailures
    this.#windowMs = windowMs
    this.#maxEntries = maxEntries
  }

  /** 0 when `addr` may try now, else how many ms until it may. */
  retryAfter (addr: string, now = Date.now()): number {
    const times = this.#recent(addr, now)
    if (times.length < this.#max) return 0
    return times[0]! + this.#windowMs - now
  }

  /** Counts one failed attempt from `addr` (ms timestamps; `now` for tests). */
  fail (addr: string, now = Date.now()): void {
    const times = this.#recent(addr, now)
    times.push(now)
    this.#failures.delete(addr)
    this.#failures.set(addr, times)
    if (this.#failures.size > this.#maxEntries) this.#failures.delete(this.#failures.keys().next().value!)
  }

  /** Forgets `addr`'s failures after a successful attempt. */
  succeed (addr: string): void {
    this.#failures.delete(addr)
  }

  #recent (addr: string, now: number): number[] {
    const times = (this.#failures.get(addr) ?? []).filter(t => now - t < this.#windowMs)
    if (times.length === 0) this.#failures.delete(addr)
    return times
  }
}
