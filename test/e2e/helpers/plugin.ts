// Runs the built plugin the way users do: `kubectl encryption …` through the real kubectl, which
// finds `kubectl-encryption` on PATH. The sandbox's env (KUBECONFIG, ETCDCTL_*, SANDBOX_*) applies.
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdirSync, symlinkSync} from 'node:fs'
import {join} from 'node:path'

import {type RunResult, run, sandbox} from './sandbox.js'

const repo = new URL('../../../', import.meta.url).pathname
/** A directory holding only `kubectl-encryption` (a link to bin/run.js), in the checkout: nothing left in /tmp. */
const binDir = join(repo, '.tools', 'e2e-bin')
let linked = false

export function pluginPath(): string {
  if (!linked) {
    mkdirSync(binDir, {recursive: true})
    try {
      symlinkSync(join(repo, 'bin', 'run.js'), join(binDir, 'kubectl-encryption'))
    } catch (error) {
      // another test file's worker made it first
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    linked = true
  }
  return `${binDir}:${process.env.PATH}`
}

/** Everything the plugin printed in this test file (for "no key material in any output" checks). */
export const pluginOutputs: string[] = []

/** `kubectl encryption ARGS` with the sandbox's env. */
export async function plugin(
  args: string[],
  options: {env?: Record<string, string>; timeoutMs?: number} = {},
): Promise<RunResult> {
  const r = await run('kubectl', ['encryption', ...args], {
    env: {PATH: pluginPath(), ...options.env},
    timeoutMs: options.timeoutMs ?? 300_000,
  })
  pluginOutputs.push(r.stdout, r.stderr)
  return r
}

/** The same, started in the background (for signals). */
export function spawnPlugin(args: string[]): {child: ChildProcess; done: Promise<RunResult>} {
  const child = spawn('kubectl', ['encryption', ...args], {
    env: {...process.env, ...sandbox().env, PATH: pluginPath()},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout!.on('data', (c: Buffer) => out.push(c))
  child.stderr!.on('data', (c: Buffer) => err.push(c))
  const done = new Promise<RunResult>((resolve) =>
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    ),
  )
  return {child, done}
}

/** The SSH flags every cluster command needs in the sandbox. */
export const sshArgs = () => ['--ssh-config', sandbox().env.SANDBOX_SSH_CONFIG!]

export function json<T = Record<string, unknown>>(result: RunResult): T {
  try {
    return JSON.parse(result.stdout) as T
  } catch {
    throw new Error(`not JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`)
  }
}
