/**
 * The client's side of the handshake on a new session: it opens the control stream, says hello
 * (with its lease ticket when it has one), answers the relay's challenge with a proof of its
 * token bound to this TLS session, and receives the welcome. The relay's side is
 * relay-handshake.ts.
 */
import type { TLSSocket } from 'node:tls'
import { errorFromWire, InvalidMessageError } from '../errors.js'
import type { Session } from '../mux/session.js'
import { exportAuthBinding } from '../transport/tls.js'
import { authProof, tokenId, tokenKey } from './auth.js'
import { CLIENT_AGENT, CONTROL_VERSION } from './constants.js'
import { ControlChannel } from './control.js'
import { parseRelayMessage, type LeaseTicket, type RelayMessage } from './messages.js'

export interface RelayHandshakeOptions {
  token: string
  /** The ticket of the lease to take up again, after a reconnect. */
  lease: LeaseTicket | undefined
  /** Budget for each of the relay's answers. */
  timeout: number // ms
}

/** A session past the handshake: its control channel, and the relay's welcome. */
export interface RelayHandshake {
  control: ControlChannel<RelayMessage>
  welcome: Extract<RelayMessage, { t: 'welcome' }>
}

export async function handshakeRelay (session: Session, socket: TLSSocket, opts: RelayHandshakeOptions): Promise<RelayHandshake> {
  const control = new ControlChannel(session.open(), parseRelayMessage)
  control.send({ t: 'hello', version: CONTROL_VERSION, agent: CLIENT_AGENT, ...(opts.lease !== undefined ? { lease: opts.lease } : {}), notices: true })
  const challenge = expect(await control.recvTimeout(opts.timeout, 'relay handshake'), 'challenge')
  const proof = authProof(tokenKey(opts.token), Buffer.from(challenge.nonce, 'base64url'), exportAuthBinding(socket))
  control.send({ t: 'auth', tokenId: tokenId(opts.token), proof: proof.toString('base64url') })
  const welcome = expect(await control.recvTimeout(opts.timeout, 'relay handshake'), 'welcome')
  return { control, welcome }
}

/** The message if it is of type `t`; the relay's error, or InvalidMessageError, otherwise. */
function expect<T extends RelayMessage['t']> (msg: RelayMessage, t: T): Extract<RelayMessage, { t: T }> {
  if (msg.t === 'error') throw errorFromWire(msg.code, msg.message)
  if (msg.t !== t) throw new InvalidMessageError(`expected "${t}" from the relay, got "${msg.t}"`)
  return msg as Extract<RelayMessage, { t: T }>
}
