import {partialResultOf, usageError, withPartialResult} from '../errors.js'
import {type EtcdFlagValues, etcdOptionsFromFlags} from '../flags/etcd.js'
import {kubeOptionsFromFlags} from '../flags/kube.js'
import {type SshFlagValues, sshOptionsFromFlags} from '../flags/ssh.js'
import {toPluginError} from '../kube/errors.js'
import type {LeaseOperation} from '../state/operation-lease.js'
import {type ClusterFollowUps, clusterFollowUps, type FollowUpAccess} from '../usecases/follow-ups.js'
import {type StaleRewrite, staleRewrite} from '../usecases/rewrite/stale-follow-up.js'
import {connectControlPlane} from '../changes/connect.js'
import type {ControlPlaneDeps} from '../changes/deps.js'
import {describeEvent} from '../output/progress-text.js'
import type {Progress} from '../output/progress.js'
import {OpenSshConnector} from '../ssh/open-ssh-session.js'
import {type HeldLock, lockCluster} from './cluster-lock.js'
import {confirmation} from './confirmation.js'

export interface ControlPlaneFlagValues extends SshFlagValues, EtcdFlagValues {
  kubeconfig?: string
  context?: string
  'request-timeout'?: string
  yes: boolean
  /** The context name, typed out: overrides the refusals that protect stored data. */
  force?: string
  /** A dry run changes nothing and takes no lock. */
  'dry-run'?: boolean
}

export interface ControlPlaneSession {
  context: string
  /** --force was given and names this context. */
  force: boolean
  /** Nodes over SSH, the waiter, progress as spinner text, the confirmation the flags ask for. */
  deps: ControlPlaneDeps & {followUps: ClusterFollowUps & {rewriteStale: StaleRewrite}}
}

/**
 * The wiring enable and decrypt-all (and rotate) share: connect to the cluster and the nodes, show
 * progress events on the spinner, ask before the first change unless --yes (a y/N question, or the
 * context name typed for the riskiest commands; refused without a terminal), hold the cluster's
 * lock for `operation` while the body runs (not in a dry run), turn errors into PluginErrors, and
 * always release the lock and close the cluster.
 */
export async function withControlPlane<T>(
  flags: ControlPlaneFlagValues,
  progress: Progress,
  confirm: {operation: LeaseOperation; typeContext: boolean; refusal: string},
  body: (session: ControlPlaneSession) => Promise<T>,
): Promise<T> {
  const etcd = etcdOptionsFromFlags(flags)
  const sshOptions = sshOptionsFromFlags(flags)
  const {cluster, deps} = await connectControlPlane(kubeOptionsFromFlags(flags), sshOptions).catch((error: unknown) => {
    progress.stop()
    throw toPluginError(error)
  })
  const context = cluster.context.contextName
  if (flags.force !== undefined && flags.force !== context) {
    progress.stop()
    cluster.close()
    throw usageError(
      'FORCE_CONTEXT_MISMATCH',
      `--force ${JSON.stringify(flags.force)} does not match the current context ${JSON.stringify(context)}; nothing was changed`,
      {
        hint: `To override, pass --force ${context} (the context name, exactly).`,
      },
    )
  }
  let lock: HeldLock | undefined
  // Ctrl-C/SIGTERM: the node or stage in progress is finished (or rolled back) first, then the run
  // stops with what it did and where (exit 4) and gives the lock back; a second signal stops at
  // once (130/143) after a bounded try to give the lock back (else it expires on its own).
  const stop = new AbortController()
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      const exit = () => process.exit(signal === 'SIGINT' ? 130 : 143)
      setTimeout(exit, 5000).unref()
      void (lock ? lock.release() : Promise.resolve()).then(exit, exit)
      return
    }
    stop.abort()
    progress.warn(
      `${signal}: stopping after the current step (a node is never left half-changed); ${signal === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again stops at once`,
    )
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    if (!flags['dry-run'])
      lock = await lockCluster(deps.objects, confirm.operation, (message) => progress.warn(message))
    const access: FollowUpAccess = {
      etcd,
      ssh: new OpenSshConnector(sshOptions),
      onProgress: (text) => progress.update(text),
      onWarning: (message) => progress.warn(message),
      onNotice: (line) => {
        const resume = progress.pause()
        process.stderr.write(line + '\n')
        resume()
      },
    }
    return await body({
      context,
      force: flags.force !== undefined,
      deps: {
        ...deps,
        signal: stop.signal,
        followUps: {...clusterFollowUps(cluster, access), rewriteStale: staleRewrite(cluster, access)},
        // warnings (a read check not run, --force over unreadable values) stay on stderr, not only in the spinner
        onEvent: (event) =>
          event.type === 'warning' ? progress.warn(event.message) : progress.update(describeEvent(event)),
        confirm: confirmation({
          yes: flags.yes,
          typeContext: confirm.typeContext,
          context,
          refusal: confirm.refusal,
          progress,
        }),
      },
    })
  } catch (error) {
    // A run that stopped half way keeps its record (per node, per stage), with the context.
    const translated = toPluginError(error)
    const partial = partialResultOf(translated)
    throw partial ? withPartialResult(translated, {context, ...partial}) : translated
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await lock
      ?.release()
      .catch((error: unknown) =>
        progress.warn(
          `could not release the cluster's lock (${error instanceof Error ? error.message : String(error)}); it expires on its own.`,
        ),
      )
    progress.stop()
    cluster.close()
  }
}
