/**
 * The client's health checks against real services on loopback: tcp (a connect) and http (the
 * status of a GET), the spec's parser, and the checker on a manual clock: a check per interval,
 * only changes reported.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { checkHealth, HealthChecks, parseHealthCheck, type HealthResult } from '../../src/tunnel/client-health.js'
import { ManualClock } from '../helpers/manual-clock.js'
import { closedPort, listen } from '../helpers/ports.js'
import { waitFor } from '../helpers/wait.js'

t.test('tcp: a listening port is healthy, a closed one is not (with the errno)', async t => {
  const server = net.createServer(s => s.destroy())
  const port = await listen(server)
  t.teardown(() => { server.close() })
  t.same(await checkHealth({ type: 'tcp' }, '127.0.0.1', port), { healthy: true })
  const dead = await closedPort()
  t.same(await checkHealth({ type: 'tcp' }, '127.0.0.1', dead), { healthy: false, detail: `tcp 127.0.0.1:${dead}: ECONNREFUSED` })
})

t.test('http: 2xx and 3xx are healthy, others are not; the path is asked for', async t => {
  const paths: string[] = []
  let status = 200
  const server = http.createServer((req, res) => { paths.push(req.url ?? ''); res.statusCode = status; res.end() })
  const port = await listen(server as unknown as net.Server)
  t.teardown(() => { server.close() })
  t.same(await checkHealth({ type: 'http', path: '/healthz' }, '127.0.0.1', port), { healthy: true })
  status = 302
  t.same(await checkHealth({ type: 'http', path: '/healthz' }, '127.0.0.1', port), { healthy: true }, 'a redirect is an answer')
  status = 500
  t.same(await checkHealth({ type: 'http', path: '/healthz' }, '127.0.0.1', port), { healthy: false, detail: 'GET /healthz: HTTP 500' })
  t.same(paths, ['/healthz', '/healthz', '/healthz'])
  const dead = await closedPort()
  t.same(await checkHealth({ type: 'http' }, '127.0.0.1', dead), { healthy: false, detail: 'GET /: ECONNREFUSED' })
})

t.test('parseHealthCheck: tcp, http, http:/path; the interval; typed errors', async t => {
  t.same(parseHealthCheck('tcp'), { type: 'tcp' })
  t.same(parseHealthCheck('http'), { type: 'http', path: '/' })
  t.same(parseHealthCheck('http:/status?deep=1', 2000), { type: 'http', path: '/status?deep=1', intervalMs: 2000 })
  t.throws(() => parseHealthCheck('udp'), { code: 'MPORT_ERR_INVALID_CONFIG', message: 'invalid config "health-check": "udp" is not tcp, http or http:/path' })
  t.throws(() => parseHealthCheck('http:status'), { code: 'MPORT_ERR_INVALID_CONFIG' }, 'a path starts with /')
  t.throws(() => parseHealthCheck('tcp', 50), { code: 'MPORT_ERR_INVALID_CONFIG', message: /at least 100/ })
})

t.test('HealthChecks on a manual clock: one check per interval, changes reported once', async t => {
  let up = true
  let requests = 0
  const server = http.createServer((_req, res) => { requests++; res.statusCode = up ? 200 : 503; res.end() })
  const port = await listen(server as unknown as net.Server)
  t.teardown(() => { server.close() })
  const clock = new ManualClock()
  const reports: Array<[number, HealthResult]> = []
  const checks = new HealthChecks((id, r) => reports.push([id, r]), clock.setTimer)
  checks.start(7, { type: 'http', path: '/', intervalMs: 1000 }, '127.0.0.1', port)
  await waitFor(() => reports.length === 1, { what: 'the first result' })
  t.same(reports, [[7, { healthy: true }]], 'the first result is reported')
  clock.advance(1000)
  await waitFor(() => requests === 2, { what: 'the second check' })
  await waitFor(() => !checks.running(7), { what: 'its result' })
  t.equal(reports.length, 1, 'an unchanged result is not reported again')
  up = false
  clock.advance(1000)
  await waitFor(() => reports.length === 2, { what: 'the failure' })
  t.same(reports[1], [7, { healthy: false, detail: 'GET /: HTTP 503' }])
  checks.stop(7)
  t.equal(clock.pending, 0, 'stop cancels the timer')
  checks.stopAll()
})
