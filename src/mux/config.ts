/** Multiplexer configuration: one defaults object and one verifier (hashicorp DefaultConfig/VerifyConfig). */
import { InvalidConfigError } from '../errors.js'
import { INITIAL_STREAM_WINDOW, MAX_UINT32 } from './frame.js'

/**
 * Settings of one Session (both ends may differ); times are in ms, sizes in bytes. Pass a
 * Partial as SessionOptions; verifyMuxConfig() rejects bad values with InvalidConfigError.
 */
export interface MuxConfig {
  /** Send a keepalive ping this often; 0 disables keepalive. */
  keepAliveInterval: number // ms
  /** A ping unanswered this long, with no other frame received meanwhile, ends the session. */
  keepAliveTimeout: number // ms
  /** Receive window a stream may grow to by auto-tuning (from the spec's 256 KiB). */
  maxStreamWindow: number // bytes
  /** Grow windows when the RTT shows the window, not the reader, limits throughput. */
  windowAutoTuning: boolean
  /** Largest Data payload accepted in one frame. */
  maxFrameSize: number // bytes
  /** Largest Data payload sent in one frame (smaller frames interleave streams more fairly). */
  maxSendFrameSize: number // bytes
  /** Open streams (both directions) allowed at once; SYNs beyond it are answered with RST. */
  maxConcurrentStreams: number
  /** Streams opened by the peer and not yet accepted; SYNs beyond it are answered with RST. */
  acceptBacklog: number
  /** Pings the peer may send per second before the session ends with a protocol error. */
  maxPingsPerSecond: number
  /** Control frames (ping answers, window updates, RSTs) that may wait for a peer that does not read. */
  maxControlBacklog: number
  /** Bytes handed to the socket before the session waits for 'drain'. */
  writeBufferSize: number // bytes
  /** A graceful close() waits this long for open streams, then resets them. */
  closeTimeout: number // ms
}

/** The values a Session uses for every setting it is not given (PROTOCOL.md's limits table). */
export const defaultMuxConfig: Readonly<MuxConfig> = Object.freeze({
  keepAliveInterval: 30_000, // ms
  keepAliveTimeout: 10_000, // ms
  maxStreamWindow: 16 * 1024 * 1024,
  windowAutoTuning: true,
  maxFrameSize: 16 * 1024 * 1024,
  maxSendFrameSize: 64 * 1024,
  maxConcurrentStreams: 65_536,
  acceptBacklog: 256,
  maxPingsPerSecond: 1_000,
  maxControlBacklog: 65_536,
  writeBufferSize: 256 * 1024,
  closeTimeout: 30_000, // ms
})

/** Fills defaults and throws InvalidConfigError for values that cannot work. */
export function verifyMuxConfig (partial: Partial<MuxConfig> = {}): MuxConfig {
  for (const key of Object.keys(partial)) {
    if (!(key in defaultMuxConfig)) throw new InvalidConfigError(key, 'unknown option')
  }
  const c: MuxConfig = { ...defaultMuxConfig, ...stripUndefined(partial) }
  const nonNegative = ['keepAliveInterval', 'keepAliveTimeout', 'closeTimeout'] as const
  for (const k of nonNegative) if (!Number.isFinite(c[k]) || c[k] < 0) throw new InvalidConfigError(k, 'must be a non-negative number')
  const positive = ['maxFrameSize', 'maxSendFrameSize', 'maxConcurrentStreams', 'acceptBacklog', 'maxPingsPerSecond', 'maxControlBacklog', 'writeBufferSize'] as const
  for (const k of positive) if (!Number.isInteger(c[k]) || c[k] <= 0) throw new InvalidConfigError(k, 'must be a positive integer')
  if (!Number.isInteger(c.maxStreamWindow) || c.maxStreamWindow < INITIAL_STREAM_WINDOW || c.maxStreamWindow > MAX_UINT32) {
    throw new InvalidConfigError('maxStreamWindow', `must be an integer from ${INITIAL_STREAM_WINDOW} to ${MAX_UINT32}`)
  }
  if (c.maxSendFrameSize > MAX_UINT32 || c.maxFrameSize > MAX_UINT32) throw new InvalidConfigError('maxFrameSize', 'must fit in 32 bits')
  if (c.keepAliveInterval > 0 && c.keepAliveTimeout === 0) throw new InvalidConfigError('keepAliveTimeout', 'must be positive when keepalive is on')
  if (typeof c.windowAutoTuning !== 'boolean') throw new InvalidConfigError('windowAutoTuning', 'must be a boolean')
  return c
}

function stripUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
