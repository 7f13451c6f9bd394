/**
 * The push channel (GET /v1/events) over real HTTP: the first event is the caller's tunnels, a
 * change is pushed when the relay says so, a user never gets another user's tunnels (admins
 * may ask for all), tabs are bounded per user (429), and a tab that does not read is skipped
 * rather than buffered for.
 */
import { EventEmitter } from 'node:events'
import t from 'tap'
import { TunnelFeed, type FeedSnapshot, type FeedSubscriber } from '../../packages/mport-relay/src/dashboard/tunnel-feed.js'
import { startApi } from '../api/fixtures/api.js'
import { waitFor } from '../helpers/wait.js'

/** An open event stream: the `tunnels` events read so far, and how to close it. */
interface Stream { status: number, events: FeedSnapshot[], close (): void }

async function open (base: string, path: string, token: string): Promise<Stream> {
  const ac = new AbortController()
  const res = await fetch(base + path, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal })
  const events: FeedSnapshot[] = []
  if (res.status === 200 && res.body !== null) {
    void (async () => {
      let buf = ''
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += Buffer.from(chunk).toString('utf8')
          let end: number
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end)
            buf = buf.slice(end + 2)
            const data = /^event: tunnels\ndata: (.*)$/m.exec(block)
            if (data !== null) events.push(JSON.parse(data[1]!) as FeedSnapshot)
          }
        }
      } catch { /* aborted */ }
    })()
  } else {
    await res.text()
  }
  return { status: res.status, events, close: () => ac.abort() }
}

t.test('events: the caller\'s tunnels at once, changes pushed, nobody else\'s', async t => {
  const changes = new EventEmitter()
  const api = await startApi(t, { watchTunnels: changed => { changes.on('change', changed); return () => changes.off('change', changed) } })
  api.tunnels.push({ id: 'c1:1', name: 'alice-web', userId: api.users.alice.id, userName: 'alice', port: 20001 })
  api.tunnels.push({ id: 'c2:1', name: 'bob-db', userId: api.users.bob.id, userName: 'bob', port: 20002 })
  const alice = await open(api.base, '/v1/events', api.users.alice.session)
  t.teardown(() => alice.close())
  t.equal(alice.status, 200)
  await waitFor(() => alice.events.length >= 1, { what: 'the first event' })
  t.same(alice.events[0]!.tunnels.map(x => x.name), ['alice-web'], 'her own tunnel only')
  t.type(alice.events[0]!.at, 'number')

  api.tunnels.push({ id: 'c1:2', name: 'alice-ssh', userId: api.users.alice.id, userName: 'alice', port: 20003 })
  changes.emit('change')
  await waitFor(() => alice.events.some(e => e.tunnels.length === 2), { what: 'the new tunnel pushed' })
  api.tunnels.splice(0, 1)
  changes.emit('change')
  await waitFor(() => alice.events.at(-1)!.tunnels.map(x => x.name).join() === 'alice-ssh', { what: 'the closed tunnel gone' })
  t.notOk(alice.events.some(e => e.tunnels.some(x => x.userId !== api.users.alice.id)), 'never bob\'s')

  const asAll = await open(api.base, '/v1/events?all=true', api.users.bob.session)
  t.teardown(() => asAll.close())
  await waitFor(() => asAll.events.length >= 1, { what: 'bob\'s first event' })
  t.same(asAll.events[0]!.tunnels.map(x => x.name), ['bob-db'], '?all=true gives a user only their own')
  const admin = await open(api.base, '/v1/events?all=true', api.users.admin.session)
  t.teardown(() => admin.close())
  await waitFor(() => admin.events.length >= 1, { what: 'the admin\'s first event' })
  t.same(admin.events[0]!.tunnels.map(x => x.name).sort(), ['alice-ssh', 'bob-db'], 'an admin gets everyone\'s')
  t.equal((await open(api.base, '/v1/events', 'mps_not-a-session')).status, 401)
})

t.test('events: at most 8 tabs per user; closing one makes room', async t => {
  const api = await startApi(t)
  const tabs: Stream[] = []
  t.teardown(() => { for (const s of tabs) s.close() })
  for (let i = 0; i < 8; i++) {
    const s = await open(api.base, '/v1/events', api.users.alice.session)
    t.equal(s.status, 200, `tab ${i + 1}`)
    tabs.push(s)
    await waitFor(() => s.events.length >= 1, { what: `tab ${i + 1}'s first event` })
  }
  const ninth = await open(api.base, '/v1/events', api.users.alice.session)
  t.equal(ninth.status, 429, 'the ninth is refused')
  const bob = await open(api.base, '/v1/events', api.users.bob.session)
  tabs.push(bob)
  t.equal(bob.status, 200, 'another user is not affected')
  tabs[0]!.close()
  let again: Stream | undefined
  await waitFor(async () => {
    again = await open(api.base, '/v1/events', api.users.alice.session)
    if (again.status !== 200) return false
    tabs.push(again)
    return true
  }, { what: 'a tab to be admitted after one closed', intervalMs: 50 })
  t.pass('a closed tab frees its place')
})

t.test('feed: a tab whose socket is full is skipped until it drains, not buffered for', async t => {
  const tunnels = [{ id: 'c1:1', name: 'web', userId: 'u1' }]
  let rounds = 0
  const feed = new TunnelFeed({ listing: () => { rounds++; return tunnels }, tickMs: 20 })
  t.teardown(() => feed.close())
  const sent: FeedSnapshot[] = []
  let full = true
  let resume: (() => void) | undefined
  const sub: FeedSubscriber = {
    userId: 'u1',
    all: false,
    send: (_e, data) => { sent.push(data as FeedSnapshot); return !full },
    onDrain: r => { resume = r },
  }
  feed.subscribe(sub)
  await waitFor(() => resume !== undefined, { what: 'the first send to find the socket full' })
  const whileFull = sent.length
  // Five more rounds run: nothing more is written to the full socket.
  const seen = rounds
  await waitFor(() => rounds >= seen + 5, { what: 'five more rounds' })
  t.equal(sent.length, whileFull, 'no event written while the socket is full')
  full = false
  resume!()
  await waitFor(() => sent.length > whileFull, { what: 'events again after drain' })
  t.equal(feed.size, 1)
})
