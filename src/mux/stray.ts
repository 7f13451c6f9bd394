/**
 * Stray frames: Data and WindowUpdate frames without SYN for a stream id that is not open.
 * They are dropped, never a protocol error (PROTOCOL.md, "Frames for unknown streams"); this
 * file names them, classifies them and holds the counters a session keeps about them.
 */
import type { FrameHeader } from './frame.js'

/**
 * Why a stray frame found no stream. `closed`: the id was opened once (by either side) and
 * has since closed, been reset or been refused. `never-opened`: no stream ever had this id.
 */
export type StrayReason = 'closed' | 'never-opened'

/** A dropped frame, as the session's `'stray'` event reports it. */
export interface StrayFrame {
  /** The frame's header; a Data payload (`length` bytes) is skipped unread. */
  header: FrameHeader
  /** Whether the id was opened once (`closed`) or never (`never-opened`). */
  reason: StrayReason
  /** The session answered with RST for the id (Data for a never-opened id). */
  reset: boolean
}

/** A session's counters, read as a snapshot through `session.stats`. */
export interface SessionStats {
  /** Stray frames whose stream was opened once and is closed, reset or refused. */
  strayClosed: number
  /** Stray frames whose stream id was never opened. */
  strayNeverOpened: number
  /** Payload bytes announced by stray Data frames: skipped by the decoder, never buffered. */
  strayBytes: number
  /** RSTs sent in answer to Data frames for never-opened ids. */
  strayResets: number
}

/** What a session knows about the ids it has seen, enough to classify any non-zero id. */
export interface IdHistory {
  /** The session opens odd ids (client) or even ids (server). */
  client: boolean
  /** The next id the session will allocate for its own streams (1 or 2 at the start). */
  nextId: number
  /** The highest id the peer has sent a SYN for, admitted or refused (0 before the first). */
  maxRemoteId: number
}

/**
 * Whether `id` (non-zero) was never opened: of the session's own parity and not allocated yet
 * (`id >= nextId`), or of the peer's parity and above every id the peer has sent a SYN for
 * (`id > maxRemoteId`). Ids are allocated in increasing order and never reused, so every
 * other id belonged to a stream once.
 */
export function neverOpened (id: number, ids: IdHistory): boolean {
  const own = (id % 2 === 1) === ids.client
  return own ? id >= ids.nextId : id > ids.maxRemoteId
}
