/**
 * What the shared HTTPS port asks for when it terminates TLS, and what the shared HTTP port
 * answers ACME HTTP-01 challenges from. Both are small interfaces so a certificate manager
 * (ACME in mport-relay, self-signed per name in the relay core) plugs in without the front
 * knowing where certificates come from; each handshake asks again, so a renewed certificate is
 * used by the next handshake without a restart.
 */
import type tls from 'node:tls'

/** Picks the certificate for one TLS handshake by its server name (SNI). */
export interface CertificateSource {
  /**
   * The context to terminate a handshake for `servername` (lowercase, no trailing dot) with, or
   * undefined to let the next source, or the relay's wildcard certificate, serve it. Called on
   * every handshake: keep it cheap (a cached SecureContext), and never let a stranger's SNI
   * start expensive work for a name nobody holds.
   */
  contextFor (servername: string): tls.SecureContext | undefined | Promise<tls.SecureContext | undefined>
}

/** Answers ACME HTTP-01 challenges (`/.well-known/acme-challenge/<token>`) on the shared HTTP port. */
export interface AcmeChallengeResponder {
  /** The key authorization for a pending challenge's token; undefined when none is pending (the request is routed as usual). */
  response (token: string): string | undefined
}

/** RFC 8555 §8.3: where an HTTP-01 challenge is fetched. */
export const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/'

/** The token of an HTTP-01 challenge request's target (origin-form), or undefined when the target is not one. */
export function acmeChallengeToken (target: string): string | undefined {
  if (!target.startsWith(ACME_CHALLENGE_PATH)) return undefined
  const token = target.slice(ACME_CHALLENGE_PATH.length)
  // base64url, as RFC 8555 §8.1 makes tokens; anything else is not ours to answer.
  return /^[A-Za-z0-9_-]{1,256}$/.test(token) ? token : undefined
}

/** The HTTP/1.1 response that carries a key authorization (the connection closes after it). */
export function acmeChallengeResponse (keyAuthorization: string): Buffer {
  const body = Buffer.from(keyAuthorization, 'utf8')
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${body.length}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n`, 'latin1'),
    body,
  ])
}

/** Asks each source in turn; the first certificate wins. */
export function chainCertificates (...sources: Array<CertificateSource | undefined>): CertificateSource {
  const list = sources.filter((s): s is CertificateSource => s !== undefined)
  return {
    async contextFor (servername) {
      for (const s of list) {
        const ctx = await s.contextFor(servername)
        if (ctx !== undefined) return ctx
      }
      return undefined
    },
  }
}
