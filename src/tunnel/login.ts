/**
 * The relay's side of the login on the control stream: hello → challenge → auth. Bounded by
 * the caller's deadline; every failure is a typed error the caller sends back to the client.
 */
import { randomBytes } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import { AuthFailedError, InvalidMessageError, RateLimitedError } from '../errors.js'
import { exportAuthBinding } from '../transport/tls.js'
import { verifyProof, type Authenticator, type FailureLimiter, type Principal } from './auth.js'
import type { ControlChannel } from './control.js'
import { CONTROL_VERSION } from './constants.js'
import type { ClientMessage } from './messages.js'

export interface Login {
  hello: Extract<ClientMessage, { t: 'hello' }>
  principal: Principal
  /** The token id the client proved; re-checked later for revocation. */
  tokenId: string
}

export async function acceptLogin (control: ControlChannel<ClientMessage>, socket: TLSSocket, remoteAddress: string, authenticator: Authenticator, limiter: FailureLimiter): Promise<Login> {
  const hello = await control.recv()
  if (hello.t !== 'hello') throw new InvalidMessageError(`expected "hello", got "${hello.t}"`)
  const retryAfter = limiter.retryAfter(remoteAddress)
  if (retryAfter > 0) throw new RateLimitedError(`too many failed logins from ${remoteAddress}; retry in ${Math.ceil(retryAfter / 1000)} s`, retryAfter)
  const nonce = randomBytes(32)
  control.send({ t: 'challenge', version: CONTROL_VERSION, nonce: nonce.toString('base64url') })
  const auth = await control.recv()
  if (auth.t !== 'auth') throw new InvalidMessageError(`expected "auth", got "${auth.t}"`)
  const cred = await authenticator.resolve(auth.tokenId)
  // The proof covers our nonce and this TLS session's exporter: it cannot be replayed or relayed.
  const ok = cred !== undefined && verifyProof(cred.key, nonce, exportAuthBinding(socket), Buffer.from(auth.proof, 'base64url'))
  if (!ok) {
    limiter.fail(remoteAddress)
    throw new AuthFailedError()
  }
  limiter.succeed(remoteAddress)
  return { hello, principal: cred.principal, tokenId: auth.tokenId }
}
