/**
 * V8 garbage-collector tuning for a process that forwards bulk bytes between sockets.
 *
 * Node gives every socket read a new ArrayBuffer, so a forwarder allocates as many bytes of
 * ArrayBuffers as it moves, nearly all dying young. V8 counts their backing stores as external
 * memory grown since the last mark-compact, against the old generation's allocation limit.
 * By default young ArrayBuffers are freed on a background thread after each scavenge, so right
 * after the scavenge, when V8 decides whether to start marking, the freed buffers still count.
 * On a small heap (a relay's is about 10 MB) that often reaches the limit: the relay ran 33–43
 * full mark-compacts per GiB moved, and 2–30 with this tuning (BENCHMARKS.md). Freeing them
 * inside the scavenge costs one free() per buffer there and lets V8 see the real number.
 *
 * V8 flags are process-wide, so the library never sets this itself: the bins do, and an
 * embedding application may.
 */
import v8 from 'node:v8'

/** The V8 flag set by {@link tuneGcForForwarding}. */
export const FORWARDING_GC_FLAGS = '--no-concurrent-array-buffer-sweeping'

/**
 * Makes V8 free dead ArrayBuffers inside each scavenge instead of on a background thread,
 * so that forwarding bulk bytes sets off far fewer full garbage collections. Takes effect from
 * the next scavenge; safe to call at any time, and more than once.
 */
export function tuneGcForForwarding (): void {
  v8.setFlagsFromString(FORWARDING_GC_FLAGS)
}
