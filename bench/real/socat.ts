/** socat as a contestant: a plain per-connection TCP forwarder (no crypto, no multiplexing), the floor of any tunnel. */
import { LineReader, killChild, processTree, spawnLimited } from '../harness/procs.js'
import type { Contestant } from '../tunnel/contestants.js'
import { freePort, missing, waitForPort } from './services.js'

export const socat: Contestant = {
  key: 'socat',
  name: 'socat (plain TCP forwarder, fork per connection)',
  skip: missing('socat', 'socat'),
  fdsFor: n => 2 * n + 64,
  async start (targetPort) {
    const port = await freePort()
    const child = spawnLimited('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=1024`, `TCP:127.0.0.1:${targetPort}`])
    const out = new LineReader(child, 'socat')
    try {
      await waitForPort(port, 'socat', () => child.exitCode !== null)
    } catch (err) {
      await killChild(child)
      throw new Error(`${(err as Error).message}: ${out.lines.slice(-5).join(' | ')}`)
    }
    const pid = child.pid as number
    // A child per connection: the tree, so that their CPU counts as the tunnel's.
    return { port, pids: () => ({ relay: processTree(pid), client: [] }), stop: () => killChild(child) }
  },
}
