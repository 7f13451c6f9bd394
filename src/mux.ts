/**
 * `mport/mux`: the yamux-compatible multiplexer on its own, over any Node Duplex.
 *
 * @packageDocumentation
 */
export { Session, type SessionOptions, type SessionEvents } from './mux/session.js'
export type { ChunkSource } from './mux/chunk-source.js'
export type { SessionStats, StrayFrame, StrayReason } from './mux/stray.js'
export { MuxStream, StreamState } from './mux/stream.js'
export { ReceiveBufferPool } from './mux/receive-buffers.js'
export { defaultMuxConfig, verifyMuxConfig, type MuxConfig } from './mux/config.js'
export {
  FrameType, Flag, GoAwayCode, HEADER_LENGTH, INITIAL_STREAM_WINDOW, YAMUX_VERSION,
  encodeHeader, decodeHeader, writeHeader, formatHeader, formatFlags, type FrameHeader,
} from './mux/frame.js'
export { FrameDecoder, type FrameSink } from './mux/decoder.js'
