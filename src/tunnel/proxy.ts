/**
 * Pipes two Duplexes both ways with half-close and backpressure, counting bytes. Either side
 * failing tears both down; each direction ends on its own (a FIN crosses as a FIN).
 *
 * Not stream.pipe(): a relay holds two of these per visitor, and pipe() costs about twenty
 * closures and listener arrays per direction. Here a direction is three listeners: 'data'
 * (write, pause the source when the destination is full), 'drain' (resume), 'end' (end the
 * destination).
 */
import net from 'node:net'
import type { Duplex, Transform } from 'node:stream'

export interface ProxyResult {
  /** Bytes from `a` to `b`. */
  aToB: number
  /** Bytes from `b` to `a`. */
  bToA: number
  error?: Error
}

export interface ProxyCounters { aToB: number, bToA: number }

/** Optional transforms in each direction (bandwidth shaping). */
export interface ProxyShaping { aToB?: Transform, bToA?: Transform }

/** An aborted connection must not look like a clean EOF: TCP sockets get an RST. */
function abort (s: Duplex): void {
  if (s instanceof net.Socket && !s.destroyed && !s.connecting) s.resetAndDestroy()
  else s.destroy()
}

/** Moves `src` into `dst` until `src` ends, then ends `dst`. Counts into counters[key] when given. */
function pump (src: Duplex, dst: Duplex, counters: ProxyCounters | undefined, key: keyof ProxyCounters, ended: () => void): void {
  src.on('data', (chunk: Buffer) => {
    if (counters !== undefined) counters[key] += chunk.length
    if (!dst.write(chunk)) src.pause()
  })
  dst.on('drain', () => src.resume())
  // 'end' fires once; on() skips the wrapper object and bound function once() allocates.
  src.on('end', () => {
    dst.end()
    ended()
  })
  if (dst.writableNeedDrain) src.pause()
  else src.resume() // also a source read in paused mode first (a stream header)
}

/** Resolves when both directions have finished or either side failed. Never rejects. */
export function proxy (a: Duplex, b: Duplex, counters: ProxyCounters = { aToB: 0, bToA: 0 }, shaping?: ProxyShaping): Promise<ProxyResult> {
  return new Promise(resolve => {
    const up = shaping?.aToB
    const down = shaping?.bToA
    let done = false
    let open = 2
    let error: Error | undefined
    const finish = (): void => {
      if (done) return
      done = true
      resolve({ aToB: counters.aToB, bToA: counters.bToA, ...(error === undefined ? {} : { error }) })
    }
    const fail = (err: Error): void => {
      error ??= err
      abort(a)
      abort(b)
      up?.destroy()
      down?.destroy()
      finish()
    }
    // A side closed without finishing its read direction is an abort.
    function onClose (this: Duplex): void {
      if (!done && !this.readableEnded) fail(new Error('connection closed before it ended'))
    }
    const directionDone = (): void => {
      if (--open === 0) finish()
    }
    for (const s of [a, b, up, down]) {
      if (s === undefined) continue
      s.on('error', fail)
      s.on('close', onClose)
    }
    if (up === undefined) pump(a, b, counters, 'aToB', directionDone)
    else { pump(a, up, counters, 'aToB', noop); pump(up, b, undefined, 'aToB', directionDone) }
    if (down === undefined) pump(b, a, counters, 'bToA', directionDone)
    else { pump(b, down, counters, 'bToA', noop); pump(down, a, undefined, 'bToA', directionDone) }
  })
}

function noop (): void {}
