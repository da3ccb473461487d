import {BaseCommand} from '../base-command.js'
import {localLeaseClock} from '../cli/cluster-lock.js'
import {clusterOptions, withCluster} from '../cli/cluster-session.js'
import {loadEncryptionConfig} from '../encryption/config/load.js'
import {describeReader} from '../etcd/etcd-reader.js'
import {EtcdutlSnapshotOpener} from '../etcd/snapshot-etcd.js'
import {EXIT} from '../errors.js'
import {readConfigFlag} from '../flags/config-file.js'
import {checkStatusFlags, statusFlags} from '../flags/status.js'
import {snapshotView, statusView} from '../output/views/status.js'
import {leaseStatus, readLease} from '../state/operation-lease.js'
import {OperationStateStore} from '../state/operation-state.js'
import {type RotationState, rotationStatus} from '../usecases/rotate.js'
import {scanSnapshot, type SnapshotScanResult} from '../usecases/scan/snapshot-scan.js'
import {scanForStatus} from '../usecases/status/scan-targets.js'
import {encryptionStatus, type StatusResult} from '../usecases/status/status.js'

type StatusCommandResult = StatusResult | SnapshotScanResult

const isSnapshotResult = (result: StatusCommandResult): result is SnapshotScanResult => 'snapshot' in result

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
  static override flags = statusFlags

  async execute(): Promise<StatusCommandResult> {
    const flags = this.flags
    checkStatusFlags(flags)
    if (flags.snapshot) return this.scanSnapshotFile(flags.snapshot)
    const options = clusterOptions(flags)
    const localConfig = await readConfigFlag(flags.config)
    const progress = await this.progress('Connecting to the cluster')
    return withCluster(options, progress, async ({cluster, controlPlane, nodeFiles, openEtcd}) =>
      encryptionStatus({
        context: cluster.context,
        controlPlane,
        probe: cluster.probe,
        files: nodeFiles,
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
              const reader = await openEtcd()
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
      }),
    )
  }

  /** --snapshot: offline, no cluster; the config (if any) is loaded first, as `config check` does. */
  private async scanSnapshotFile(file: string): Promise<SnapshotScanResult> {
    const flags = this.flags
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
    return isSnapshotResult(result) ? snapshotView(result, wide) : statusView(result, wide)
  }
}
