/**
 * Keys of the MuxStream methods that only its Session and the session's writer call. They are
 * symbols, and this module is not exported by the package, so an embedder sees a stream's
 * Duplex API and nothing of how frames reach it.
 *
 * @internal
 */

/** Writer → stream: emit at most one frame now; returns whether more is ready. */
export const emitFrame: unique symbol = Symbol('mport.emitFrame')
/** A Data header for the stream: its length is reserved against the receive window first. */
export const reserveRecv: unique symbol = Symbol('mport.reserveRecv')
/** A piece of the current Data frame's payload. */
export const receiveData: unique symbol = Symbol('mport.receiveData')
/** The current Data frame is complete. */
export const endOfData: unique symbol = Symbol('mport.endOfData')
/** ACK, FIN and RST of a Data or WindowUpdate frame, applied after its payload. */
export const receiveFlags: unique symbol = Symbol('mport.receiveFlags')
/** A window update from the peer. */
export const addSendCredit: unique symbol = Symbol('mport.addSendCredit')
/** The session is going away: reset the stream without sending anything. */
export const abort: unique symbol = Symbol('mport.abort')
