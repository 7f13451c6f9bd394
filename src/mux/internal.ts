/**
 * Keys of the MuxStream methods that only its Session and the session's writer call. They are
 * symbols, and this module is not exported by the package, so an embedder sees a stream's
 * Duplex API and nothing of how frames reach it (each key is `@internal`, so the published
 * declarations leave these methods out).
 */

/** @internal Writer → stream: emit at most one frame now; returns whether more is ready. */
export const emitFrame: unique symbol = Symbol('mport.emitFrame')
/** @internal A Data header for the stream: its length is reserved against the receive window first. */
export const reserveRecv: unique symbol = Symbol('mport.reserveRecv')
/** @internal A piece of the current Data frame's payload. */
export const receiveData: unique symbol = Symbol('mport.receiveData')
/** @internal The current Data frame is complete. */
export const endOfData: unique symbol = Symbol('mport.endOfData')
/** @internal ACK, FIN and RST of a Data or WindowUpdate frame, applied after its payload. */
export const receiveFlags: unique symbol = Symbol('mport.receiveFlags')
/** @internal A window update from the peer. */
export const addSendCredit: unique symbol = Symbol('mport.addSendCredit')
/** @internal The session is going away: reset the stream without sending anything. */
export const abort: unique symbol = Symbol('mport.abort')
