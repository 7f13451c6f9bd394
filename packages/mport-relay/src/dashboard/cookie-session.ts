/**
 * Browser sessions for the dashboard: the login session (the same `mps_…` session the API's
 * Bearer callers use) carried in an HttpOnly, SameSite=Strict cookie, and the CSRF token that a
 * cookie-authenticated state-changing request must send in `X-CSRF-Token`. The token is derived
 * from the session secret (a keyed hash, nothing stored): it survives a relay restart with the
 * session, and reading it reveals nothing of the session itself.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

/** The cookie that carries the session. */
export const SESSION_COOKIE = 'mport_session'
/** The header a cookie-authenticated POST/PUT/PATCH/DELETE must carry. */
export const CSRF_HEADER = 'x-csrf-token'
/** Methods that change nothing: no CSRF token needed. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])

/** The session token in a Cookie header, if there is one of ours. */
export function sessionFromCookie (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() !== SESSION_COOKIE) continue
    const value = part.slice(eq + 1).trim()
    // Only our own token shape: anything else is not a session (and is never echoed back).
    return /^mps_[A-Za-z0-9_-]{16,128}$/.test(value) ? value : undefined
  }
  return undefined
}

/** Set-Cookie for a new session: HttpOnly, SameSite=Strict, Secure when the page is served over TLS. */
export function sessionCookie (raw: string, maxAgeMs: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${raw}; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`
}

/** Set-Cookie that removes the session cookie. */
export function clearedCookie (secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`
}

/** The CSRF token of a session. */
export function csrfToken (rawSession: string): string {
  return createHash('sha256').update('mport-csrf\0').update(rawSession).digest('base64url')
}

/** True when `given` is the CSRF token of the session (compared in constant time). */
export function csrfMatches (rawSession: string, given: string | string[] | undefined): boolean {
  if (typeof given !== 'string') return false
  const want = Buffer.from(csrfToken(rawSession))
  const got = Buffer.from(given)
  return got.length === want.length && timingSafeEqual(got, want)
}
