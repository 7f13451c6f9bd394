/**
 * Password hashing with scrypt (node:crypto): a random 16-byte salt per password and the
 * parameters stored next to the hash, `scrypt$N$r$p$salt$hash` (base64url), so the cost can be
 * raised later without breaking old hashes.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

/** scrypt cost parameters (N: CPU/memory cost, r: block size, p: parallelism). */
export interface ScryptParams {
  N: number
  r: number
  p: number
}

/**
 * N = 2^15, r = 8, p = 1: 32 MiB and roughly 0.1–0.3 s per hash on a small server. OWASP's
 * list starts at N = 2^17 (128 MiB) for p = 1; raise N with the store's `scrypt` option where
 * memory and login latency allow. Tests lower it to keep the suite fast.
 */
export const DEFAULT_SCRYPT: ScryptParams = { N: 1 << 15, r: 8, p: 1 }
const KEY_LENGTH = 32

function derive (password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 }
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, options, (err, key) => err ? reject(err) : resolve(key))
  })
}

/** A new `scrypt$N$r$p$salt$hash` string for `password` (NFC-normalised), with a fresh salt. */
export async function hashPassword (password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt, params)
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/** True when `password` matches `stored`; false for a malformed stored hash. */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number]
  if (![N, r, p].every(n => Number.isSafeInteger(n) && n > 0)) return false
  const salt = Buffer.from(parts[4]!, 'base64url')
  const expected = Buffer.from(parts[5]!, 'base64url')
  const key = await derive(password, salt, { N, r, p })
  return key.length === expected.length && timingSafeEqual(key, expected)
}

/** A valid hash of nothing anyone can type: used to spend the same time on unknown user names. */
let dummy: Promise<string> | undefined
export function dummyHash (params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'), params)
  return dummy
}
