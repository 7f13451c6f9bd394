/**
 * Errors of the relay's ACME certificates (mport-relay's acme/): the HTTPS front's certificates,
 * so they sit in the http layer. None of them stops the relay: the name keeps the fallback
 * certificate and the relay logs one line.
 */
import { HttpLayerError } from './http.js'

/** The relay will not order a certificate for this name: no live tunnel, reservation or `acme_allow` pattern holds it. */
export class AcmeNameRefusedError extends HttpLayerError {
  constructor (readonly hostname: string) {
    super('MPORT_ERR_ACME_NAME_REFUSED', `no certificate is ordered for ${hostname}: no tunnel or reservation holds it and no acme_allow pattern matches`)
  }
}

/** An order now would exceed `acme_rate_per_hour`, or the name is backing off after a failed order. */
export class AcmeRateLimitedError extends HttpLayerError {
  constructor (readonly hostname: string, reason: string) {
    super('MPORT_ERR_ACME_RATE_LIMITED', `no certificate ordered for ${hostname} now: ${reason}`)
  }
}

/** The CA refused or failed an order (directory unreachable, challenge not validated, finalization refused). */
export class AcmeOrderFailedError extends HttpLayerError {
  constructor (readonly hostname: string, reason: string, options?: ErrorOptions) {
    super('MPORT_ERR_ACME_ORDER_FAILED', `certificate order for ${hostname} failed: ${reason}`, options)
  }
}

/** The `acme_dns_hook` command failed, timed out or could not be run. */
export class AcmeDnsHookError extends HttpLayerError {
  constructor (reason: string) {
    super('MPORT_ERR_ACME_DNS_HOOK_FAILED', `acme_dns_hook failed: ${reason}`)
  }
}
