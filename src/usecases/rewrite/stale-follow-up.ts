/**
 * The rewrite of a KMS key rotation (rotate-kek.ts, stage rewrite-stale): `rewrite -A --only-stale`
 * over what the config covers, with the command's defaults. Apart from follow-ups.ts because
 * run.ts reads the config rules through status (which imports rotate, which imports follow-ups).
 */
import {discoverControlPlane} from '../../controlplane/control-plane.js'
import {openEtcdReader} from '../../etcd/etcd-access.js'
import type {KubeCluster} from '../../kube/types.js'
import {type FollowUpAccess, type RewriteSummary, rewriteSummary} from '../follow-ups.js'
import {formatEstimate} from './estimate.js'
import {REWRITE_DEFAULTS} from './rewrite.js'
import {planRewrite, runRewrite} from './run.js'

export type StaleRewrite = (
  configText: string,
  signal?: AbortSignal,
) => Promise<RewriteSummary & {interrupted: boolean}>

/**
 * Only values not under the current write provider and key ID are written (every apiserver must
 * agree on the key ID, else KMS_KEY_ID_DRIFT); stops between objects once `signal` fires. A run
 * again finds only what is still stale, so no checkpoint is needed to continue.
 */
export function staleRewrite(cluster: KubeCluster, access: FollowUpAccess): StaleRewrite {
  let controlPlane: ReturnType<typeof discoverControlPlane> | undefined
  const discover = () => (controlPlane ??= discoverControlPlane(cluster.objects))
  const openEtcd = () => openEtcdReader(access.etcd, {controlPlane: discover, exec: cluster.exec, ssh: access.ssh})
  return async (configText, signal) => {
    const options = {
      engine: 'client' as const,
      allNamespaces: true,
      concurrency: REWRITE_DEFAULTS.concurrency,
      qps: REWRITE_DEFAULTS.qps,
      pageSize: REWRITE_DEFAULTS.pageSize,
      dryRun: false,
      resume: false,
      onlyStale: true,
      verify: false,
      // the config the nodes run, as read by the caller (the nodes agree on it)
      localConfig: {path: 'the config on the nodes', bytes: Buffer.from(configText)},
    }
    const deps = {
      cluster,
      controlPlane: discover,
      openEtcd,
      warn: (message: string) => access.onWarning?.(message),
    }
    const plan = await planRewrite(options, deps)
    try {
      const r = await runRewrite(
        plan,
        options,
        {
          signal: signal ?? new AbortController().signal,
          onEvent: (e) => {
            if (e.type === 'progress')
              access.onProgress?.(
                `rewrite-stale: ${e.done}${e.total === undefined ? '' : `/${e.total}`} objects (${e.totals.rewritten} rewritten)`,
              )
            else if (e.type === 'estimate') access.onNotice?.(formatEstimate(e.estimate, false))
          },
          onVerify: () => undefined,
        },
        deps,
      )
      return {...rewriteSummary(r, r.webhooks, r.webhooksListError), interrupted: r.interrupted}
    } finally {
      await plan.reader?.close().catch(() => undefined)
    }
  }
}
