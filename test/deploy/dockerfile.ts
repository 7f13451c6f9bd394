/**
 * A small Dockerfile reader for the instructions our Dockerfile uses, so tests can check it and
 * run what it says: comments and parser directives skipped, `\` line continuations joined,
 * `--flag=value` options split off, exec form (JSON arrays) told apart from shell form, and
 * `ARG` defaults substituted into `FROM`. Anything it does not understand is an error, not a guess.
 */
import { readFileSync } from 'node:fs'

/** One instruction: its keyword (upper case), its `--flags`, and its arguments. */
export interface Instruction {
  keyword: string
  flags: Record<string, string>
  /** The arguments after the flags, as written (continuations joined with a space). */
  text: string
  /** The exec form's array, when the arguments are one (`["node", "-e", "…"]`). */
  exec?: string[]
  /** 1-based line the instruction starts on. */
  line: number
}

/** One build stage: its `FROM` image, its `AS` name, and its instructions. */
export interface Stage {
  from: string
  name?: string
  instructions: Instruction[]
}

export interface Dockerfile {
  /** `ARG`s before the first `FROM`, with their defaults. */
  globalArgs: Record<string, string>
  stages: Stage[]
}

const KNOWN = new Set(['FROM', 'ARG', 'RUN', 'COPY', 'ADD', 'ENV', 'WORKDIR', 'USER', 'VOLUME', 'EXPOSE', 'HEALTHCHECK', 'ENTRYPOINT', 'CMD', 'LABEL', 'STOPSIGNAL', 'SHELL'])

/** Splits leading `--name=value` options off an instruction's arguments. */
function splitFlags (rest: string): { flags: Record<string, string>, text: string } {
  const flags: Record<string, string> = {}
  let text = rest
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(text)
    if (m === null) break
    flags[m[1]!] = m[2] ?? 'true'
    text = text.slice(m[0].length)
  }
  return { flags, text: text.trim() }
}

/** The exec form's array, or undefined for shell form. */
function execForm (text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined
  const parsed: unknown = JSON.parse(text)
  if (!Array.isArray(parsed) || !parsed.every(a => typeof a === 'string')) throw new Error(`not an array of strings: ${text}`)
  return parsed
}

/** Reads a Dockerfile into its global ARGs and stages. */
export function parseDockerfile (file: string): Dockerfile {
  const lines = readFileSync(file, 'utf8').split('\n')
  const all: Instruction[] = []
  for (let i = 0; i < lines.length; i++) {
    const start = i
    let line = lines[i]!.trim()
    if (line === '' || line.startsWith('#')) continue
    while (line.endsWith('\\')) {
      line = line.slice(0, -1).trimEnd()
      i++
      // Comment lines inside a continuation are dropped, as Docker does.
      while (i < lines.length && lines[i]!.trim().startsWith('#')) i++
      if (i >= lines.length) throw new Error(`${file}:${start + 1}: continuation at the end of the file`)
      line += ' ' + lines[i]!.trim()
    }
    const m = /^(\S+)\s*(.*)$/.exec(line)!
    const keyword = m[1]!.toUpperCase()
    if (!KNOWN.has(keyword)) throw new Error(`${file}:${start + 1}: unknown instruction ${m[1]}`)
    const { flags, text } = splitFlags(m[2]!)
    // HEALTHCHECK's own arguments are `CMD …` (or NONE): the exec form is after CMD.
    const execText = keyword === 'HEALTHCHECK' ? text.replace(/^CMD\s+/, '') : text
    const exec = ['RUN', 'CMD', 'ENTRYPOINT', 'HEALTHCHECK', 'VOLUME', 'SHELL'].includes(keyword) ? execForm(execText) : undefined
    all.push({ keyword, flags, text, line: start + 1, ...(exec ? { exec } : {}) })
  }
  const globalArgs: Record<string, string> = {}
  const stages: Stage[] = []
  for (const ins of all) {
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.text)
      if (m === null) throw new Error(`${file}:${ins.line}: cannot read FROM ${ins.text}`)
      const from = m[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => {
        const v = globalArgs[(a ?? b)!]
        if (v === undefined) throw new Error(`${file}:${ins.line}: FROM uses ${a ?? b}, which no ARG before it sets`)
        return v
      })
      stages.push({ from, ...(m[2] ? { name: m[2] } : {}), instructions: [] })
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new Error(`${file}:${ins.line}: ${ins.keyword} before the first FROM`)
      const [name, value] = ins.text.split('=', 2)
      globalArgs[name!] = value ?? ''
    } else {
      stages.at(-1)!.instructions.push(ins)
    }
  }
  return { globalArgs, stages }
}

/** The instructions of a stage with this keyword. */
export function instructions (stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter(i => i.keyword === keyword)
}

/** The one instruction of a stage with this keyword that takes effect (the last). */
export function last (stage: Stage, keyword: string): Instruction | undefined {
  return instructions(stage, keyword).at(-1)
}
