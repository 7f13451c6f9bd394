/**
 * `mport_certificate_expiry_timestamp_seconds{cert}`: when each certificate the relay serves
 * stops being valid. The service registers the control and HTTPS certificates; whatever
 * obtains or renews one later (ACME) calls {@link CertificateExpiry.set} again with the new PEM.
 */
import { X509Certificate } from 'node:crypto'
import type { Gauge } from 'prom-client'

/** The certificates the relay serves, by a name the caller chooses (`control`, `https`, `acme:<host>`). */
export class CertificateExpiry {
  readonly #gauge: Gauge<'cert'>

  constructor (gauge: Gauge<'cert'>) {
    this.#gauge = gauge
  }

  /**
   * Records the certificate `name` now serves (the first certificate of a PEM chain) and
   * returns its expiry as a Unix time in seconds. Keep names few and stable: each is a series.
   */
  set (name: string, certPem: string | Buffer): number {
    const expires = Math.floor(Date.parse(new X509Certificate(certPem).validTo) / 1000)
    this.#gauge.set({ cert: name }, expires)
    return expires
  }

  /** The certificate `name` is no longer served. */
  delete (name: string): void {
    this.#gauge.remove({ cert: name })
  }
}
