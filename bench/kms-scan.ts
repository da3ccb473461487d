/**
 * `kubectl encryption status --scan` over KMS v2 values (issue 15): in a sandbox of its own, the
 * sandbox's KMS v2 plugin (test/sandbox/kube/cmd/sandbox-kms-plugin) on every node, enabled with the
 * plugin's own `enable --provider kms`, and N ~1 KiB Secrets written through the real apiserver, so
 * every value is a KMS v2 EncryptedObject as kube-apiserver stores it. The scan counts them per key ID
 * from etcd without calling the KMS. In the same run, two peers over the same sizes:
 *   - the same scan of N aescbc values (written straight into etcd before KMS is enabled, as
 *     bench/status-scan.ts does, then deleted): what the KMS v2 decoding costs against a plain prefix;
 *   - `etcdctl get --prefix /registry/secrets/ -w protobuf` of the KMS values: reading the same bytes
 *     with nothing decoded, a floor.
 * Wall seconds, values/s, CPU seconds and peak RSS (VmHWM) per run; the peak RSS ratio between the
 * largest and the smallest size per row kind. Prints a table (and the same as markdown); not a timed test.
 *
 *   npx tsx bench/kms-scan.ts [--sizes 2000,20000] [--transports direct]
 *       [--state-dir .sandbox-bench-kms]
 */
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {connectCluster} from '../src/kube/connect.js'
import {formatTable} from '../src/output/render.js'
import {type KmsPlugin, startKmsPlugin} from '../test/e2e/helpers/kms-plugin.js'
import {startSandbox} from '../test/sandbox/sandbox.js'
import {
  aescbcScanValues,
  commitOf,
  etcdClient,
  markdownTable,
  measure,
  SCAN_COLUMNS,
  type ScanRun,
  scanCells,
  seedSecrets,
  sh,
  timedScan,
} from './bench-lib.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1]! : fallback
}
const sizes = arg('sizes', '2000,20000').split(',').map(Number)
const transports = arg('transports', 'direct').split(',')
const stateDir = path.resolve(arg('state-dir', path.join(root, '.sandbox-bench-kms')))
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`)
const NAMESPACES = 20
const SOCKET = '/etc/kubernetes/kms/kms.sock'
const KMS_NAME = 'bench-kms'

const tmp = mkdtempSync(path.join(tmpdir(), 'bench-kms-scan-'))
const aescbc = aescbcScanValues(tmp)
/** The config the KMS scans are judged against: what `enable --provider kms` writes on the nodes. */
const kmsConfigPath = path.join(tmp, 'kms.yaml')
writeFileSync(
  kmsConfigPath,
  `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - kms:\n          apiVersion: v2\n          name: ${KMS_NAME}\n          endpoint: unix://${SOCKET}\n          timeout: 3s\n      - identity: {}\n`,
  {mode: 0o600},
)

const rows: Array<Array<string | number>> = []
const peaks = new Map<string, Map<number, number>>()
const counts = new Map<string, Set<string>>()
function addRow(size: number, what: string, transport: string, s: ScanRun) {
  rows.push([size, what, transport, ...scanCells(s)])
  const id = `${what} ${transport}`
  peaks.set(id, (peaks.get(id) ?? new Map()).set(size, s.rssMiB))
  log(rows.at(-1)!.join(' | '))
}

async function main() {
  const commit = commitOf(root)
  const header = `KMS v2 status --scan bench, ${new Date().toISOString()}, commit ${commit}, ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`
  log(header)
  const sandbox = await startSandbox({stateDir, log, ownerMarker: fileURLToPath(import.meta.url)})
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...sandbox.env,
    CI: '1',
    XDG_STATE_HOME: path.join(stateDir, 'xdg'),
  }
  const cluster = await connectCluster({kubeconfig: env.KUBECONFIG})
  const etcd = etcdClient(env)
  const plugins: KmsPlugin[] = []
  try {
    // Peer 1: the same scan over aescbc values, put into etcd directly (no KMS configured yet).
    const PEER_PREFIX = '/registry/secrets/bench-aescbc/'
    let filled = 0
    for (const size of sizes) {
      for (let i = filled; i < size; i += 500)
        await Promise.all(
          Array.from({length: Math.min(500, size - i)}, (_, j) =>
            etcd.put(`${PEER_PREFIX}s-${String(i + j).padStart(6, '0')}`).value(aescbc.storedValue()),
          ),
        )
      filled = size
      for (const transport of transports)
        addRow(
          size,
          'aescbc (peer)',
          transport,
          await timedScan({build: root, transport, env, configPath: aescbc.configPath, label: `aescbc-${size}`}),
        )
    }
    await etcd.delete().prefix(PEER_PREFIX)

    // The KMS plugin on every node, sharing its KEK, and the plugin's own enable.
    const keks: Buffer[] = []
    for (const node of sandbox.layout.nodes) {
      const socket = path.join(node.etcKubernetes, SOCKET.replace('/etc/kubernetes/', ''))
      mkdirSync(path.dirname(socket), {recursive: true})
      plugins.push(await startKmsPlugin(socket, {keks, binDir: env.SANDBOX_BIN_DIR}))
    }
    log('enable --provider kms')
    await sh(env, process.execPath, [
      path.join(root, 'bin', 'run.js'),
      'enable',
      '--provider',
      'kms',
      '--kms-endpoint',
      `unix://${SOCKET}`,
      '--kms-name',
      KMS_NAME,
      '--no-kubeadm-config',
      '--yes',
      '--ssh-config',
      env.SANDBOX_SSH_CONFIG!,
    ])

    let seeded = 0
    for (const size of sizes) {
      log(`writing Secrets ${seeded}..${size} through the apiserver`)
      const started = performance.now()
      await seedSecrets(cluster, seeded, size, NAMESPACES)
      log(`  ${size - seeded} in ${((performance.now() - started) / 1000).toFixed(0)} s`)
      seeded = size
      for (const transport of transports) {
        const s = await timedScan({build: root, transport, env, configPath: kmsConfigPath, label: `kms-${size}`})
        const seen = counts.get(`${size}`) ?? new Set()
        counts.set(`${size}`, seen.add(s.counts))
        addRow(size, 'KMS v2', transport, s)
        const kms = JSON.parse(s.counts)[0] as Array<{resource: string; kmsKeys?: Array<{count: number}>}>
        const underKms = kms.find((r) => r.resource === 'secrets')?.kmsKeys?.reduce((a, k) => a + k.count, 0) ?? 0
        if (underKms < size) throw new Error(`the scan found ${underKms} KMS values, expected at least ${size}`)
      }
      // Peer 2: the same bytes read by etcdctl, nothing decoded (a floor).
      const m = await measure(
        [['etcdctl', ['get', '--prefix', '/registry/secrets/', '-w', 'protobuf']]],
        env as NodeJS.ProcessEnv,
      )
      if (m.code !== 0) throw new Error(`etcdctl: ${m.stderr}`)
      const values = Number(
        (
          await sh(env as NodeJS.ProcessEnv, 'etcdctl', [
            'get',
            '--prefix',
            '/registry/secrets/',
            '--count-only',
            '-w',
            'fields',
          ])
        ).match(/"Count" : (\d+)/)?.[1] ?? 0,
      )
      addRow(size, 'etcdctl get --prefix (floor)', 'direct', {
        seconds: m.seconds,
        cpuSeconds: Number.NaN,
        rssMiB: m.peakRssMiB,
        values,
        counts: '',
        load: m.load,
      })
    }
  } finally {
    etcd.close()
    cluster.close()
    for (const p of plugins) await p.stop()
    await sandbox.stop()
  }

  const headers = ['secrets', 'values', 'etcd via', ...SCAN_COLUMNS]
  process.stdout.write(`${header}\n\n${formatTable(headers, rows)}\n\n${markdownTable(headers, rows)}\n\n`)
  for (const [id, bySize] of peaks) {
    const small = bySize.get(sizes[0]!)
    const large = bySize.get(sizes.at(-1)!)
    if (small && large)
      process.stdout.write(`peak RSS ${sizes.at(-1)} vs ${sizes[0]}, ${id}: ${(large / small).toFixed(2)}x\n`)
  }
}

await main()
