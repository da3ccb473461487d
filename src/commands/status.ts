import {readConfigFlag} from '../flags/config-file.js'
import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {discoverControlPlane} from '../controlplane/control-plane.js'
import {describeReader} from '../etcd/etcd-reader.js'
import {EXIT, usageError} from '../errors.js'
import {etcdFlags, etcdOptionsFromFlags} from '../flags/etcd.js'
import {kubeFlags, kubeOptionsFromFlags} from '../flags/kube.js'
import {sshFlags, sshOptionsFromFlags} from '../flags/ssh.js'
import {connectCluster} from '../kube/connect.js'
import {toPluginError} from '../kube/errors.js'
import {localLeaseClock} from '../cli/cluster-lock.js'
import {openEtcdReader} from '../etcd/etcd-access.js'
import {leaseStatus, readLease} from '../state/operation-lease.js'
import {OperationStateStore} from '../state/operation-state.js'
import {type RotationState, rotationStatus} from '../usecases/rotate.js'
import {scanForStatus} from '../usecases/status/scan-targets.js'
import {encryptionStatus, type StatusResult} from '../usecases/status/status.js'
import {loadEncryptionConfig} from '../encryption/config/load.js'
import {EtcdutlSnapshotOpener} from '../etcd/snapshot-etcd.js'
import {scanSnapshot, type SnapshotScanResult} from '../usecases/scan/snapshot-scan.js'
import {formatFields, formatTable} from '../output/render.js'
import {OpenSshConnector} from '../ssh/open-ssh-session.js'
import {ShellRemoteFiles} from '../ssh/shell-remote-files.js'

type StatusCommandResult = StatusResult | SnapshotScanResult

const isSnapshotResult = (result: StatusCommandResult): result is SnapshotScanResult => 'snapshot' in result

/** Flags that name a live etcd or cluster discovery, which a snapshot scan does not use. */
const NOT_WITH_SNAPSHOT = [
  'resource',
  'etcd-via',
  'etcd-endpoints',
  'etcd-cacert',
  'etcd-cert',
  'etcd-key',
  'etcd-node',
] as const

const counts = (map: Record<string, number>) =>
  Object.entries(map)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ') || '-'

const short = (hash?: string) => (hash ? (hash.length > 19 ? `${hash.slice(0, 19)}…` : hash) : '-')

/** KMS health and, per v2 provider, the key ID hash the apiserver reports: `ok node-kms=sha256:1a2b3c4d…`. */
function kmsCell(n: StatusResult['nodes'][number], wide: boolean): string {
  if (n.kms.length === 0 && n.kmsKeys.length === 0) return '-'
  const health = n.kms.length === 0 ? '?' : n.kms.every((k) => k.ok) ? 'ok' : 'failing'
  const keys = n.kmsKeys.map((k) => `${k.provider}=${wide ? k.keyIdHash : `${k.keyIdHash.slice(0, 15)}…`}`)
  return [health, ...keys].join(' ')
}

export default class Status extends BaseCommand<StatusCommandResult, typeof Status> {
  static override summary =
    'Show whether encryption at rest is on, the same on every apiserver, and (with --scan) true in etcd.'
  static override description =
    `Per control-plane node: apiserver readiness, --encryption-provider-config and its path, automatic reload, the config's sha256 hash (from the file over SSH, or from the apiserver's last_config_info metric), KMS health (the apiserver's kms-providers or kms-provider-N checks, with the error it gives) and, per KMS v2 provider, the hash of the current key ID (the newest Status answer in its metrics), and whether all nodes agree. Apiservers that report different KMS key IDs (drift, e.g. during a KEK rotation) or an unhealthy KMS provider are problems. Per resource in the config: the write provider and key, the keys that can still read, identity fallback. With --scan, every value in etcd under the covered resources is classified: per provider:key, plaintext, stale, undecryptable, orphans.

Exits 5 when something is wrong (encryption off, nodes disagree, an apiserver not ready, a KMS provider unhealthy or KMS key IDs that differ between apiservers, plaintext/stale/undecryptable values), so it works as a check in CI or cron.

With --scan --snapshot FILE, an etcd snapshot (etcdctl snapshot save) is scanned offline instead: no cluster or kubeconfig is used. etcdutl restores it into a private temporary dir and a temporary etcd on 127.0.0.1 serves it for the scan (both found on PATH, or --etcdutl/--etcd-binary, or KUBECTL_ENCRYPTION_ETCDUTL/KUBECTL_ENCRYPTION_ETCD); both are stopped and removed afterwards. It reports how the snapshot's values are stored per provider:key, i.e. the keys a config needs to read this backup; with --config FILE, whether FILE opens every value (exit 0) or not (exit 5, with counts per provider:key). A missing, truncated or damaged snapshot, or a missing etcdutl/etcd, is exit 3.`
  static override examples = [
    'kubectl encryption status',
    'kubectl encryption status --scan',
    'kubectl encryption status --scan --resource secrets -o json',
    'kubectl encryption status --no-ssh',
    'kubectl encryption status --scan --snapshot backup.db',
    'kubectl encryption status --scan --snapshot backup.db --config ./enc-backups/encryption-config-with-old-key.yaml',
    'kubectl encryption status --scan --etcd-endpoints https://10.0.0.1:2379 --etcd-cacert ca.crt --etcd-cert client.crt --etcd-key client.key',
  ]
  static override flags = {
    ...kubeFlags,
    ...sshFlags,
    ...etcdFlags,
    ssh: Flags.boolean({
      description: 'Read config files and the manifests dir on the nodes over SSH (--no-ssh: API and metrics only).',
      default: true,
      allowNo: true,
    }),
    scan: Flags.boolean({
      description: 'Read every value in etcd under the covered resources and classify it.',
      default: false,
    }),
    resource: Flags.string({
      description:
        'With --scan: scan this resource (e.g. secrets, configmaps, pandas.awesome.bears.example); repeatable.',
      multiple: true,
    }),
    config: Flags.string({
      description: 'Use this local EncryptionConfiguration file instead of reading the one on the nodes.',
    }),
    'page-size': Flags.integer({description: 'With --scan: keys per etcd page.', default: 500, min: 1, max: 10_000}),
    snapshot: Flags.string({
      description:
        "With --scan: scan this etcd snapshot file (etcdctl snapshot save) offline instead of the cluster's etcd.",
      helpGroup: 'SNAPSHOT',
    }),
    etcdutl: Flags.string({
      description: 'With --snapshot: the etcdutl binary (default: $KUBECTL_ENCRYPTION_ETCDUTL, then PATH).',
      helpGroup: 'SNAPSHOT',
    }),
    'etcd-binary': Flags.string({
      description:
        'With --snapshot: the etcd binary that serves the restored snapshot (default: $KUBECTL_ENCRYPTION_ETCD, then PATH).',
      helpGroup: 'SNAPSHOT',
    }),
  }

  async execute(): Promise<StatusCommandResult> {
    const flags = this.flags
    if ((flags.etcdutl || flags['etcd-binary']) && !flags.snapshot)
      throw usageError('USAGE', `--${flags.etcdutl ? 'etcdutl' : 'etcd-binary'} needs --snapshot`)
    if (flags.snapshot) return this.scanSnapshotFile(flags.snapshot)
    const kube = kubeOptionsFromFlags(flags)
    const etcdOptions = etcdOptionsFromFlags(flags)
    if (flags.resource && !flags.scan) throw usageError('USAGE', '--resource needs --scan')
    // SSH for etcdctl (--etcd-via ssh) is always available; --no-ssh only stops reading files on the nodes.
    const connector = new OpenSshConnector(sshOptionsFromFlags(flags))
    const ssh = flags.ssh ? connector : undefined
    const localConfig = await readConfigFlag(flags.config)
    const progress = await this.progress('Connecting to the cluster')
    const cluster = await connectCluster(kube).catch((error: unknown) => {
      progress.stop()
      throw toPluginError(error)
    })
    let controlPlane: ReturnType<typeof discoverControlPlane> | undefined
    const discover = () => (controlPlane ??= discoverControlPlane(cluster.objects))
    try {
      return await encryptionStatus({
        context: cluster.context,
        controlPlane: discover,
        probe: cluster.probe,
        files: ssh
          ? (node) => new ShellRemoteFiles(ssh.open({name: node.name, internalIP: node.internalIP}))
          : undefined,
        localConfig,
        onProgress: (text) => progress.update(text),
        rotation: async () => {
          const state = await new OperationStateStore(cluster.objects).read<RotationState>('rotate')
          return state && rotationStatus(state)
        },
        lock: async () => {
          const lease = await readLease(cluster.objects)
          return lease && leaseStatus(lease, localLeaseClock())
        },
        scan: flags.scan
          ? async (config, kmsCurrentKeyIdHashes) => {
              const reader = await openEtcdReader(etcdOptions, {
                controlPlane: discover,
                exec: cluster.exec,
                ssh: connector,
              })
              try {
                return await scanForStatus({
                  reader,
                  config,
                  objects: cluster.objects,
                  discovery: cluster.discovery,
                  resources: flags.resource,
                  pageSize: flags['page-size'],
                  kmsCurrentKeyIdHashes,
                  onProgress: (scanned) =>
                    progress.update(`Scanning etcd through ${describeReader(reader.describe())}: ${scanned} values`),
                })
              } finally {
                await reader.close()
              }
            }
          : undefined,
      })
    } catch (error) {
      throw toPluginError(error)
    } finally {
      progress.stop()
      cluster.close()
    }
  }

  /** --snapshot: offline, no cluster; the config (if any) is loaded first, as `config check` does. */
  private async scanSnapshotFile(file: string): Promise<SnapshotScanResult> {
    const flags = this.flags
    if (!flags.scan)
      throw usageError('USAGE', '--snapshot needs --scan', {
        hint: `Run 'kubectl encryption status --scan --snapshot ${file}'.`,
      })
    const conflicting = NOT_WITH_SNAPSHOT.find((name) => flags[name] !== undefined)
    if (conflicting)
      throw usageError(
        'USAGE',
        `--${conflicting} cannot be used with --snapshot: the snapshot file is read, not the cluster's etcd`,
      )
    const config = flags.config ? {file: flags.config, ...(await loadEncryptionConfig(flags.config))} : undefined
    const progress = await this.progress(`Opening ${file}`)
    try {
      return await scanSnapshot({
        file,
        opener: new EtcdutlSnapshotOpener({etcdutl: flags.etcdutl, etcd: flags['etcd-binary']}),
        config: config && {file: config.file, hash: config.hash, config: config.config},
        pageSize: flags['page-size'],
        onProgress: (text) => progress.update(text),
      })
    } finally {
      progress.stop()
    }
  }

  protected override exitCodeFor(result: StatusCommandResult): number {
    if (isSnapshotResult(result)) return result.config && !result.config.readable ? EXIT.checkFailed : EXIT.ok
    return result.problems.length > 0 ? EXIT.checkFailed : EXIT.ok
  }

  protected renderTable(result: StatusCommandResult, wide: boolean): string {
    if (isSnapshotResult(result)) return renderSnapshot(result, wide)
    const sections: string[] = [`Context: ${result.context} (${result.server})`]
    sections.push(
      formatTable(
        wide
          ? ['node', 'apiserver', 'encryption', 'reload', 'config hash', 'source', 'kms', 'config path', 'endpoint']
          : ['node', 'apiserver', 'encryption', 'reload', 'config hash', 'source', 'kms'],
        result.nodes.map((n) => {
          const row = [
            n.node,
            n.apiserver.pod ? (n.apiserver.ready ? 'ready' : 'not ready') : 'missing',
            n.encryption.enabled ? 'on' : 'off',
            n.encryption.enabled ? (n.encryption.automaticReload ? 'on' : 'off') : '-',
            wide ? (n.config.hash ?? '-') : short(n.config.hash),
            n.config.source ?? '-',
            kmsCell(n, wide),
          ]
          return wide ? [...row, n.encryption.configPath ?? '-', n.apiserver.endpoint ?? '-'] : row
        }),
      ),
    )
    const groups = Object.entries(result.agreement.hashes)
    sections.push(
      result.agreement.agree
        ? `Nodes agree: yes${groups.length === 1 ? ` (${groups[0][0]})` : ''}`
        : `Nodes agree: NO\n${groups.map(([hash, nodes]) => `  ${hash}: ${nodes.join(', ')}`).join('\n')}`,
    )
    if (result.resources.length > 0) {
      sections.push(
        formatTable(
          ['resource', 'write', 'read-only', 'identity fallback'],
          result.resources.map((r) => [
            r.resource,
            r.write,
            r.readOnly.join(', ') || '-',
            r.identityFallback ? 'yes' : 'no',
          ]),
        ),
      )
    }
    if (result.scan) {
      sections.push(
        `Scan of etcd through ${describeReader(result.scan.etcd)}: ${result.scan.keys} values\n` +
          formatTable(
            ['resource', 'total', 'stored as', 'plaintext', 'stale', 'undecryptable', 'orphans'],
            result.scan.resources.map((r) => [
              r.resource,
              r.total,
              Object.entries(r.byProvider)
                .map(([p, n]) => `${p}=${n}`)
                .join(' ') || '-',
              r.plaintext,
              r.stale,
              r.undecryptable,
              r.orphans,
            ]),
          ),
      )
      const kmsRows = result.scan.resources.flatMap((r) =>
        (r.kmsKeys ?? []).map((k) => [
          r.resource,
          k.provider,
          wide ? k.keyIdHash : `${k.keyIdHash.slice(0, 15)}…`,
          k.count,
          k.current === undefined ? '?' : k.current ? 'yes' : 'no (stale)',
        ]),
      )
      if (kmsRows.length > 0)
        sections.push(
          `KMS v2 values per key ID (from etcd; the KMS was not called):\n${formatTable(['resource', 'kms provider', 'key id hash', 'values', 'current'], kmsRows)}`,
        )
    }
    const r = result.rotation
    const l = result.lock
    if (r || l) {
      sections.push(
        formatFields([
          ['Key rotation', r && `${r.oldKey.provider}/${r.oldKey.name} -> ${r.provider}/${r.newKey}: ${r.status}`],
          ['Stage', r && `${r.stage} (done: ${r.completedStages.join(', ') || 'none'})`],
          ['Error', r?.error],
          ['Next', r?.next],
          [
            'Lock',
            l &&
              `held by ${l.holder} for ${l.operation} since ${l.since}${l.stale ? ` (stale: not renewed since ${l.renewedAt}; the next run takes it over)` : ''}`,
          ],
        ]),
      )
    }
    if (result.warnings.length > 0) sections.push(`Warnings:\n${result.warnings.map((w) => `  - ${w}`).join('\n')}`)
    sections.push(
      result.problems.length > 0
        ? `Problems:\n${result.problems.map((p) => `  - ${p}`).join('\n')}`
        : 'No problems found.',
    )
    return sections.join('\n\n') + '\n'
  }
}

function renderSnapshot(result: SnapshotScanResult, wide: boolean): string {
  const s = result.snapshot
  const c = result.config
  const sections = [
    formatFields([
      ['Snapshot', s.file],
      ['Revision', s.revision],
      ['etcd version', s.etcdVersion],
      [
        'Integrity',
        s.integrityChecked ? 'sha256 checked' : 'not checked (no sha256 appended: a copied member/snap/db?)',
      ],
      ['Values', result.values],
      ['Keys needed', result.keysNeeded.join(', ') || 'none (every value is plaintext)'],
    ]).trimEnd(),
  ]
  if (result.needs.length > 0) {
    sections.push(
      formatTable(
        c ? ['stored as', 'values', 'unreadable'] : ['stored as', 'values'],
        result.needs.map((n) => (c ? [n.storedAs, n.values, n.unreadable ?? 0] : [n.storedAs, n.values])),
      ).trimEnd(),
    )
  }
  if (wide && result.resources.length > 0) {
    sections.push(
      formatTable(
        ['resource', 'values', 'stored as'],
        result.resources.map((r) => [r.resource, r.values, counts(r.storedAs)]),
      ).trimEnd(),
    )
  }
  if (c) {
    const rows = c.resources.filter((r) => r.unreadable > 0)
    if (rows.length > 0) {
      sections.push(
        formatTable(
          ['resource', 'values', 'unreadable', 'unreadable stored as', 'errors'],
          rows.map((r) => [
            r.resource,
            r.values,
            r.unreadable,
            counts(r.unreadableAs),
            Object.keys(r.errors).join('; ') || '-',
          ]),
        ).trimEnd(),
      )
    }
    if (c.examples.length > 0) sections.push(`Examples:\n${c.examples.map((k) => `  ${k}`).join('\n')}`)
    const missing = result.needs.filter((n) => (n.unreadable ?? 0) > 0).map((n) => n.storedAs)
    sections.push(
      c.readable
        ? `${c.file} (${c.hash.slice(0, 19)}…) opens every value of ${s.file}.`
        : `${c.file} (${c.hash.slice(0, 19)}…) does NOT open ${c.unreadable} of ${c.values} values of ${s.file}: it cannot read the values stored as ${missing.join(', ')}.`,
    )
  }
  return sections.join('\n\n') + '\n'
}
