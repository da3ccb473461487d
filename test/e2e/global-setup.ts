// One sandbox for the whole end-to-end run (vitest globalSetup): started before the first e2e file,
// stopped after the last. Tests read its environment with `inject('sandbox')` (see helpers/sandbox.ts).
import {rmSync} from 'node:fs'
import path from 'node:path'
import type {TestProject} from 'vitest/node'
import {repoRoot} from '../sandbox/layout.js'
import {startSandbox, type SandboxHandle} from '../sandbox/sandbox.js'
import {baselineFile} from './helpers/baseline-file.js'

export interface SandboxInfo {
  env: Record<string, string>
  nodes: string[]
  /** InternalIP per node name */
  nodeIps: Record<string, string>
  lbEndpoint: string
  stateDir: string
  startupMs: number
}

declare module 'vitest' {
  export interface ProvidedContext {
    sandbox: SandboxInfo
  }
}

let handle: SandboxHandle | undefined

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stateDir = process.env.SANDBOX_E2E_STATE_DIR ?? path.join(repoRoot, '.sandbox-e2e')
  handle = await startSandbox({
    stateDir,
    // kubelet crashLoopBackOff.maxContainerRestartPeriod: keeps crash-loop tests short
    maxBackoffMs: 5_000,
    log: (m) => process.stderr.write(`[sandbox] ${m}\n`),
    ownerMarker: 'vitest',
  })
  // the first e2e file records the sandbox's baseline afresh (helpers/baseline.ts)
  rmSync(baselineFile(handle.layout.stateDir), {force: true})
  process.stderr.write(`[sandbox] cold start ${(handle.startupMs / 1000).toFixed(1)} s\n`)
  const {layout} = handle
  project.provide('sandbox', {
    env: handle.env,
    nodes: handle.nodes,
    nodeIps: Object.fromEntries(layout.nodes.map((n) => [n.name, n.ip])),
    lbEndpoint: `${layout.lbIp}:${layout.apiPort}`,
    stateDir: layout.stateDir,
    startupMs: handle.startupMs,
  })
  return async () => {
    await handle?.stop()
  }
}
