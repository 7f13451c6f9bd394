/**
 * Pipes two Duplexes both ways with half-close and backpressure, counting bytes. Either side
 * failing tears both down; each direction ends on its own (a FIN crosses as a FIN).
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

/** Resolves when both directions have finished or either side failed. Never rejects. */
export function proxy (a: Duplex, b: Duplex, counters: ProxyCounters = { aToB: 0, bToA: 0 }, shaping: ProxyShaping = {}): Promise<ProxyResult> {
  return new Promise(resolve => {
    let done = false
    let open = 2
    let error: Error | undefined
    const finish = (): void => {
      if (done) return
      done = true
      a.off('data', countA)
      b.off('data', countB)
      resolve({ aToB: counters.aToB, bToA: counters.bToA, ...(error === undefined ? {} : { error }) })
    }
    const fail = (err: Error): void => {
      error ??= err
      abort(a)
      abort(b)
      shaping.aToB?.destroy()
      shaping.bToA?.destroy()
      finish()
    }
    const countA = (chunk: Buffer): void => { counters.aToB += chunk.length }
    const countB = (chunk: Buffer): void => { counters.bToA += chunk.length }
    const directionDone = (): void => {
      if (--open === 0) finish()
    }
    a.on('data', countA)
    b.on('data', countB)
    a.on('error', fail)
    b.on('error', fail)
    // A side closed without finishing its read direction is an abort.
    a.on('close', () => { if (!done && !a.readableEnded) fail(new Error('connection closed before it ended')) })
    b.on('close', () => { if (!done && !b.readableEnded) fail(new Error('connection closed before it ended')) })
    a.on('end', directionDone)
    b.on('end', directionDone)
    shaping.aToB?.on('error', fail)
    shaping.bToA?.on('error', fail)
    if (shaping.aToB !== undefined) a.pipe(shaping.aToB).pipe(b)
    else a.pipe(b)
    if (shaping.bToA !== undefined) b.pipe(shaping.bToA).pipe(a)
    else b.pipe(a)
  })
}
