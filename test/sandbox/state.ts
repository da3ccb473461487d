// The record of a running sandbox (state.json): who owns it and which process groups it started, so
// `--down` (or the next start) can end it by PID, never by name.
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {isAlive, stopGroup} from './processes.js'

export interface RecordedProcess {
  name: string
  pid: number
  /** a string that must appear in /proc/<pid>/cmdline, so a reused PID is never signalled */
  marker: string
}

export interface SandboxState {
  ownerPid: number
  ownerMarker: string
  startedAt: string
  subnet: string
  processes: RecordedProcess[]
}

export function readState(file: string): SandboxState | undefined {
  if (!existsSync(file)) return undefined
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SandboxState
  } catch {
    return undefined
  }
}

export function writeState(file: string, state: SandboxState): void {
  writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`, {mode: 0o644})
}

export function isOurs(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(marker)
  } catch {
    return false
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Ends the sandbox recorded in `file` (its owner first, which stops its children in order). */
export async function stopRecorded(file: string, log: (m: string) => void = () => undefined): Promise<boolean> {
  const state = readState(file)
  if (!state) return false
  if (state.ownerPid !== process.pid && isOurs(state.ownerPid, state.ownerMarker)) {
    log(`stopping sandbox (pid ${state.ownerPid})`)
    process.kill(state.ownerPid, 'SIGTERM')
    for (let i = 0; i < 300 && isOurs(state.ownerPid, state.ownerMarker); i++) await sleep(50)
    if (isOurs(state.ownerPid, state.ownerMarker)) process.kill(state.ownerPid, 'SIGKILL')
  }
  for (const p of state.processes) {
    if (isOurs(p.pid, p.marker)) {
      log(`stopping leftover ${p.name} (pid ${p.pid})`)
      await stopGroup(p.pid, 3000)
    }
  }
  rmSync(file, {force: true})
  return true
}
