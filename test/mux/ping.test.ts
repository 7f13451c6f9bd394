// Ping values: 1, 2, 3, … wrapping to 1, and always V8 small integers. A ping value lands in a
// frame header's `length`; one that is not a small integer changes the hidden class that every
// frame header shares, and V8 then deoptimises the whole frame path on the next frame.
import { setFlagsFromString } from 'node:v8'
import t from 'tap'
import { decodeHeader, encodeHeader, FrameType, type FrameHeader } from '../../src/mux/frame.js'
import { MAX_PING_VALUE, nextPingValue, Pinger } from '../../src/mux/ping.js'

setFlagsFromString('--allow-natives-syntax')
// V8 intrinsics parse only in code compiled after the flag
const isSmi = new Function('v', 'return %IsSmi(v)') as (v: unknown) => boolean
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean

t.test('nextPingValue counts up and wraps to 1 at the small-integer limit', async t => {
  t.equal(nextPingValue(1), 2)
  t.equal(nextPingValue(MAX_PING_VALUE - 1), MAX_PING_VALUE)
  t.equal(nextPingValue(MAX_PING_VALUE), 1, 'wraps to 1, never 0')
  t.equal(MAX_PING_VALUE, 2 ** 31 - 1)
  t.ok(isSmi(nextPingValue(MAX_PING_VALUE - 1)), 'the largest value is still a small integer')
})

t.test('a pinger sends 1, 2, 3, … as small integers, and headers carrying them keep one hidden class', async t => {
  const sent: number[] = []
  const pinger = new Pinger({
    send: v => sent.push(v), onDead: () => t.fail('no keepalive here'), keepAliveInterval: 0, keepAliveTimeout: 0, maxPingsPerSecond: 100,
  })
  for (let i = 0; i < 50; i++) {
    const rtt = pinger.ping()
    pinger.onAck(sent.at(-1)!)
    t.ok(await rtt >= 0)
  }
  pinger.stop(new Error('done'))
  t.same(sent, Array.from({ length: 50 }, (_, i) => i + 1))
  t.ok(sent.every(isSmi), 'every ping value is a small integer')

  const data = decodeHeader(encodeHeader({ type: FrameType.Data, flags: 0, streamId: 1, length: 64 }))
  const pings = sent.map((length): FrameHeader => ({ type: FrameType.Ping, flags: 0, streamId: 0, length }))
  t.ok(pings.every(h => haveSameMap(h, data)), 'a ping header has the hidden class of a decoded data header')
  const fresh = decodeHeader(encodeHeader({ type: FrameType.Data, flags: 0, streamId: 3, length: 5 }))
  t.ok(haveSameMap(fresh, data), 'headers decoded afterwards still share it')
})
