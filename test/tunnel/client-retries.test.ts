/**
 * TunnelRetries on injected timers and randomness: delays double from `initial` to `max` with
 * equal jitter, a timer asks for its tunnel again, and stop() / clear() leave no timer behind.
 */
import t from 'tap'
import { TunnelRetries } from '../../src/tunnel/client-retries.js'

/** Timers that only run when the test says so. */
function fakeTimers (): { timers: { setTimeout (fn: () => void, ms: number): unknown, clearTimeout (h: unknown): void }, pending: Map<number, { fn (): void, ms: number }>, runAll (): void } {
  const pending = new Map<number, { fn (): void, ms: number }>()
  let next = 1
  return {
    pending,
    timers: {
      setTimeout: (fn, ms) => { const id = next++; pending.set(id, { fn, ms }); return id },
      clearTimeout: h => { pending.delete(h as number) },
    },
    runAll: () => { const due = [...pending.values()]; pending.clear(); for (const p of due) p.fn() },
  }
}

t.test('delays: 1 s doubling to 30 s, in [c/2, c]', async t => {
  const low = new TunnelRetries({ random: () => 0 }, () => {})
  const high = new TunnelRetries({ random: () => 0.999999 }, () => {})
  const lows = Array.from({ length: 8 }, () => low.refused(1).delayMs)
  const highs = Array.from({ length: 8 }, () => high.refused(1).delayMs)
  t.same(lows, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000], 'the lower bound: half the ceiling')
  t.same(highs, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000], 'the upper bound: the ceiling, capped at 30 s')
  const custom = new TunnelRetries({ initial: 10, max: 40, random: () => 0.999999 }, () => {})
  t.same([1, 2, 3, 4].map(() => custom.refused(7)), [1, 2, 3, 4].map(attempt => ({ attempt, delayMs: 50 })), 'never under 50 ms, whatever initial and max say')
})

t.test('a timer asks for its tunnel again; stop and clear leave none', async t => {
  const clock = fakeTimers()
  const fired: number[] = []
  const r = new TunnelRetries({ timers: clock.timers, random: () => 0 }, id => fired.push(id))
  r.refused(1)
  r.refused(2)
  t.equal(clock.pending.size, 0, 'refused() alone starts no timer (the connection may not be up)')
  r.schedule()
  t.same([...clock.pending.values()].map(p => p.ms), [500, 500], 'schedule() starts one per waiting tunnel')
  r.schedule(1)
  t.equal(clock.pending.size, 2, 'scheduling again replaces the timer')
  clock.runAll()
  t.same(fired.sort(), [1, 2], 'each tunnel is asked for again')
  r.refused(1)
  r.schedule(1)
  r.stop(true)
  t.equal(clock.pending.size, 0, 'a dropped connection stops the timers')
  t.equal(r.refused(1).attempt, 3, 'but keeps the backoff')
  r.clear(1)
  t.equal(r.refused(1).attempt, 1, 'clear() (the tunnel came up) starts over')
  r.schedule()
  r.stop()
  t.equal(clock.pending.size, 0, 'close: no timer left')
  r.schedule()
  t.equal(clock.pending.size, 0, 'and nothing waits any more')
})
