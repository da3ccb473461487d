// Where a sandbox keeps its state and which loopback addresses it uses (docs/architecture.md §5).
// Every sandbox gets its own 127.<a>.<b>.0/24, so several can run on one machine at once:
//   .1 .. .3  control-plane nodes (InternalIP; sshd on :22, the node's API server on :6443)
//   .10       the shared etcd (:2379); it also listens on every node IP, as stacked etcd does
//   .100      the control-plane endpoint, a TCP load balancer on :6443 (kubeadm's LB)
import {createHash} from 'node:crypto'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface NodeLayout {
  name: string
  ip: string
  sshPort: number
  /** The node's own /etc/kubernetes, bind-mounted at the real path inside its mount namespace. */
  etcKubernetes: string
  /** The node's own /var/log/pods (container logs, as the kubelet writes them). */
  varLogPods: string
  /** sshd config and host keys of this node. */
  sshdDir: string
  /** Kubelet state of this node (pid files, restart counters). */
  kubeletDir: string
}

export interface SandboxLayout {
  stateDir: string
  subnet: string
  etcdIp: string
  etcdPort: number
  lbIp: string
  apiPort: number
  pkiDir: string
  etcdDataDir: string
  sshDir: string
  logDir: string
  kubeconfig: string
  restrictedKubeconfig: string
  envFile: string
  stateFile: string
  sshConfig: string
  knownHosts: string
  clientKey: string
  sshUser: string
  nodes: NodeLayout[]
}

export const defaultStateDir = path.join(repoRoot, '.sandbox')

/** 127.<a>.<b> from a hash of the state dir and an attempt counter; never 127.0.x (127.0.0.1 lives there). */
export function subnetFor(stateDir: string, attempt: number): string {
  const digest = createHash('sha256')
    .update(`${path.resolve(stateDir)}#${attempt}`)
    .digest()
  const a = 1 + (digest[0]! % 254)
  const b = digest[1]! % 256
  return `127.${a}.${b}`
}

export function layoutFor(stateDir: string, subnet: string, nodeCount = 3, sshPort = 22): SandboxLayout {
  const dir = path.resolve(stateDir)
  const nodes: NodeLayout[] = []
  for (let i = 1; i <= nodeCount; i++) {
    const name = `cp-${i}`
    const nodeDir = path.join(dir, 'nodes', name)
    nodes.push({
      name,
      ip: `${subnet}.${i}`,
      sshPort,
      etcKubernetes: path.join(nodeDir, 'etc-kubernetes'),
      varLogPods: path.join(nodeDir, 'var-log-pods'),
      sshdDir: path.join(nodeDir, 'sshd'),
      kubeletDir: path.join(nodeDir, 'kubelet'),
    })
  }
  return {
    stateDir: dir,
    subnet,
    etcdIp: `${subnet}.10`,
    etcdPort: 2379,
    lbIp: `${subnet}.100`,
    apiPort: 6443,
    pkiDir: path.join(dir, 'pki'),
    etcdDataDir: path.join(dir, 'etcd-data'),
    sshDir: path.join(dir, 'ssh'),
    logDir: path.join(dir, 'logs'),
    kubeconfig: path.join(dir, 'admin.conf'),
    restrictedKubeconfig: path.join(dir, 'viewer.conf'),
    envFile: path.join(dir, 'env'),
    stateFile: path.join(dir, 'state.json'),
    sshConfig: path.join(dir, 'ssh', 'config'),
    knownHosts: path.join(dir, 'ssh', 'known_hosts'),
    clientKey: path.join(dir, 'ssh', 'id_ed25519'),
    sshUser: 'kubeadmin',
    nodes,
  }
}
