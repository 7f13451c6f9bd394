/**
 * The relay's certificates from an ACME CA, as the HTTPS front asks for them (a
 * CertificateSource) and as the HTTP front answers challenges (an AcmeChallengeResponder).
 *
 * - On demand, HTTP-01: `request(name)` when a tunnel with that name comes up, and on the first
 *   handshake for a name without a certificate. Only names `held(name)` vouches for (a live
 *   tunnel or a reservation) or `acme_allow` matches are ordered, within the hourly budget and a
 *   per-name backoff after failures; until the certificate arrives the fallback is served.
 * - The base domain, DNS-01 through the operator's hook: one `*.<domain>` + `<domain>`
 *   certificate that then serves every subdomain (without a hook subdomains are ordered one by
 *   one over HTTP-01, like custom hostnames).
 * - Stored in the data dir, loaded at start, renewed at `renewAt` of their lifetime (2/3 by
 *   default) on an injectable clock; a new certificate replaces the cached SecureContext, so the
 *   next handshake uses it without a restart.
 */
import tls from 'node:tls'
import path from 'node:path'
import { AcmeNameRefusedError, AcmeRateLimitedError, MportError, AcmeOrderFailedError } from 'mport/errors'
import type { AcmeChallengeResponder, CertificateSource } from 'mport/http'
import { AcmeIssuer } from './acme-issuer.js'
import { loadOrCreateAccountKey } from './account-key.js'
import { AllowPatterns } from './allow-rule.js'
import { CertificateFiles, type StoredPair } from './certificate-files.js'
import { runDnsHook } from './dns-hook.js'
import { IssuanceLimits } from './issuance-limits.js'

/** Time for renewals and rate limits; `setTimer` returns a cancel function (test/helpers/manual-clock.ts fits). */
export interface AcmeClock {
  now (): number
  setTimer (fn: () => void, ms: number): () => void
}

/** The operator's ACME settings (`acme_*` in the relay's config). */
export interface AcmeSettings {
  /** The CA's directory, e.g. https://acme-v02.api.letsencrypt.org/directory. */
  directoryUrl: string
  /** Contact address given to the CA (expiry warnings). */
  email?: string
  /** PEM of an extra CA to trust for the directory's TLS (pebble's, in tests). */
  ca?: string
  /** Names the relay may order without a tunnel or reservation holding them: `app.example.org`, `*.example.org`. */
  allow?: string[]
  /** Command for DNS-01 (`<hook> add|remove <fqdn> <value>`); with it the base domain gets a wildcard certificate. */
  dnsHook?: string
  /** Most orders placed in any hour (default 20). */
  ratePerHour?: number
}

/** What AcmeCertificates is given: the operator's settings plus the relay's data dir, domain, allow check, log and clock. */
export interface AcmeCertificatesOptions extends AcmeSettings {
  dataDir: string
  /** The relay's base domain (for the wildcard and to recognise subdomains). */
  domain: string | undefined
  /** A live tunnel or a reservation holds `name`. */
  held (name: string): boolean | Promise<boolean>
  /** One line per event worth an operator's attention (issued, renewed, failed, refused). */
  log (line: string, err?: MportError): void
  /** Told the served certificate that expires first, whenever one is installed (one bounded metric series: an alert on it covers every name). */
  onSoonestExpiry?: (pair: StoredPair) => void
  clock?: AcmeClock
  /** Fraction of a certificate's lifetime after which it is renewed (default 2/3). */
  renewAt?: number
  /** Wait after a name's first failed order, doubled with each further failure (default 5 min). */
  failureBackoffMs?: number
  /** First delay between polls of the CA (default 5 s). */
  pollMinMs?: number
}

/** What the manager did, for tests and metrics. */
export interface AcmeStats {
  /** Orders placed with the CA. */
  orders: number
  issued: number
  renewed: number
  failed: number
  /** Requests turned down by the allow rule. */
  refused: number
  /** Requests turned down by the hourly budget or a name's backoff. */
  limited: number
}

/** A name the allow rule turned down on a handshake is not asked about again for this long (a flood of strangers' SNI costs one store lookup per name per minute). */
const REFUSED_FOR = 60_000 // ms
/** At most this many refused names are remembered; past it the oldest are forgotten. */
const MAX_REFUSED = 10_000

/** setTimeout's limit; a later renewal re-arms when this fires. */
const MAX_TIMER = 2 ** 31 - 1

const realClock: AcmeClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => { const t = setTimeout(fn, ms); t.unref(); return () => clearTimeout(t) },
}

interface Entry { pair: StoredPair, context: tls.SecureContext, cancelRenewal: () => void }

/** Certificates from an ACME CA for the relay's HTTPS port: a CertificateSource for the HTTPS front and the HTTP-01 responder for the HTTP front. */
export class AcmeCertificates implements CertificateSource, AcmeChallengeResponder {
  readonly stats: AcmeStats = { orders: 0, issued: 0, renewed: 0, failed: 0, refused: 0, limited: 0 }
  readonly #o: AcmeCertificatesOptions
  readonly #clock: AcmeClock
  readonly #files: CertificateFiles
  readonly #allow: AllowPatterns
  readonly #limits: IssuanceLimits
  readonly #domain: string | undefined
  readonly #entries = new Map<string, Entry>()
  readonly #pending = new Map<string, Promise<void>>()
  readonly #tokens = new Map<string, string>()
  /** The limit a name was last turned down by: said once, not on every handshake while it lasts. */
  readonly #quiet = new Map<string, string>()
  /** Names the allow rule turned down on a handshake, with when (see REFUSED_FOR). */
  readonly #refused = new Map<string, number>()
  #issuer: AcmeIssuer | undefined
  #closed = false

  constructor (o: AcmeCertificatesOptions) {
    this.#o = o
    this.#clock = o.clock ?? realClock
    this.#files = new CertificateFiles(path.join(o.dataDir, 'certs'))
    this.#allow = new AllowPatterns(o.allow ?? [])
    this.#limits = new IssuanceLimits({ perHour: o.ratePerHour ?? 20, backoffMs: o.failureBackoffMs ?? 5 * 60_000, now: () => this.#clock.now() })
    this.#domain = o.domain?.toLowerCase().replace(/\.$/, '')
  }

  /** The wildcard's name (`*.<domain>`) when a DNS hook can validate it. */
  get #wildcard (): string | undefined {
    return this.#o.dnsHook !== undefined && this.#domain !== undefined ? `*.${this.#domain}` : undefined
  }

  /** Loads the stored certificates and the account key; orders the base domain's wildcard if there is a DNS hook and no valid one. */
  async start (): Promise<void> {
    const { pairs, skipped } = await this.#files.loadAll()
    for (const s of skipped) this.#o.log(`acme: ignoring stored certificate ${s}; it is ordered again when needed`)
    for (const pair of pairs) this.#install(pair)
    this.#issuer = new AcmeIssuer({ directoryUrl: this.#o.directoryUrl, accountKey: await loadOrCreateAccountKey(this.#o.dataDir), email: this.#o.email, ca: this.#o.ca, ...(this.#o.pollMinMs !== undefined ? { pollMinMs: this.#o.pollMinMs } : {}) })
    const wildcard = this.#wildcard
    if (wildcard !== undefined && !this.#entries.has(wildcard)) void this.request(wildcard)
  }

  /** The served certificate's details for `name` (exact, or the wildcard covering it). */
  certificateFor (name: string): StoredPair | undefined {
    return this.#lookup(name.toLowerCase())?.pair
  }

  contextFor (servername: string): tls.SecureContext | undefined {
    const name = servername.toLowerCase()
    const entry = this.#lookup(name)
    if (entry !== undefined) return entry.context
    // The first handshake for a name without a certificate: order one if the name is allowed, serve the fallback meanwhile.
    const refusedAt = this.#refused.get(name)
    if (refusedAt !== undefined && this.#clock.now() - refusedAt < REFUSED_FOR) {
      this.stats.refused++
      return undefined
    }
    if (!this.#coveredByWildcard(name)) void this.request(name, true)
    return undefined
  }

  response (token: string): string | undefined {
    return this.#tokens.get(token)
  }

  /**
   * Orders a certificate for `name` unless it has a valid one or an order is under way; the
   * promise settles when that is done (failures are logged and counted, never thrown).
   */
  request (name: string, fromHandshake = false): Promise<void> {
    const n = name.toLowerCase()
    if (this.#closed || this.#entries.has(n) || (n !== this.#wildcard && this.#coveredByWildcard(n))) return Promise.resolve()
    if (!fromHandshake) this.#refused.delete(n) // a tunnel came up with it: ask again
    let p = this.#pending.get(n)
    if (p === undefined) {
      p = this.#obtain(n, false, fromHandshake).finally(() => this.#pending.delete(n))
      this.#pending.set(n, p)
    }
    return p
  }

  /** Stops renewals; orders under way finish but are not installed. */
  close (): void {
    this.#closed = true
    for (const e of this.#entries.values()) e.cancelRenewal()
    this.#issuer?.close()
  }

  #lookup (name: string): Entry | undefined {
    const exact = this.#entries.get(name)
    if (exact !== undefined) return exact
    if (this.#domain !== undefined && name.endsWith('.' + this.#domain) && !name.slice(0, -(this.#domain.length + 1)).includes('.')) {
      return this.#entries.get(`*.${this.#domain}`)
    }
    if (name === this.#domain) return this.#entries.get(`*.${this.#domain}`)
    return undefined
  }

  /** Subdomains (and the apex) wait for the wildcard when a DNS hook is set. */
  #coveredByWildcard (name: string): boolean {
    if (this.#wildcard === undefined || this.#domain === undefined) return false
    return name === this.#domain || (name.endsWith('.' + this.#domain) && !name.slice(0, -(this.#domain.length + 1)).includes('.'))
  }

  async #allowed (name: string): Promise<boolean> {
    if (name === this.#wildcard) return true
    if (this.#allow.matches(name)) return true
    try {
      return await this.#o.held(name)
    } catch {
      return false
    }
  }

  async #obtain (name: string, renewal: boolean, fromHandshake = false): Promise<void> {
    const issuer = this.#issuer
    if (issuer === undefined) return
    if (!await this.#allowed(name)) {
      this.stats.refused++
      if (fromHandshake) {
        if (this.#refused.size >= MAX_REFUSED) this.#refused.delete(this.#refused.keys().next().value!)
        this.#refused.set(name, this.#clock.now())
      }
      // A stranger's SNI would log a line per handshake otherwise: only names a tunnel asked for are worth one.
      if (renewal) {
        const err = new AcmeNameRefusedError(name)
        this.#o.log(`acme: not renewing: ${err.message}`, err)
      }
      return
    }
    const limited = this.#limits.take(name)
    if (limited !== undefined) {
      this.stats.limited++
      const kind = limited.includes('acme_rate_per_hour') ? 'budget' : 'backoff'
      if (this.#quiet.get(name) !== kind) {
        this.#quiet.set(name, kind)
        const err = new AcmeRateLimitedError(name, limited)
        this.#o.log(`acme: ${err.message}`, err)
      }
      if (renewal) this.#scheduleRetry(name)
      return
    }
    const wildcard = name === this.#wildcard
    const dnsHook = this.#o.dnsHook
    this.#quiet.delete(name)
    this.stats.orders++
    try {
      const { cert, key } = await issuer.issue(wildcard ? [name, name.slice(2)] : [name], wildcard ? 'dns-01' : 'http-01', {
        http: { add: (token, value) => this.#tokens.set(token, value), remove: token => this.#tokens.delete(token) },
        ...(dnsHook !== undefined ? { dns: { add: (fqdn: string, value: string) => runDnsHook(dnsHook, 'add', fqdn, value), remove: (fqdn: string, value: string) => runDnsHook(dnsHook, 'remove', fqdn, value) } } : {}),
      })
      const pair = await this.#files.save(name, cert, key)
      this.#limits.succeeded(name)
      if (this.#closed) return
      this.#install(pair)
      if (renewal) this.stats.renewed++
      else this.stats.issued++
      this.#o.log(`acme: ${renewal ? 'renewed' : 'obtained'} the certificate for ${name} (serial ${pair.serial}, valid until ${new Date(pair.notAfter).toISOString()})`)
    } catch (err) {
      this.stats.failed++
      this.#limits.failed(name)
      const e = err instanceof MportError ? err : new AcmeOrderFailedError(name, (err as Error).message, { cause: err })
      this.#o.log(`acme: ${e.message}; serving the fallback certificate`, e)
      if (renewal) this.#scheduleRetry(name)
    }
  }

  /** Serves a pair from now on (replacing the previous one for its name) and arms its renewal. */
  #install (pair: StoredPair): void {
    this.#entries.get(pair.name)?.cancelRenewal()
    const context = tls.createSecureContext({ cert: pair.cert, key: pair.key })
    const due = pair.notBefore + (pair.notAfter - pair.notBefore) * (this.#o.renewAt ?? 2 / 3)
    const entry: Entry = { pair, context, cancelRenewal: () => {} }
    this.#entries.set(pair.name, entry)
    this.#armRenewal(entry, due)
    if (this.#o.onSoonestExpiry !== undefined) {
      let soonest = pair
      for (const e of this.#entries.values()) if (e.pair.notAfter < soonest.notAfter) soonest = e.pair
      this.#o.onSoonestExpiry(soonest)
    }
  }

  #armRenewal (entry: Entry, due: number): void {
    const wait = due - this.#clock.now()
    if (wait > 0) {
      entry.cancelRenewal = this.#clock.setTimer(() => this.#armRenewal(entry, due), Math.min(wait, MAX_TIMER))
      return
    }
    this.#renew(entry.pair.name)
  }

  #renew (name: string): void {
    if (this.#closed || this.#pending.has(name)) return
    const p = this.#obtain(name, true).finally(() => this.#pending.delete(name))
    this.#pending.set(name, p)
  }

  /** A failed or postponed renewal is tried again after the name's backoff (the old certificate is still served). */
  #scheduleRetry (name: string): void {
    const entry = this.#entries.get(name)
    if (entry === undefined || this.#closed) return
    entry.cancelRenewal()
    entry.cancelRenewal = this.#clock.setTimer(() => this.#renew(name), this.#o.failureBackoffMs ?? 5 * 60_000)
  }

  /** Waits for every order under way (tests, shutdown). */
  async settled (): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending.values())
  }
}
