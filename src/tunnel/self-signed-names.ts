/**
 * Self-signed certificates for the exact custom hostnames of http tunnels, for a relay without
 * ACME: a browser still warns about the issuer, but the name matches (the `*.<domain>`
 * certificate never matches `app.example.org`), so a user can check and accept it once.
 * Only names a live tunnel holds get one, so a stranger's SNI cannot make the relay generate
 * certificates, and the cache is bounded.
 */
import tls from 'node:tls'
import type { CertificateSource } from '../http/certificates.js'
import { generateSelfSigned } from '../transport/certs.js'

/** Names whose certificate is kept; the oldest is dropped past this (it is made again if needed). */
const MAX_CACHED = 1000

export class SelfSignedNames implements CertificateSource {
  readonly #held: (name: string) => boolean
  readonly #cache = new Map<string, Promise<tls.SecureContext>>()

  /** `held(name)`: a live tunnel terminated by the relay has this custom hostname. */
  constructor (held: (name: string) => boolean) {
    this.#held = held
  }

  async contextFor (servername: string): Promise<tls.SecureContext | undefined> {
    if (!this.#held(servername)) return undefined
    let ctx = this.#cache.get(servername)
    if (ctx === undefined) {
      ctx = generateSelfSigned([servername]).then(pair => tls.createSecureContext(pair))
      ctx.catch(() => this.#cache.delete(servername)) // a failure is reported by the caller; try again next time
      this.#cache.set(servername, ctx)
      if (this.#cache.size > MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!)
    }
    return await ctx
  }
}
