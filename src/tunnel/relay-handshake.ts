/**
 * The relay's side of a client's handshake, all within one deadline: the first stream the
 * client opens becomes the control stream, then hello and authentication run on it. Failures
 * reach the client as a typed error on the control stream before the GoAway.
 */
import type { TLSSocket } from 'node:tls'
import { AuthFailedError, HandshakeTimeoutError, MportError, SessionClosedError } from '../errors.js'
import type { Session } from '../mux/session.js'
import type { MuxStream } from '../mux/stream.js'
import type { Authenticator, FailureLimiter } from './auth.js'
import { ControlChannel } from './control.js'
import { acceptLogin, type Login } from './login.js'
import { parseClientMessage, type ClientMessage } from './messages.js'

export interface ClientHandshakeOptions {
  /** Budget for the control stream, hello and authentication. */
  timeout: number // ms
  authenticator: Authenticator
  /** Failed logins per source address. */
  limiter: FailureLimiter
  onAuthFailed (remoteAddress: string, err: AuthFailedError): void
  /** Refuses a client by its address before it may log in (the relay's client IP filter); undefined admits it. */
  admit? (remoteAddress: string): MportError | undefined
  /** The handshake failed for another reason (timeout, a bad message, too many failed logins, the client left). */
  onFailed? (remoteAddress: string, err: Error): void
}

/** A client past the handshake: its control channel, and who it proved to be. */
export interface ClientHandshake {
  control: ControlChannel<ClientMessage>
  login: Login
}

/**
 * Runs the handshake on a new session; call it in the tick the session is created, so the
 * first stream is seen. On failure the error has been sent to the client if it could be.
 */
export async function handshakeClient (session: Session, socket: TLSSocket, remoteAddress: string, opts: ClientHandshakeOptions): Promise<ClientHandshake> {
  // The first stream the client opens is the control stream; any other is refused at once,
  // before it can hold a byte of an unauthenticated client's data.
  let controlTaken = false
  const controlStream = new Promise<MuxStream>(resolve => {
    session.on('stream', s => {
      if (!controlTaken) { controlTaken = true; resolve(s) } else s.destroy()
    })
  })
  // The whole handshake is bounded; other clients are accepted meanwhile.
  let timedOut: HandshakeTimeoutError | undefined
  const deadline = setTimeout(() => {
    timedOut = new HandshakeTimeoutError(opts.timeout, 'hello and authentication')
    if (control === undefined) session.destroy()
    else refuseClient(session, control, timedOut)
  }, opts.timeout)
  deadline.unref()
  let control: ControlChannel<ClientMessage> | undefined
  try {
    const stream = await Promise.race([controlStream, new Promise<never>((_resolve, reject) => session.once('close', () => reject(new SessionClosedError('client left before opening the control stream'))))])
    control = new ControlChannel(stream, parseClientMessage)
    const refusal = opts.admit?.(remoteAddress)
    if (refusal !== undefined) throw refusal
    const login = await acceptLogin(control, socket, remoteAddress, opts.authenticator, opts.limiter)
    return { control, login }
  } catch (err) {
    if (err instanceof AuthFailedError) opts.onAuthFailed(remoteAddress, err)
    else opts.onFailed?.(remoteAddress, timedOut ?? err as Error) // after a timeout, what follows is its doing
    if (control !== undefined) refuseClient(session, control, err as Error)
    throw err
  } finally {
    clearTimeout(deadline)
  }
}

/**
 * Sends a typed error as the last control message, then GoAway once it is on the wire (a
 * GoAway queued earlier would overtake it). Returns the error for throwing.
 */
export function refuseClient (session: Session, control: ControlChannel<ClientMessage>, err: Error): Error {
  const code = err instanceof MportError ? err.code : 'MPORT_ERR_INVALID_MESSAGE'
  void control.endFlushed({ t: 'error', code, message: err.message }).then(() => session.close())
  return err
}

/** How long a refused client has to read its error and leave before the relay hangs up on it. */
export const REFUSAL_GRACE_MS = 1000

/** Destroys a refused client's session once REFUSAL_GRACE_MS has passed, in case it lingers after the GoAway. */
export function hangUpAfterGrace (session: Session): void {
  setTimeout(() => session.destroy(), REFUSAL_GRACE_MS).unref()
}
