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

t.test('onHeldBack: a count still held when the interval ends is reported then', async t => {
  const clock = new ManualClock()
  const reports: Array<[string, number]> = []
  const log = new RateLimitedLog({ intervalMs: 10_000, now: clock.now, setTimer: clock.setTimer, onHeldBack: (key, n) => reports.push([key, n]) })
  t.same(log.admit('web'), { print: true, suppressed: 0 })
  t.equal(clock.pending, 0, 'nothing held back: no timer')
  clock.advance(2_000)
  for (let i = 0; i < 19; i++) log.admit('web')
  t.equal(clock.pending, 1, 'one timer for the key, however many are held back')
  clock.advance(7_999)
  t.same(reports, [], 'not before the interval ends')
  clock.advance(1)
  t.same(reports, [['web', 19]], 'at 10 s after the first line: the 19 held back')
  t.same(log.admit('web'), { print: false }, 'the report counts as the key\'s line: a new interval')
  clock.advance(10_000)
  t.same(reports, [['web', 19], ['web', 1]], 'and the one held back in it')
  clock.advance(10_000)
  t.same(log.admit('web'), { print: true, suppressed: 0 }, 'a quiet interval: the next event prints at once')
  log.admit('web')
  log.close()
  t.equal(clock.pending, 0, 'close cancels the pending report')
})
