import {isPluginError, PluginError} from '../errors.js'
import {KubeApiError} from './types.js'

function scope(where: KubeApiError['where']): string {
  if (!where) return ''
  const object = where.name ? `${where.resource ?? 'object'}/${where.name}` : (where.resource ?? '')
  const namespace = where.namespace ? ` in namespace ${where.namespace}` : ''
  return `${where.verb ?? 'request'} ${object}${namespace}`.trim()
}

function canI(where: KubeApiError['where']): string {
  const verb = where?.verb === 'discover' ? 'get' : (where?.verb ?? 'get')
  const resource = where?.resource ?? 'RESOURCE'
  const namespace = where?.namespace ? ` -n ${where.namespace}` : where?.resource === 'pods/exec' ? '' : ' -A'
  return `kubectl auth can-i ${verb} ${resource}${namespace}`
}

/**
 * The command edge: a KubeApiError becomes a PluginError with an exit code from the table and a
 * hint (unreachable server, TLS, credentials, RBAC, missing object). Anything else passes through.
 */
export function toPluginError(error: unknown): unknown {
  if (isPluginError(error) || !(error instanceof KubeApiError)) return error
  const where = error.where
  const server = where?.server ?? 'the API server'
  const detail = `HTTP ${error.status} ${error.reason}: ${error.message}`
  const action = scope(where)
  switch (true) {
    case error.status === 0 && error.reason === 'TLSError':
      return new PluginError('precondition', 'KUBE_TLS', error.message, {
        hint: `The server's certificate does not match the kubeconfig's CA or name (${server}); check certificate-authority(-data) and the server address in the kubeconfig.`,
        cause: error,
      })
    case error.status === 0 && error.reason === 'Timeout':
      return new PluginError('precondition', 'KUBE_TIMEOUT', `${action ? action + ': ' : ''}${error.message}`, {
        hint: 'The API server answers slowly or not at all; raise --request-timeout or check the server.',
        cause: error,
      })
    case error.status === 0:
      return new PluginError('precondition', 'KUBE_UNREACHABLE', error.message, {
        hint: `Check that the API server at ${server} is up and that the kubeconfig points at it ('kubectl cluster-info').`,
        cause: error,
      })
    case error.status === 401:
      return new PluginError(
        'precondition',
        'KUBE_UNAUTHORIZED',
        `the API server at ${server} rejected the credentials: ${error.message}`,
        {
          hint: "The kubeconfig's credentials are missing, wrong or expired; check with 'kubectl auth whoami'.",
          detail,
          cause: error,
        },
      )
    case error.status === 403:
      return new PluginError(
        'precondition',
        'KUBE_FORBIDDEN',
        `not allowed to ${action || 'do this'}: ${error.message}`,
        {
          hint: `Your RBAC role lacks '${where?.verb ?? 'this verb'}' on '${where?.resource ?? 'this resource'}'; check with '${canI(where)}' and ask for a role that allows it.`,
          detail,
          cause: error,
        },
      )
    case error.status === 404:
      return new PluginError('precondition', 'KUBE_NOT_FOUND', `${action ? action + ': ' : ''}${error.message}`, {
        hint: 'Check the name, the namespace (-n) and the context (--context).',
        detail,
        cause: error,
      })
    default:
      return new PluginError(
        'unexpected',
        'KUBE_API_ERROR',
        `${action ? action + ' failed: ' : ''}${error.message} (HTTP ${error.status} ${error.reason})`,
        {
          hint: 'Run again with --verbose for details; the API server may be overloaded or unhealthy.',
          detail,
          cause: error,
        },
      )
  }
}
