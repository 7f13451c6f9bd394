/**
 * Bounded waits: every wait in the tests ends, and when it ends by timing out it says what
 * it was waiting for. Timeouts are generous (a noisy 2-core machine): they bound a hang, they
 * are never the thing a test asserts.
 */
import type { EventEmitter } from 'node:events'

export interface WaitOptions {
  /** Give up after this many ms (default 10 s). */
  timeoutMs?: number
  /** Completes the message "timed out after N ms waiting for <what>". */
  what: string
  /** Called on timeout; what it returns is added to the message (state worth seeing). */
  diag?: (() => string) | undefined
}

export interface PollOptions extends WaitOptions {
  /** Poll this often (default 5 ms). */
  intervalMs?: number
}

const DEFAULT_TIMEOUT_MS = 10_000

export class WaitTimeoutError extends Error {
  constructor (readonly timeoutMs: number, readonly what: string, diag?: () => string) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}${diag === undefined ? '' : `\n${diag()}`}`)
    this.name = 'WaitTimeoutError'
  }
}

/** Resolves once `predicate()` is true; rejects with WaitTimeoutError after `timeoutMs`. */
export async function waitFor (predicate: () => boolean | Promise<boolean>, opts: PollOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const interval = opts.intervalMs ?? 5
  const deadline = Date.now() + timeoutMs
  while (true) {
    if (await predicate()) return
    if (Date.now() >= deadline) throw new WaitTimeoutError(timeoutMs, opts.what, opts.diag)
    await sleep(Math.min(interval, Math.max(1, deadline - Date.now())))
  }
}

/** Settles like `promise`, or rejects with WaitTimeoutError after `timeoutMs`. */
export function withTimeout<T> (promise: Promise<T>, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new WaitTimeoutError(timeoutMs, opts.what, opts.diag)), timeoutMs)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * The arguments of the next `event` on `emitter`, bounded. Unlike events.once it does not
 * reject on 'error', so it can wait for 'error' itself or for 'close' after an error.
 */
export function nextEvent<T extends unknown[] = unknown[]> (emitter: EventEmitter, event: string, opts: WaitOptions): Promise<T> {
  let listener: ((...args: unknown[]) => void) | undefined
  const p = new Promise<T>(resolve => {
    listener = (...args: unknown[]) => resolve(args as T)
    emitter.once(event, listener)
  })
  return withTimeout(p, opts).finally(() => { if (listener !== undefined) emitter.off(event, listener) })
}

/** A plain timer promise, for pacing loops (never for asserting on time). */
export function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Lets queued I/O callbacks and ticks run `n` times (setImmediate turns of the event loop). */
export async function turns (n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve))
}
