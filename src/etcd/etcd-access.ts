import {etcdctlTargetForPod, type ControlPlaneNode} from '../controlplane/control-plane.js'
import {DirectEtcdReader} from './direct-etcd-reader.js'
import type {EtcdReader} from './etcd-reader.js'
import {ExecEtcdReader} from './exec-etcd-reader.js'
import {SshEtcdReader} from './ssh-etcd-reader.js'
import {preconditionError, usageError} from '../errors.js'
import type {EtcdAccessOptions} from '../flags/etcd.js'
import type {PodExecutor} from '../kube/types.js'
import type {SshConnector} from '../ssh/ssh-session.js'

export interface EtcdAccessDeps {
  /** Control-plane nodes with their etcd pods (discovered once by the caller). */
  controlPlane: () => Promise<ControlPlaneNode[]>
  exec: PodExecutor
  /** Needed for --etcd-via ssh only. */
  ssh?: SshConnector
}

function pickNode(
  nodes: ControlPlaneNode[],
  wanted: string | undefined,
  usable: (node: ControlPlaneNode) => boolean,
): ControlPlaneNode | undefined {
  if (wanted) {
    const node = nodes.find((n) => n.name === wanted)
    if (!node)
      throw usageError('ETCD_NODE_NOT_FOUND', `--etcd-node ${wanted} is not a control-plane node`, {
        hint: `Control-plane nodes: ${nodes.map((n) => n.name).join(', ') || 'none found'}.`,
      })
    return node
  }
  return nodes.find((n) => usable(n) && n.ready) ?? nodes.find(usable)
}

/**
 * The EtcdReader the flags ask for: direct when --etcd-endpoints is given (or --etcd-via direct),
 * else etcdctl in an etcd mirror pod (exec), or etcdctl on a node over SSH (--etcd-via ssh).
 */
export async function openEtcdReader(options: EtcdAccessOptions, deps: EtcdAccessDeps): Promise<EtcdReader> {
  const certs = {cacert: options.cacert, cert: options.cert, key: options.key}
  if (options.via === 'direct')
    return new DirectEtcdReader({endpoints: options.endpoints, ...certs, timeoutMs: options.timeoutMs})
  const nodes = await deps.controlPlane()
  if (options.via === 'ssh') {
    if (!deps.ssh) throw usageError('USAGE', '--etcd-via ssh is not available for this command')
    const node = pickNode(nodes, options.node, () => true)
    if (!node)
      throw preconditionError('ETCD_NO_NODE', 'no control-plane node found to run etcdctl on over SSH', {
        hint: 'Pass --etcd-node NAME, or use --etcd-endpoints.',
      })
    const target = etcdctlTargetForPod(
      node.etcd ?? {
        name: '',
        namespace: '',
        node: node.name,
        phase: '',
        ready: false,
        container: 'etcd',
        endpoint: options.endpoints[0],
      },
      certs,
    )
    return new SshEtcdReader(deps.ssh.open({name: node.name, internalIP: node.internalIP}), target)
  }
  const node = pickNode(nodes, options.node, (n) => Boolean(n.etcd))
  if (!node?.etcd) {
    throw preconditionError(
      'ETCD_NO_POD',
      `no etcd mirror pod found in kube-system${options.node ? ` on node ${options.node}` : ''} (external etcd?)`,
      {
        hint: 'Pass --etcd-endpoints with --etcd-cacert/--etcd-cert/--etcd-key to read etcd directly, or --etcd-via ssh.',
      },
    )
  }
  return new ExecEtcdReader(
    deps.exec,
    {namespace: node.etcd.namespace, name: node.etcd.name, container: node.etcd.container},
    etcdctlTargetForPod(node.etcd, certs),
  )
}
