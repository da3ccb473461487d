import {CONFIG_HASH_ANNOTATION as ENCRYPTION_CONFIG_HASH_ANNOTATION} from '../controlplane/apiserver-manifest.js'
import {apiServerFromPod, PODS} from '../controlplane/control-plane.js'
import {encryptionMetricsOf} from '../controlplane/metrics.js'
import {PluginError} from '../errors.js'
import type {EndpointProbe, ObjectClient} from '../kube/types.js'
import type {ApiserverState, ApiserverWaiter} from './rollout.js'

export interface WaiterClock {
  now(): number
  sleep(ms: number): Promise<void>
}

const realClock: WaiterClock = {now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms))}

interface Observation {
  mirrorHash?: string
  podReady: boolean
  endpoint?: string
  readyz?: number
  loadedConfigHash?: string
  /** /metrics answered but has no last_config_info (apiservers before 1.34). */
  noConfigInfo?: boolean
  /** The manifest's `kubectl-encryption/config-hash` annotation as the running mirror pod shows it. */
  annotatedConfigHash?: string
  detail: string
}

/**
 * Watches one node's kube-apiserver through the API: the mirror pod `kube-apiserver-<node>` (its
 * `kubernetes.io/config.hash` changes when the kubelet picks up a new manifest) and the node's own
 * `/readyz` and `/metrics` at the pod's advertise address (docs/kubernetes-behaviour.md §10, §11.3).
 */
export class KubeApiserverWaiter implements ApiserverWaiter {
  constructor(
    private readonly objects: ObjectClient,
    private readonly probe: EndpointProbe,
    private readonly clock: WaiterClock = realClock,
    private readonly pollMs = 1000,
  ) {}

  private async observe(node: string, withMetrics = false): Promise<Observation> {
    let pod: ReturnType<typeof apiServerFromPod>
    let annotatedConfigHash: string | undefined
    try {
      const raw = await this.objects.get(PODS, `kube-apiserver-${node}`, 'kube-system')
      annotatedConfigHash = raw.metadata.annotations?.[ENCRYPTION_CONFIG_HASH_ANNOTATION]
      pod = apiServerFromPod(raw)
    } catch (error) {
      return {podReady: false, detail: `mirror pod kube-apiserver-${node}: ${(error as Error).message}`}
    }
    const obs: Observation = {
      mirrorHash: pod.configHash,
      podReady: pod.ready,
      endpoint: pod.endpoint,
      annotatedConfigHash,
      detail: `mirror pod hash ${pod.configHash ?? 'none'}`,
    }
    if (!pod.endpoint) return obs
    try {
      obs.readyz = (await this.probe.get('/readyz', {endpoint: pod.endpoint, timeoutMs: 5000})).status
      obs.detail += `, /readyz ${obs.readyz}`
      if (withMetrics) {
        const metrics = await this.probe.get('/metrics', {endpoint: pod.endpoint, timeoutMs: 10_000})
        if (metrics.status === 200) {
          obs.loadedConfigHash = encryptionMetricsOf(metrics.body).lastConfigHash
          obs.noConfigInfo = obs.loadedConfigHash === undefined
        }
        obs.detail += `, loaded config ${obs.loadedConfigHash ?? 'unknown'}`
      }
    } catch (error) {
      obs.detail += `, ${pod.endpoint} unreachable (${(error as Error).message})`
    }
    return obs
  }

  async snapshot(node: string): Promise<ApiserverState> {
    const obs = await this.observe(node)
    return {mirrorHash: obs.mirrorHash}
  }

  private async until(
    node: string,
    what: string,
    timeoutMs: number,
    done: (obs: Observation) => boolean,
    withMetrics = false,
  ): Promise<void> {
    const deadline = this.clock.now() + timeoutMs
    let last: Observation | undefined
    for (;;) {
      last = await this.observe(node, withMetrics)
      if (done(last)) return
      if (this.clock.now() >= deadline) break
      await this.clock.sleep(this.pollMs)
    }
    throw new PluginError(
      'unexpected',
      'WAIT_TIMEOUT',
      `timed out after ${Math.round(timeoutMs / 1000)}s waiting for the kube-apiserver on ${node} to ${what} (last seen: ${last.detail})`,
      {
        hint: 'Raise --timeout if the apiserver is just slow to start.',
      },
    )
  }

  private static ready(obs: Observation): boolean {
    return obs.endpoint ? obs.readyz === 200 : obs.podReady
  }

  waitRestarted(node: string, before: ApiserverState, timeoutMs: number): Promise<void> {
    return this.until(
      node,
      'restart with the new manifest and become ready',
      timeoutMs,
      (o) => o.mirrorHash !== undefined && o.mirrorHash !== before.mirrorHash && KubeApiserverWaiter.ready(o),
    )
  }

  waitRestored(node: string, original: ApiserverState, timeoutMs: number): Promise<void> {
    return this.until(
      node,
      'come back with the restored manifest',
      timeoutMs,
      (o) =>
        (original.mirrorHash === undefined || o.mirrorHash === original.mirrorHash) && KubeApiserverWaiter.ready(o),
    )
  }

  /**
   * The loaded config's hash from `last_config_info` (docs/kubernetes-behaviour.md §11.3: set at start and on every reload).
   * Apiservers before 1.34 have no such metric: there, a pod (re)started from a manifest whose
   * `kubectl-encryption/config-hash` annotation names the hash counts (restart mode only).
   */
  waitConfigLoaded(node: string, configHash: string, timeoutMs: number): Promise<void> {
    const loaded = (o: Observation) =>
      o.loadedConfigHash === configHash || (o.noConfigInfo === true && o.annotatedConfigHash === configHash)
    return this.until(
      node,
      `load encryption config ${configHash.slice(0, 19)}…`,
      timeoutMs,
      (o) => loaded(o) && KubeApiserverWaiter.ready(o),
      true,
    )
  }
}
