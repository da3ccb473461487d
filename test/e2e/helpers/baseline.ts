// Every e2e file starts from the sandbox as it was before the first file ran (vitest setupFiles, see
// test/e2e/setup-file.ts). The files share one cluster; a file whose own afterAll could not put the
// nodes back (a failure, a timeout) would otherwise hand an encrypted or half-restarted control plane
// to every file after it, and their failures would hide the first one. The first file records the
// baseline; each later file compares the nodes with it and, when they differ, says so on stderr and
// restores it (decrypting first, as restoreControlPlane does) before its own tests run.
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {baselineFile} from './baseline-file.js'
import {
  allNodeStates,
  kubeadmClusterConfiguration,
  restoreControlPlane,
  type SavedControlPlane,
  saveControlPlane,
} from './control-plane-state.js'
import {isReady, mirrorPod, sandbox, waitFor} from './sandbox.js'

interface Baseline {
  saved: SavedControlPlane
  states: Record<string, string>
}

async function allApiserversReady(): Promise<void> {
  await waitFor(
    'every kube-apiserver to be Ready',
    async () => {
      for (const node of sandbox().nodes) if (!isReady(await mirrorPod(`kube-apiserver-${node}`))) return false
      return true
    },
    180_000,
  )
}

/** Records the baseline (first file) or puts the sandbox back to it (later files, when it changed). */
export async function startFromBaseline(): Promise<void> {
  const file = baselineFile(sandbox().stateDir)
  if (!existsSync(file)) {
    await allApiserversReady()
    const baseline: Baseline = {saved: await saveControlPlane(), states: await allNodeStates()}
    writeFileSync(file, JSON.stringify(baseline), {mode: 0o600})
    return
  }
  const baseline = JSON.parse(readFileSync(file, 'utf8')) as Baseline
  const now = await allNodeStates()
  const changedNodes = sandbox().nodes.filter((n) => now[n] !== baseline.states[n])
  const kubeadmChanged = (await kubeadmClusterConfiguration()) !== baseline.saved.kubeadmConfig
  if (changedNodes.length === 0 && !kubeadmChanged) return allApiserversReady()
  // The lines that differ say which file to fix (a manifest hash, a config, a backup dir left behind).
  const differences = changedNodes.map((n) => {
    const before = new Set(baseline.states[n]?.split('\n'))
    const after = new Set(now[n]?.split('\n'))
    const lines = [
      ...[...before].filter((l) => !after.has(l)).map((l) => `-${l}`),
      ...[...after].filter((l) => !before.has(l)).map((l) => `+${l}`),
    ]
    return `  ${n}: ${lines.slice(0, 4).join(' | ')}`
  })
  process.stderr.write(
    `[e2e] the previous file left the sandbox changed (${[...changedNodes, ...(kubeadmChanged ? ['kubeadm-config'] : [])].join(', ')}); restoring the baseline before this file\n${differences.map((d) => `${d}\n`).join('')}`,
  )
  await restoreControlPlane(baseline.saved)
  await allApiserversReady()
}
