/**
 * V8 garbage-collector tuning for a process whose job is forwarding bulk bytes between sockets.
 * Opt-in (the `mport/gc-tuning` entry): the bins call it; nothing on the data path imports it.
 *
 * Node gives every socket read a new ArrayBuffer, so a forwarder allocates as many bytes of
 * ArrayBuffers as it moves, nearly all dying young. Two V8 defaults make that costly:
 *
 * - V8 counts their backing stores as external memory against the old generation's allocation
 *   limit. By default young ArrayBuffers are freed on a background thread after each scavenge,
 *   so when V8 decides whether to start marking, the dead buffers still count; on a small heap
 *   that sets off frequent full mark-compacts. Freeing them inside the scavenge lets V8 see
 *   the real number.
 * - V8 scavenges for young ArrayBuffers only once they reach a fixed amount, whatever the
 *   heap's size, so dead read buffers pile up. Counting fresh read buffers and asking for a
 *   scavenge every few MiB frees them sooner; a scavenge costs what is alive in the young
 *   generation, which here is little.
 *
 * V8 flags are process-wide, so the library never sets them itself. The counting is injected:
 * pass the returned `onFreshRead` as the option of the same name to Relay and Client.
 */
import v8 from 'node:v8'
import vm from 'node:vm'

/** The V8 flags set by {@link tuneGcForForwarding}. */
export const FORWARDING_GC_FLAGS = '--no-concurrent-array-buffer-sweeping --expose-gc'

/** Fresh read-buffer bytes between young-generation collections, by default. */
export const DEFAULT_YOUNG_BUFFER_BUDGET = 8 * 1024 * 1024

/** Options of {@link tuneGcForForwarding}. */
export interface ForwardingGcOptions {
  /** Bytes of fresh socket-read buffers after which a scavenge is asked for; 0 leaves it to V8. */
  youngBufferBudget?: number
}

/** The read meter of one tuning: give `onFreshRead` to the data path. */
export interface ForwardingGc {
  /** Told the size of each socket read that arrived in a new Buffer; past the budget, it runs a scavenge. */
  readonly onFreshRead: (bytes: number) => void
  /** Scavenges this meter asked for so far (for tests and diagnostics). */
  readonly collections: number
}

type GcFunction = (options: { type: 'minor' | 'major' }) => void

/** gc() of a context made after --expose-gc was set; one per process, like the flag. */
let minorGc: GcFunction | undefined

/**
 * Makes V8 free dead ArrayBuffers inside each scavenge instead of on a background thread, and
 * returns a meter that asks for a scavenge every `youngBufferBudget` bytes of fresh read
 * buffers. The flags take effect at once; safe to call more than once (each call returns a
 * new meter).
 */
export function tuneGcForForwarding (options: ForwardingGcOptions = {}): ForwardingGc {
  const budget = options.youngBufferBudget ?? DEFAULT_YOUNG_BUFFER_BUDGET
  if (!Number.isSafeInteger(budget) || budget < 0) throw new RangeError(`youngBufferBudget must be a non-negative integer, got ${String(budget)}`)
  v8.setFlagsFromString(FORWARDING_GC_FLAGS)
  // --expose-gc installs gc() only in contexts created after it is set. A runtime that ignores
  // the flag gets a meter that does nothing rather than a TypeError on the data path.
  minorGc ??= vm.runInNewContext('typeof gc === "function" ? gc : undefined') as GcFunction | undefined
  return new ReadMeter(minorGc === undefined ? 0 : budget, minorGc)
}

class ReadMeter implements ForwardingGc {
  readonly #budget: number
  readonly #gc: GcFunction | undefined
  #counted = 0
  #collections = 0

  constructor (budget: number, gc: GcFunction | undefined) {
    this.#budget = budget
    this.#gc = gc
  }

  get collections (): number { return this.#collections }

  readonly onFreshRead = (bytes: number): void => {
    if (this.#budget === 0) return
    this.#counted += bytes
    if (this.#counted < this.#budget) return
    this.#counted = 0
    this.#collections++
    this.#gc?.({ type: 'minor' })
  }
}
