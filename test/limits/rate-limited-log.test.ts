/**
 * RateLimitedLog on a manual clock: the first event of a key prints, the rest within the
 * interval are counted and carried by the next line that prints; keys are independent and
 * their number bounded.
 */
import t from 'tap'
import { RateLimitedLog } from '../../src/limits/rate-limited-log.js'
import { ManualClock } from '../helpers/manual-clock.js'

t.test('one line per key per interval, with the count held back', async t => {
  const clock = new ManualClock()
  const log = new RateLimitedLog({ intervalMs: 10_000, now: clock.now })
  t.same(log.admit('web/FILTERED'), { print: true, suppressed: 0 }, 'the first event prints')
  for (let i = 0; i < 5; i++) t.same(log.admit('web/FILTERED'), { print: false }, `event ${i + 2} within the interval is held back`)
  t.same(log.admit('web/RATE'), { print: true, suppressed: 0 }, 'another reason is another key')
  t.same(log.admit('ssh/FILTERED'), { print: true, suppressed: 0 }, 'another tunnel is another key')
  clock.advance(9_999)
  t.same(log.admit('web/FILTERED'), { print: false }, 'still within the interval at 9.999 s')
  clock.advance(1)
  t.same(log.admit('web/FILTERED'), { print: true, suppressed: 6 }, 'at 10 s it prints, carrying the 6 held back')
  t.same(log.admit('web/FILTERED'), { print: false }, 'and a new interval starts')
  clock.advance(60_000)
  t.same(log.admit('web/FILTERED'), { print: true, suppressed: 1 }, 'after a quiet minute: the one held back')
  t.same(log.admit('web/RATE'), { print: true, suppressed: 0 }, 'a key with nothing held back says 0')
})

t.test('the number of keys is bounded: the oldest is forgotten', async t => {
  const clock = new ManualClock()
  const log = new RateLimitedLog({ intervalMs: 10_000, now: clock.now, maxKeys: 2 })
  log.admit('a')
  log.admit('b')
  log.admit('c')
  t.same(log.admit('a'), { print: true, suppressed: 0 }, '"a" was dropped for "c": it prints again at once')
  t.same(log.admit('c'), { print: false }, '"c" is still remembered')
})
