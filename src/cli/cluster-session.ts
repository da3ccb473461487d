import {type ClusterConfig, configFromNodes} from '../controlplane/cluster-config.js'
import {type ControlPlaneNode, discoverControlPlane} from '../controlplane/control-plane.js'
import {openEtcdReader} from '../etcd/etcd-access.js'
import type {EtcdReader} from '../etcd/etcd-reader.js'
import {type EtcdAccessOptions, type EtcdFlagValues, etcdOptionsFromFlags} from '../flags/etcd.js'
import {type KubeOptions, kubeOptionsFromFlags} from '../flags/kube.js'
import {type SshFlagValues, sshOptionsFromFlags} from '../flags/ssh.js'
import {connectCluster} from '../kube/connect.js'
import {toPluginError} from '../kube/errors.js'
import type {KubeCluster} from '../kube/types.js'
import type {Progress} from '../output/progress.js'
import {OpenSshConnector} from '../ssh/open-ssh-session.js'
import type {RemoteFiles} from '../ssh/remote-files.js'
import type {SshOptions} from '../ssh/ssh-options.js'
import {ShellRemoteFiles} from '../ssh/shell-remote-files.js'

export interface ClusterFlagValues extends SshFlagValues, EtcdFlagValues {
  kubeconfig?: string
  context?: string
  'request-timeout'?: string
  /** --ssh/--no-ssh where the command has it; absent means on. */
  ssh?: boolean
}

/** The connection the flags ask for, checked: kube, etcd and SSH options. */
export interface ClusterOptions {
  kube: KubeOptions
  etcd: EtcdAccessOptions
  /** SSH to the nodes (etcdctl with --etcd-via ssh, and their files); undefined when --no-ssh turns off all SSH. */
  ssh?: SshOptions
  /** Files on the nodes (the encryption config) are read over SSH: false with --no-ssh. */
  nodeFiles: boolean
}

/**
 * The flags as connection options. Every usage error the kube, etcd and SSH flags can cause is
 * thrown here, so a command calls it with its other checks, before it starts progress and connects.
 * `noSsh` says what --no-ssh turns off: only reading files on the nodes ('files': SSH for etcdctl
 * stays available, the --ssh-* flags are always checked) or all SSH ('all': nothing is checked).
 */
export function clusterOptions(flags: ClusterFlagValues, noSsh: 'files' | 'all' = 'files'): ClusterOptions {
  const kube = kubeOptionsFromFlags(flags)
  const etcd = etcdOptionsFromFlags(flags)
  const nodeFiles = flags.ssh !== false
  return {kube, etcd, ssh: nodeFiles || noSsh === 'files' ? sshOptionsFromFlags(flags) : undefined, nodeFiles}
}

/** What the body of a read-only command gets: the cluster and lazy ways to its nodes and etcd. */
export interface ClusterSession {
  cluster: KubeCluster
  /** Aborted by SIGINT/SIGTERM in an interruptible session; never aborted otherwise. */
  signal: AbortSignal
  /** The control-plane nodes, discovered once on first use. */
  controlPlane(): Promise<ControlPlaneNode[]>
  ssh?: OpenSshConnector
  /** A node's files over SSH; undefined with --no-ssh. */
  nodeFiles?: (node: ControlPlaneNode) => RemoteFiles
  /** An etcd reader as --etcd-via and the other etcd flags say; the caller closes it. */
  openEtcd(): Promise<EtcdReader>
  /**
   * The EncryptionConfiguration the apiservers run, read over SSH from the first node that has one
   * (the progress says so); undefined with --no-ssh, `found` undefined with the reason otherwise.
   */
  configFromNodes(): Promise<{found?: ClusterConfig; reason?: string} | undefined>
}

/**
 * The wiring the read-only commands share (verify, inspect, status, rewrite, recover), as
 * withControlPlane is for the mutating ones: connect, give the body the session, and always end the
 * same way: errors through toPluginError, signal handlers off, progress stopped, cluster closed.
 * An `interruptible` session turns SIGINT/SIGTERM into `signal` once connected (the operation
 * stops at its next safe point, e.g. after cleaning up); otherwise Ctrl-C ends the process as usual.
 * `progress` may be undefined for a command that starts its own later (rewrite).
 */
export async function withCluster<T>(
  options: ClusterOptions,
  progress: Progress | undefined,
  body: (session: ClusterSession) => Promise<T>,
  {interruptible = false}: {interruptible?: boolean} = {},
): Promise<T> {
  const ssh = options.ssh && new OpenSshConnector(options.ssh)
  const cluster = await connectCluster(options.kube).catch((error: unknown) => {
    progress?.stop()
    throw toPluginError(error)
  })
  const stop = new AbortController()
  const onSignal = () => stop.abort()
  if (interruptible) {
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  }
  let discovered: Promise<ControlPlaneNode[]> | undefined
  const controlPlane = () => (discovered ??= discoverControlPlane(cluster.objects))
  const nodeFiles =
    ssh && options.nodeFiles
      ? (node: ControlPlaneNode) => new ShellRemoteFiles(ssh.open({name: node.name, internalIP: node.internalIP}))
      : undefined
  try {
    return await body({
      cluster,
      signal: stop.signal,
      controlPlane,
      ssh,
      nodeFiles,
      openEtcd: () => openEtcdReader(options.etcd, {controlPlane, exec: cluster.exec, ssh}),
      configFromNodes: async () => {
        if (!nodeFiles) return undefined
        progress?.update('Reading the encryption config from a control-plane node')
        return configFromNodes(await controlPlane(), nodeFiles)
      },
    })
  } catch (error) {
    throw toPluginError(error)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    progress?.stop()
    cluster.close()
  }
}
