/**
 * Summarizes .cpuprofile files (from BENCH_MPORT_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR"):
 * self time per function and per file, as shares of all samples.
 *   npx tsx bench/tunnel/profile-summary.ts DIR/*.cpuprofile [top]
 */
import { readFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[] }

const args = process.argv.slice(2)
const top = Number(args.find(a => /^\d+$/.test(a)) ?? 25)
for (const file of args.filter(a => !/^\d+$/.test(a))) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map(n => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0))
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const fn = new Map<string, number>()
  const files = new Map<string, number>()
  for (const [id, t] of self) {
    const n = byId.get(id)
    if (n === undefined) continue
    const url = n.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|dist|src)\//, '$1/')
    const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`
    fn.set(key, (fn.get(key) ?? 0) + t)
    const f = url === '' ? `(${n.callFrame.functionName})` : url
    files.set(f, (files.get(f) ?? 0) + t)
  }
  const show = (m: Map<string, number>, k: number): string => [...m].sort((a, b) => b[1] - a[1]).slice(0, k)
    .map(([name, t]) => `  ${(100 * t / total).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(6)} ms  ${name}`).join('\n')
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s sampled\n-- self time by function --\n${show(fn, top)}\n-- self time by file --\n${show(files, 15)}\n\n`)
}
