/**
 * HTTP basic auth in front of a tunnel (`--basic-auth user:pass`). The relay never keeps the
 * password: the client's value is hashed with scrypt and a random salt into a self-describing
 * htpasswd-like line, `user:$scrypt$ln=14,r=8,p=1$<salt>$<key>` (base64url), and visitors'
 * `Authorization` headers are checked against it in constant time.
 *
 * scrypt is deliberately slow, so verification runs on libuv's thread pool (async), and
 * BasicAuthChecker remembers recently accepted header values (by SHA-256) so a browser that
 * repeats the same header on every request does not cost a key derivation each time.
 */
import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'
import { InvalidConfigError } from '../errors.js'

/** scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB, tens of ms): OWASP's minimum for scrypt. */
export const SCRYPT_PARAMS = { ln: 14, r: 8, p: 1 } as const
const KEY_LENGTH = 32
const SALT_LENGTH = 16
/** Ceilings for parameters read from a stored line, so a bad line cannot exhaust memory. */
const MAX_LN = 20
const MAX_R = 32
const MAX_P = 16
const MAX_SCRYPT_MEMORY = 64 * 1024 * 1024
/** Longest Authorization header value considered; longer ones fail without hashing. */
export const MAX_AUTH_HEADER = 4096

export interface BasicCredential {
  user: string
  pass: string
}

interface StoredHash {
  user: string
  ln: number
  r: number
  p: number
  salt: Buffer
  key: Buffer
}

/**
 * Parses a `user:pass` value from the command line or a config file. The user may not contain
 * `:` (RFC 7617); the password may. Error messages never contain the password.
 */
export function parseBasicAuthValue (value: string, key = 'basic-auth'): BasicCredential {
  const colon = value.indexOf(':')
  if (colon < 0) throw new InvalidConfigError(key, 'expected user:password (no ":" found)')
  const user = value.slice(0, colon)
  const pass = value.slice(colon + 1)
  if (user === '') throw new InvalidConfigError(key, 'the user name before ":" is empty')
  if (pass === '') throw new InvalidConfigError(key, `the password for user ${JSON.stringify(user)} is empty`)
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(user)) throw new InvalidConfigError(key, 'the user name contains control characters')
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(pass)) throw new InvalidConfigError(key, `the password for user ${JSON.stringify(user)} contains control characters`)
  if (Buffer.byteLength(value) > 1024) throw new InvalidConfigError(key, 'user:password is longer than 1024 bytes')
  return { user, pass }
}

/** Hashes a credential into the stored form `user:$scrypt$ln=14,r=8,p=1$<salt>$<key>`. Synchronous: run it once at startup. */
export function hashPassword (user: string, pass: string): string {
  if (user === '' || user.includes(':')) throw new InvalidConfigError('basic-auth', 'the user name must be non-empty and may not contain ":"')
  const salt = randomBytes(SALT_LENGTH)
  const { ln, r, p } = SCRYPT_PARAMS
  const key = scryptSync(pass.normalize('NFC'), salt, KEY_LENGTH, scryptOptions(ln, r, p))
  return `${user}:$scrypt$ln=${ln},r=${r},p=${p}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

/** True when `stored` is a well-formed line that hashPassword could have produced. */
export function isStoredHash (stored: string): boolean {
  return parseStored(stored) !== undefined
}

/** The `Authorization` header value a client sends for `user:pass`. */
export function basicAuthHeader (user: string, pass: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')
}

/** Decodes `Basic <base64>` into user and password; undefined for anything else. */
export function parseAuthorization (headerValue: string | undefined): BasicCredential | undefined {
  if (headerValue === undefined || headerValue.length > MAX_AUTH_HEADER) return undefined
  const m = /^[ \t]*basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(headerValue)
  if (m === null) return undefined
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) }
}

/**
 * Checks a visitor's `Authorization` header against a stored line. Constant time in the
 * credential: the key is derived and compared even when the user name is wrong.
 * Resolves false for a missing or malformed header; rejects only when `stored` is malformed.
 */
export async function verifyBasicAuth (headerValue: string | undefined, stored: string): Promise<boolean> {
  const s = parseStored(stored)
  if (s === undefined) throw new InvalidConfigError('basic-auth', 'stored credential is not a valid mport scrypt line')
  const cred = parseAuthorization(headerValue)
  const derived = await deriveKey(cred?.pass ?? '', s)
  const userOk = timingSafeEqual(sha256(cred?.user ?? ''), sha256(s.user))
  const keyOk = timingSafeEqual(derived, s.key)
  return cred !== undefined && userOk && keyOk
}

/**
 * A tunnel's basic-auth gate: one or more stored lines, and a bounded memory of header values
 * that passed recently (kept as SHA-256 digests, never in clear).
 */
export class BasicAuthChecker {
  readonly #stored: string[]
  readonly #accepted = new Map<string, number>()
  readonly #cacheSize: number
  readonly #cacheTtlMs: number

  constructor (stored: string | readonly string[], opts: { cacheSize?: number, cacheTtlMs?: number } = {}) {
    this.#stored = typeof stored === 'string' ? [stored] : [...stored]
    if (this.#stored.length === 0) throw new InvalidConfigError('basic-auth', 'no credentials given')
    for (const line of this.#stored) {
      if (!isStoredHash(line)) throw new InvalidConfigError('basic-auth', 'stored credential is not a valid mport scrypt line')
    }
    this.#cacheSize = opts.cacheSize ?? 256
    this.#cacheTtlMs = opts.cacheTtlMs ?? 10 * 60_000
  }

  /** The stored lines (salted scrypt hashes, never a password), to hand the same gate to another process. */
  get stored (): readonly string[] { return this.#stored }

  /** Resolves true when the header matches one of the stored credentials. */
  async check (headerValue: string | undefined, now = Date.now()): Promise<boolean> {
    if (headerValue === undefined || headerValue.length > MAX_AUTH_HEADER) return false
    const digest = sha256(headerValue).toString('base64')
    const seen = this.#accepted.get(digest)
    if (seen !== undefined && now - seen < this.#cacheTtlMs) return true
    let ok = false
    for (const line of this.#stored) {
      if (await verifyBasicAuth(headerValue, line)) ok = true
    }
    if (ok) {
      this.#accepted.delete(digest)
      this.#accepted.set(digest, now)
      while (this.#accepted.size > this.#cacheSize) {
        const oldest = this.#accepted.keys().next().value
        if (oldest === undefined) break
        this.#accepted.delete(oldest)
      }
    }
    return ok
  }

  /** Number of remembered header values (for tests and metrics). */
  get cached (): number {
    return this.#accepted.size
  }
}

function parseStored (stored: string): StoredHash | undefined {
  const m = /^([^:]+):\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9_-]{16,88})\$([A-Za-z0-9_-]{22,88})$/.exec(stored)
  if (m === null) return undefined
  const ln = Number(m[2])
  const r = Number(m[3])
  const p = Number(m[4])
  if (ln < 1 || ln > MAX_LN || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return undefined
  if (128 * 2 ** ln * r > MAX_SCRYPT_MEMORY) return undefined
  const salt = Buffer.from(m[5]!, 'base64url')
  const key = Buffer.from(m[6]!, 'base64url')
  if (key.length < 16) return undefined
  return { user: m[1]!, ln, r, p, salt, key }
}

function scryptOptions (ln: number, r: number, p: number): { N: number, r: number, p: number, maxmem: number } {
  const N = 2 ** ln
  return { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }
}

function deriveKey (pass: string, s: StoredHash): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(pass.normalize('NFC'), s.salt, s.key.length, scryptOptions(s.ln, s.r, s.p), (err, key) => {
      if (err !== null) reject(err)
      else resolve(key)
    })
  })
}

function sha256 (s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest()
}
