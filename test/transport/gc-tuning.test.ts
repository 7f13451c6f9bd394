// tuneGcForForwarding(): after it, dead young ArrayBuffers are freed inside the scavenge itself,
// which is what keeps V8 from counting them against the old generation's limit (see
// src/transport/gc-tuning.ts). Observed in a child process: the flag is process-wide.
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { REPO_ROOT } from '../helpers/spawn.js'

const run = promisify(execFile)
const probe = path.join(REPO_ROOT, 'test/fixtures/array-buffer-sweep-probe.ts')

t.test('young ArrayBuffers are freed by the time the scavenge returns', async t => {
  const { stdout } = await run(process.execPath, ['--expose-gc', '--import', 'tsx', probe, '--tune'], { cwd: REPO_ROOT, timeout: 60_000 })
  const result = JSON.parse(stdout.trim()) as { rounds: number, freedInScavenge: number }
  t.equal(result.rounds, 10)
  t.equal(result.freedInScavenge, result.rounds, 'every round freed its 8 MiB within the scavenge')
})
