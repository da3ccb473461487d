// Child processes of the sandbox. Every long-running child gets its own process group, so stopping it
// (SIGTERM, then SIGKILL after a grace period) also ends whatever it started. PIDs are recorded in
// the state dir so `--down` can end a sandbox started by another process.
import {spawn, type ChildProcess, type SpawnOptions} from 'node:child_process'
import {openSync, closeSync} from 'node:fs'

export interface Supervised {
  name: string
  child: ChildProcess
  exited: Promise<number | null>
}

export function spawnLogged(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  options: SpawnOptions = {},
): Supervised {
  const fd = openSync(logFile, 'a')
  const child = spawn(command, args, {...options, stdio: ['ignore', fd, fd], detached: true})
  closeSync(fd)
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)))
    child.once('error', () => resolve(-1))
  })
  return {name, child, exited}
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal)
    } catch {
      // already gone
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** SIGTERM the process group of `pid`, wait up to `graceMs`, then SIGKILL it. Resolves when it is gone. */
export async function stopGroup(pid: number, graceMs = 5000): Promise<void> {
  signalGroup(pid, 'SIGTERM')
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline) {
    if (!isAlive(pid) && !groupAlive(pid)) return
    await sleep(50)
  }
  signalGroup(pid, 'SIGKILL')
  for (let i = 0; i < 40 && (isAlive(pid) || groupAlive(pid)); i++) await sleep(50)
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
