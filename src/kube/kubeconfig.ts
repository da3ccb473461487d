import {existsSync} from 'node:fs'
import {homedir} from 'node:os'
import {delimiter, join} from 'node:path'

import type {Cluster, Context, KubeConfig, User} from '@kubernetes/client-node'

import {preconditionError, usageError} from '../errors.js'
import type {KubeContextInfo} from './types.js'

export interface KubeConfigSource {
  /** --kubeconfig: one file, which must exist. */
  kubeconfig?: string
  /** --context: overrides the current context. */
  context?: string
}

export interface LoadedKubeConfig {
  kc: KubeConfig
  cluster: Cluster
  user: User
  context: KubeContextInfo
}

/**
 * Which kubeconfig files to read, with kubectl's precedence: `--kubeconfig` (must exist), else every
 * existing file of the colon-separated `KUBECONFIG` list, else `~/.kube/config`.
 */
export function kubeconfigFiles(
  source: KubeConfigSource,
  env: NodeJS.ProcessEnv = process.env,
  home = homedir(),
): string[] {
  if (source.kubeconfig) {
    if (!existsSync(source.kubeconfig)) {
      throw usageError(
        'KUBECONFIG_NOT_FOUND',
        `the kubeconfig file ${source.kubeconfig} given with --kubeconfig does not exist`,
        {
          hint: 'Pass the path of an existing kubeconfig file, or leave --kubeconfig out to use $KUBECONFIG or ~/.kube/config.',
        },
      )
    }
    return [source.kubeconfig]
  }
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter((file) => file.length > 0)
  if (fromEnv.length > 0) {
    const existing = [...new Set(fromEnv)].filter((file) => existsSync(file))
    if (existing.length === 0) {
      throw preconditionError(
        'KUBECONFIG_NOT_FOUND',
        `none of the files in KUBECONFIG exist (${fromEnv.join(delimiter)})`,
        {
          hint: 'Point KUBECONFIG at your kubeconfig file, or pass --kubeconfig.',
        },
      )
    }
    return existing
  }
  const fallback = join(home, '.kube', 'config')
  if (!existsSync(fallback)) {
    throw preconditionError(
      'KUBECONFIG_NOT_FOUND',
      `no kubeconfig: KUBECONFIG is not set and ${fallback} does not exist`,
      {
        hint: 'Pass --kubeconfig FILE or set KUBECONFIG to the file kubectl uses for this cluster.',
      },
    )
  }
  return [fallback]
}

/** First occurrence of each name wins, as when kubectl merges the KUBECONFIG list. */
function firstByName<T extends {name: string}>(lists: T[][]): T[] {
  const seen = new Map<string, T>()
  for (const list of lists) for (const item of list) if (!seen.has(item.name)) seen.set(item.name, item)
  return [...seen.values()]
}

/**
 * Loads and merges the kubeconfig files and resolves the context, cluster, user and namespace the
 * way kubectl does. Errors say which file or context is wrong; they never echo credentials.
 */
export async function loadKubeConfig(
  source: KubeConfigSource,
  env: NodeJS.ProcessEnv = process.env,
  home = homedir(),
): Promise<LoadedKubeConfig> {
  const files = kubeconfigFiles(source, env, home)
  const {KubeConfig} = await import('@kubernetes/client-node')
  const loaded = files.map((file) => {
    const one = new KubeConfig()
    try {
      one.loadFromFile(file)
    } catch (error) {
      // Only the first line: YAML parser messages go on to quote the file, which may hold tokens.
      const reason = ((error as Error).message ?? String(error)).split('\n')[0]
      throw preconditionError('KUBECONFIG_INVALID', `cannot read kubeconfig ${file}: ${reason}`, {
        hint: `Check the file with 'kubectl config view --kubeconfig ${file}'.`,
      })
    }
    return one
  })
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: firstByName(loaded.map((one) => one.clusters ?? [])),
    users: firstByName(loaded.map((one) => one.users ?? [])),
    contexts: firstByName(loaded.map((one) => one.contexts ?? [])),
    currentContext: loaded.map((one) => one.currentContext).find((name) => Boolean(name)) ?? '',
  })
  const where = files.join(delimiter)
  const contextName = source.context ?? kc.currentContext
  if (!contextName) {
    throw preconditionError('KUBECONFIG_NO_CONTEXT', `the kubeconfig (${where}) sets no current context`, {
      hint: "Pass --context NAME, or run 'kubectl config use-context NAME'.",
    })
  }
  const context: Context | null = kc.getContextObject(contextName)
  if (!context) {
    const known = kc.contexts.map((c) => c.name).join(', ') || 'none'
    const message = `context "${contextName}" does not exist in the kubeconfig (${where})`
    const options = {hint: `Known contexts: ${known}. See 'kubectl config get-contexts'.`}
    throw source.context
      ? usageError('KUBECONFIG_CONTEXT_NOT_FOUND', message, options)
      : preconditionError('KUBECONFIG_CONTEXT_NOT_FOUND', message, options)
  }
  kc.setCurrentContext(contextName)
  const cluster = kc.getCluster(context.cluster)
  if (!cluster) {
    throw preconditionError(
      'KUBECONFIG_CLUSTER_NOT_FOUND',
      `context "${contextName}" names cluster "${context.cluster}", which the kubeconfig (${where}) does not define`,
      {
        hint: "Fix the context with 'kubectl config set-context', or pick another with --context.",
      },
    )
  }
  const user = kc.getUser(context.user)
  if (!user) {
    throw preconditionError(
      'KUBECONFIG_USER_NOT_FOUND',
      `context "${contextName}" names user "${context.user}", which the kubeconfig (${where}) does not define`,
      {
        hint: "Fix the context with 'kubectl config set-context', or pick another with --context.",
      },
    )
  }
  return {
    kc,
    cluster,
    user,
    context: {
      contextName,
      cluster: cluster.name,
      user: user.name,
      server: cluster.server,
      namespace: context.namespace || 'default',
      files,
    },
  }
}
