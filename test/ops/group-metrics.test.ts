/** mport_group_members counts load-balancing group members by state, from a real relay at each scrape. */
import t from 'tap'
import { RelayMetrics } from '../../packages/mport-relay/src/ops/metrics.js'
import { observeRelay } from '../../packages/mport-relay/src/ops/relay-observer.js'
import { makeClient, startEcho, startRelay, tcpSpec } from '../helpers/tunnel.js'
import { sampleValue } from '../helpers/prom-text.js'
import { waitFor } from '../helpers/wait.js'

t.test('members by state: two ready, then one gone while its lease waits', async t => {
  const relay = await startRelay()
  const echo = await startEcho()
  const metrics = new RelayMetrics()
  const stop = observeRelay(relay, metrics)
  const spec = { ...tcpSpec(echo.port), name: 'web', group: 'web' }
  const a = makeClient(relay, [spec])
  const b = makeClient(relay, [spec])
  t.teardown(async () => { stop(); await a.close(); await b.close(); await relay.close(0); await echo.close() })
  await a.start()
  await b.start()
  let text = await metrics.text()
  t.equal(sampleValue(text, 'mport_group_members', { state: 'ready' }), 2, 'two ready members')
  t.equal(sampleValue(text, 'mport_group_members', { state: 'gone' }), 0, 'every state is exported')
  await b.close()
  await waitFor(async () => { text = await metrics.text(); return sampleValue(text, 'mport_group_members', { state: 'gone' }) === 1 }, { what: 'the closed client to count as gone', diag: () => text })
  t.equal(sampleValue(text, 'mport_group_members', { state: 'ready' }), 1, 'one ready left')
})
