import {RestAccessReviewer} from './access-review.js'
import {RestResourceDiscovery} from './discovery.js'
import {HttpEndpointProbe} from './endpoint-probe.js'
import {KubeHttp} from './http.js'
import {type KubeConfigSource, loadKubeConfig} from './kubeconfig.js'
import {RestObjectClient} from './object-client.js'
import {WebSocketPodExecutor} from './pod-exec.js'
import type {KubeCluster} from './types.js'

export interface ConnectOptions extends KubeConfigSource {
  /** --request-timeout in ms; 0 = none. */
  requestTimeoutMs?: number
}

/** One cluster from the user's kubeconfig, with every interface the operations need. */
export async function connectCluster(
  options: ConnectOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<KubeCluster> {
  const loaded = await loadKubeConfig(options, env)
  const http = new KubeHttp(loaded, options.requestTimeoutMs ?? 0)
  return {
    context: loaded.context,
    objects: new RestObjectClient(http),
    discovery: new RestResourceDiscovery(http),
    exec: new WebSocketPodExecutor(http),
    probe: new HttpEndpointProbe(http),
    access: new RestAccessReviewer(http),
    close: () => http.close(),
  }
}
