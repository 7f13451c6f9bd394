/** Children that announce their port as a JSON line, and reading such lines. */
import type { ChildProcess } from 'node:child_process'
import { LineReader, killChild, spawnTs, type NodeWrapper } from './procs.js'

const START_TIMEOUT = 20_000

/** Parses the JSON object that starts somewhere in `line`. */
export function jsonOf<T> (line: string): T {
  return JSON.parse(line.slice(line.indexOf('{'))) as T
}

/** Matches a line that is a JSON object with `key`. */
export const isJsonWith = (key: string) => (l: string): boolean => {
  if (!l.trimStart().startsWith('{')) return false
  try { return key in (JSON.parse(l) as object) } catch { return false }
}

/** A TypeScript child that prints {"port": N}; killed again if it does not say so in time. */
export async function portChild (file: URL, args: string[], label: string, wrapper?: NodeWrapper): Promise<{ child: ChildProcess, port: number }> {
  const child = spawnTs(file, args, {}, wrapper)
  const out = new LineReader(child, label)
  try {
    return { child, port: jsonOf<{ port: number }>(await out.waitLine(isJsonWith('port'), wrapper?.startTimeoutMs ?? START_TIMEOUT, 'its port')).port }
  } catch (err) {
    await killChild(child)
    throw err
  }
}
