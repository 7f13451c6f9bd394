/**
 * V8 garbage-collector tuning for a process that forwards bulk bytes between sockets.
 *
 * Node gives every socket read a new ArrayBuffer, so a forwarder allocates as many bytes of
 * ArrayBuffers as it moves, nearly all dying young. Two V8 defaults make that costly:
 *
 * - V8 counts their backing stores as external memory grown since the last mark-compact,
 *   against the old generation's allocation limit. By default young ArrayBuffers are freed on a
 *   background thread after each scavenge, so right after it, when V8 decides whether to start
 *   marking, the freed buffers still count. On a small heap (a relay's is about 10 MB) that
 *   often reaches the limit: the relay ran 33–43 full mark-compacts per GiB moved (BENCHMARKS.md).
 *   Freeing them inside the scavenge costs one free() per buffer there and lets V8 see the real
 *   number.
 * - V8 scavenges for young ArrayBuffers only once they reach a fixed 32 MiB, whatever the heap's
 *   size, so each forwarding process carries up to 32 MiB of dead read buffers. Counting the
 *   bytes of fresh read buffers and asking for a scavenge every few MiB frees them sooner. A
 *   scavenge costs what is alive in the young generation, which here is little.
 *
 * V8 flags are process-wide, so the library never sets these itself: the bins do, and an
 * embedding application may. Without it, {@link countFreshReadBytes} does nothing.
 */
import v8 from 'node:v8'
import vm from 'node:vm'

/** The V8 flags set by {@link tuneGcForForwarding}. */
export const FORWARDING_GC_FLAGS = '--no-concurrent-array-buffer-sweeping --expose-gc'

/** Fresh read-buffer bytes between young-generation collections, by default. */
export const DEFAULT_YOUNG_BUFFER_BUDGET = 8 * 1024 * 1024

export interface ForwardingGcOptions {
  /** Bytes of fresh socket-read buffers after which a scavenge is asked for; 0 leaves it to V8. */
  youngBufferBudget?: number
}

type GcFunction = (options: { type: 'minor' | 'major' }) => void

let minorGc: GcFunction | undefined
let budget = 0
let counted = 0
let collections = 0

/**
 * Makes V8 free dead ArrayBuffers inside each scavenge instead of on a background thread, and
 * scavenge every `youngBufferBudget` bytes of fresh read buffers, so that forwarding bulk bytes
 * sets off far fewer full garbage collections and holds less dead memory. Takes effect at once;
 * safe to call at any time, and more than once.
 */
export function tuneGcForForwarding (options: ForwardingGcOptions = {}): void {
  const next = options.youngBufferBudget ?? DEFAULT_YOUNG_BUFFER_BUDGET
  if (!Number.isSafeInteger(next) || next < 0) throw new RangeError(`youngBufferBudget must be a non-negative integer, got ${String(next)}`)
  v8.setFlagsFromString(FORWARDING_GC_FLAGS)
  // --expose-gc installs gc() in contexts created after it is set: this one, made once. A
  // runtime that ignores the flag gets no budget rather than a TypeError on the data path.
  minorGc ??= vm.runInNewContext('typeof gc === "function" ? gc : undefined') as GcFunction | undefined
  budget = minorGc === undefined ? 0 : next
  counted = 0
}

/**
 * Tells the tuning that a socket read delivered `bytes` in a new Buffer (a 'data' event of a
 * socket, not a reused read buffer). Past the budget, it runs a scavenge, which frees the dead
 * ones. A no-op unless {@link tuneGcForForwarding} was called.
 */
export function countFreshReadBytes (bytes: number): void {
  if (budget === 0) return
  counted += bytes
  if (counted < budget) return
  counted = 0
  collections++
  minorGc?.({ type: 'minor' })
}

/** Scavenges asked for by {@link countFreshReadBytes} so far (for tests and diagnostics). */
export function forwardingGcCollections (): number {
  return collections
}
