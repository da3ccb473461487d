import {discoverControlPlane} from '../controlplane/control-plane.js'
import {preconditionError} from '../errors.js'
import type {KubeOptions} from '../flags/kube.js'
import {connectCluster} from '../kube/connect.js'
import type {KubeCluster} from '../kube/types.js'
import {OpenSshConnector} from '../ssh/open-ssh-session.js'
import {ShellRemoteFiles} from '../ssh/shell-remote-files.js'
import type {SshOptions} from '../ssh/ssh-options.js'
import {KubeApiserverWaiter} from './apiserver-waiter.js'
import type {ControlPlaneDeps} from './deps.js'

/** The real world for enable/rotate/decrypt-all: the cluster from the kubeconfig, nodes over SSH. */
export async function connectControlPlane(
  kube: KubeOptions,
  ssh: SshOptions,
): Promise<{cluster: KubeCluster; deps: ControlPlaneDeps}> {
  const cluster = await connectCluster(kube)
  const connector = new OpenSshConnector(ssh)
  const known = new Map<string, {name: string; internalIP?: string}>()
  const files = new Map<string, ShellRemoteFiles>()
  const deps: ControlPlaneDeps = {
    nodes: async () => {
      const nodes = await discoverControlPlane(cluster.objects)
      for (const n of nodes) known.set(n.name, {name: n.name, internalIP: n.internalIP})
      return nodes.map((n) => n.name)
    },
    files: (name) => {
      const node = known.get(name)
      if (!node) throw preconditionError('NODE_NOT_FOUND', `Node ${name} is not a control-plane node.`)
      let f = files.get(name)
      if (!f) files.set(name, (f = new ShellRemoteFiles(connector.open(node))))
      return f
    },
    waiter: new KubeApiserverWaiter(cluster.objects, cluster.probe),
    objects: cluster.objects,
  }
  return {cluster, deps}
}
