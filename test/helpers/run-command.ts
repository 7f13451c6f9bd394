/**
 * A command run to its end without blocking the test process (a relay under test in the same
 * process answers the command's requests), bounded in time; a failure is a result, not a throw.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

export interface CommandResult { code: number, stdout: string, stderr: string }

export async function runCommand (file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(file, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string, message: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message }
  }
}
