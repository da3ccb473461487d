// Rewrite engines compared (a script, not a timed test):
//   `node --import tsx bench/rewrite-svm.ts [--size 2000] [--state-dir DIR]`.
//
// In a sandbox of its own: N Secrets of about 1 KiB (in 20 namespaces) are created under key k1;
// the write key then changes, so every value is stale, and `kubectl encryption rewrite -A` (the
// client engine, its defaults) re-encrypts them; the key changes again and `rewrite -A --engine svm`
// hands the same work to kube-controller-manager's storage-version migrator. Every run is checked
// in etcd (every value under the new key) and timed as bench/rewrite.ts does (wall seconds of the
// whole command, peak RSS of the plugin, 1-minute load average before→after). For svm the note
// gives the migration's own creation → Succeeded time (1 s resolution).
import {randomBytes} from 'node:crypto'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {connectCluster} from '../src/kube/connect.js'
import type {ApiResource, KubeCluster} from '../src/kube/types.js'
import {newKey, type TestKey} from '../test/e2e/helpers/encryption-setup.js'
import {startSandbox} from '../test/sandbox/sandbox.js'
import {benchControlPlane, measure, printTable, sh} from './bench-lib.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const arg = (name: string) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}
const size = Number(arg('--size') ?? 2000)
const stateDir = path.resolve(arg('--state-dir') ?? path.join(root, '.sandbox-bench-svm'))
const SECRETS: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}
const NAMESPACES: ApiResource = {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false}
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`)
const NAMESPACE_COUNT = 20

interface MigrationJson {
  metadata: {creationTimestamp: string}
  status?: {conditions?: Array<{type: string; status: string; lastTransitionTime: string}>}
}

async function main() {
  const sandbox = await startSandbox({stateDir, log, ownerMarker: fileURLToPath(import.meta.url)})
  const env: NodeJS.ProcessEnv = {...process.env, ...sandbox.env, CI: '1', XDG_STATE_HOME: path.join(stateDir, 'xdg')}
  const cluster: KubeCluster = await connectCluster({kubeconfig: env.KUBECONFIG})
  const {setKeys, countUnder} = benchControlPlane(sandbox, env, cluster)
  const rows: string[][] = []
  let keyIndex = 1
  const keysInUse: TestKey[] = [newKey(`k${keyIndex}`)]
  const rotate = async () => {
    keysInUse.unshift(newKey(`k${++keyIndex}`))
    keysInUse.splice(3)
    await setKeys(keysInUse)
    return keysInUse[0]!.name
  }

  /**
   * creation → Succeeded of an svm run's migration, by the API server's and the controller's clocks
   * (1 s resolution); the rest of the wall time is the plugin's start-up, counts and last poll.
   * (Running is no use as a mark: it turns False once the migration has finished.)
   */
  async function migrationTimes(name: string): Promise<string> {
    const m = JSON.parse(
      await sh(env, 'kubectl', ['get', 'storageversionmigration', name, '-o', 'json']),
    ) as MigrationJson
    const done = m.status?.conditions?.find((x) => x.type === 'Succeeded' && x.status === 'True')
    if (!done) return 'no Succeeded condition'
    const seconds = (Date.parse(done.lastTransitionTime) - Date.parse(m.metadata.creationTimestamp)) / 1000
    return `migration created→Succeeded ${seconds.toFixed(0)} s`
  }

  async function pluginRun(label: string, args: string[], key: string) {
    log(`${size}: ${label}`)
    const m = await measure(
      [
        [
          process.execPath,
          [path.join(root, 'bin/run.js'), 'rewrite', '--ssh-config', env.SANDBOX_SSH_CONFIG!, ...args, '-o', 'json'],
        ],
      ],
      env,
    )
    if (m.code !== 0) throw new Error(`${label} failed (exit ${m.code}): ${m.stderr}`)
    const check = await countUnder(key)
    const result = JSON.parse(m.stdout) as {
      totals: {rewritten: number; alreadyCurrent: number}
      migrations?: Array<{name: string}>
    }
    const times = result.migrations?.[0] ? `; ${await migrationTimes(result.migrations[0].name)}` : ''
    rows.push([
      String(size),
      label,
      m.seconds.toFixed(1),
      (size / m.seconds).toFixed(0),
      m.peakRssMiB.toFixed(0),
      `${check.current}/${check.total}`,
      m.load,
      `rewritten ${result.totals.rewritten}, already current ${result.totals.alreadyCurrent}${times}`,
    ])
    log(rows.at(-1)!.join(' | '))
  }

  try {
    await setKeys(keysInUse)
    log(`seeding ${size} Secrets`)
    for (let n = 0; n < NAMESPACE_COUNT; n++)
      await cluster.objects
        .create(NAMESPACES, {apiVersion: 'v1', kind: 'Namespace', metadata: {name: `bench-${n}`}})
        .catch(() => undefined)
    let next = 0
    await Promise.all(
      Array.from({length: 32}, async () => {
        while (next < size) {
          const i = next++
          await cluster.objects.create(SECRETS, {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: {name: `s-${String(i).padStart(6, '0')}`, namespace: `bench-${i % NAMESPACE_COUNT}`},
            data: {pad: randomBytes(700).toString('base64')},
          })
        }
      }),
    )
    await pluginRun('rewrite -A (client engine, all stale)', ['-A'], await rotate())
    await pluginRun('rewrite -A --engine svm (all stale)', ['-A', '--engine', 'svm'], await rotate())
  } finally {
    cluster.close()
    await sandbox.stop()
  }
  printTable(rows)
}

await main()
