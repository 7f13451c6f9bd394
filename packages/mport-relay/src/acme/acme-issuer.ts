/**
 * One ACME order, start to finish, over acme-client: a fresh P-256 key and CSR for the names,
 * the challenges published through the given hooks (HTTP-01 on the relay's shared HTTP port,
 * or DNS-01 through the operator's hook), and the certificate chain back. acme-client's own
 * pre-check of a challenge is skipped: it fetches from port 80 or asks public DNS, which a
 * relay behind a port mapping, or a test CA on loopback, would fail; the CA's check is the one
 * that counts.
 */
import https from 'node:https'
import acme from 'acme-client'
import { AcmeOrderFailedError, MportError } from 'mport/errors'

/** Publishes or withdraws one challenge response. */
export interface ChallengeHooks {
  /** HTTP-01: serve `keyAuthorization` at `/.well-known/acme-challenge/<token>`. */
  http?: { add (token: string, keyAuthorization: string): void, remove (token: string): void }
  /** DNS-01: the TXT record `fqdn` with `value`. */
  dns?: { add (fqdn: string, value: string): Promise<void>, remove (fqdn: string, value: string): Promise<void> }
}

export interface AcmeIssuerOptions {
  directoryUrl: string
  accountKey: string
  email: string | undefined
  /** PEM of a CA to trust for the directory's own TLS (a test CA such as pebble's), besides the system's. */
  ca: string | undefined
  /** First delay between polls of a pending challenge or order (acme-client doubles it); default 5 s. */
  pollMinMs?: number
}

export class AcmeIssuer {
  readonly #client: acme.Client
  readonly #email: string | undefined
  readonly #eject: (() => void) | undefined
  #account: Promise<void> | undefined

  constructor (o: AcmeIssuerOptions) {
    this.#email = o.email
    this.#client = new acme.Client({ directoryUrl: o.directoryUrl, accountKey: o.accountKey, backoffMin: o.pollMinMs ?? 5000, backoffMax: 30_000, backoffAttempts: 10 })
    if (o.ca !== undefined) {
      // acme-client has one shared axios instance; trust the extra CA only for this directory's origin.
      const origin = new URL(o.directoryUrl).origin
      const agent = new https.Agent({ ca: o.ca, keepAlive: false })
      const id = acme.axios.interceptors.request.use(config => {
        if (config.url !== undefined && new URL(config.url, origin).origin === origin) config.httpsAgent = agent
        return config
      })
      this.#eject = () => acme.axios.interceptors.request.eject(id)
    }
  }

  /** Orders a certificate for `names` (the first is the subject) with `challenge`; throws AcmeOrderFailedError, or the DNS hook's AcmeDnsHookError. */
  async issue (names: string[], challenge: 'http-01' | 'dns-01', hooks: ChallengeHooks): Promise<{ cert: string, key: string }> {
    try {
      this.#account ??= this.#client.createAccount({ termsOfServiceAgreed: true, ...(this.#email !== undefined ? { contact: [`mailto:${this.#email}`] } : {}) }).then(() => {}, err => {
        this.#account = undefined // try registering again with the next order
        throw err
      })
      await this.#account
      const [key, csr] = await acme.crypto.createCsr({ altNames: names }, await acme.crypto.createPrivateEcdsaKey('P-256'))
      const cert = await this.#client.auto({
        csr,
        termsOfServiceAgreed: true,
        skipChallengeVerification: true,
        challengePriority: [challenge],
        challengeCreateFn: async (authz, ch, keyAuthorization) => {
          if (ch.type === 'http-01' && hooks.http !== undefined) return hooks.http.add(ch.token, keyAuthorization)
          if (ch.type === 'dns-01' && hooks.dns !== undefined) return await hooks.dns.add(`_acme-challenge.${authz.identifier.value}`, keyAuthorization)
          throw new Error(`no way to answer a ${ch.type} challenge`)
        },
        challengeRemoveFn: async (authz, ch, keyAuthorization) => {
          if (ch.type === 'http-01') hooks.http?.remove(ch.token)
          else if (ch.type === 'dns-01') await hooks.dns?.remove(`_acme-challenge.${authz.identifier.value}`, keyAuthorization)
        },
      })
      return { cert, key: key.toString() }
    } catch (err) {
      if (err instanceof MportError) throw err // the DNS hook's own error keeps its code
      throw new AcmeOrderFailedError(names[0] ?? '(no name)', describe(err), { cause: err })
    }
  }

  /** Stops trusting the extra CA (the shared axios instance outlives this issuer). */
  close (): void {
    this.#eject?.()
  }
}

/** One line: acme-client's errors carry the CA's problem document in the message; network errors their code. */
function describe (err: unknown): string {
  const e = err as { message?: string, code?: string }
  const msg = (e.message ?? String(err)).replace(/\s+/g, ' ').trim()
  return e.code !== undefined && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg
}
