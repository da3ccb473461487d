import {writeFile} from 'node:fs/promises'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'

import {type ApiResource, KubeApiError} from '../../../src/kube/types.js'
import {MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS} from '../../../src/usecases/rewrite/webhooks.js'
import {CONFIGMAPS, type FakeCluster, SECRETS} from './fake-cluster.js'

const NAMESPACES: ApiResource = {group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false}

/**
 * A plain-HTTP front for FakeCluster, enough for the plugin's REST client: core discovery and
 * list/get/update of secrets and configmaps, errors as metav1.Status. Lets command tests run the
 * built CLI as a child process (and kill it) without the sandbox.
 */
export async function serveFakeCluster(
  cluster: FakeCluster,
  dir: string,
  /** Answers first when it returns a response (status and JSON body); for APIs FakeCluster does not have. */
  extra?: (method: string, url: URL, body: unknown) => Promise<{status: number; body: unknown} | undefined>,
): Promise<{
  url: string
  kubeconfig: string
  /** What GET /metrics answers from now on (404 until set, as a server without it). */
  serveMetrics(answer: {status: number; body: string}): void
  close(): Promise<void>
}> {
  let metrics: {status: number; body: string} | undefined
  const resources: Record<string, ApiResource> = {secrets: SECRETS, configmaps: CONFIGMAPS}
  const server = http.createServer(async (req, res) => {
    const send = (code: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(code, {'Content-Type': 'application/json', ...headers})
      res.end(JSON.stringify(body))
    }
    try {
      const url = new URL(req.url ?? '/', 'http://x')
      if (url.pathname === '/metrics' && metrics) {
        res.writeHead(metrics.status, {'Content-Type': 'text/plain; version=0.0.4'})
        return res.end(metrics.body)
      }
      if (extra) {
        const chunks: Buffer[] = []
        if (req.method === 'POST') for await (const chunk of req) chunks.push(chunk as Buffer)
        const answer = await extra(
          req.method ?? 'GET',
          url,
          chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined,
        )
        if (answer) return send(answer.status, answer.body)
      }
      if (url.pathname === '/api/v1')
        return send(200, {
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: Object.values(resources).map((r) => ({
            name: r.resource,
            singularName: r.kind.toLowerCase(),
            namespaced: true,
            kind: r.kind,
            verbs: ['get', 'list', 'update'],
          })),
        })
      if (url.pathname === '/apis') return send(200, {kind: 'APIGroupList', groups: []})
      // Admission webhook configurations, for the check before a rewrite (none unless seeded).
      const admission = /^\/apis\/admissionregistration\.k8s\.io\/v1\/(validating|mutating)webhookconfigurations$/.exec(
        url.pathname,
      )
      if (admission && req.method === 'GET') {
        const resource = admission[1] === 'validating' ? VALIDATING_WEBHOOKS : MUTATING_WEBHOOKS
        const page = await cluster.list(resource, {
          limit: Number(url.searchParams.get('limit') ?? 0) || undefined,
          continueToken: url.searchParams.get('continue') ?? undefined,
        })
        return send(200, {
          kind: `${resource.kind}List`,
          apiVersion: 'admissionregistration.k8s.io/v1',
          metadata: {resourceVersion: page.resourceVersion, continue: page.continueToken},
          items: page.items,
        })
      }
      const nsGet = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(url.pathname)
      if (nsGet && req.method === 'GET') return send(200, await cluster.get(NAMESPACES, decodeURIComponent(nsGet[1]!)))
      const m = /^\/api\/v1(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?$/.exec(url.pathname)
      const resource = m && resources[m[2]!]
      if (!m || !resource)
        return send(404, {
          kind: 'Status',
          code: 404,
          reason: 'NotFound',
          message: 'the server could not find the requested resource',
        })
      const [, namespace, , name] = m
      if (req.method === 'GET' && !name) {
        const page = await cluster.list(resource, {
          namespace,
          limit: Number(url.searchParams.get('limit') ?? 0) || undefined,
          continueToken: url.searchParams.get('continue') ?? undefined,
          labelSelector: url.searchParams.get('labelSelector') ?? undefined,
        })
        return send(200, {
          kind: `${resource.kind}List`,
          apiVersion: 'v1',
          metadata: {
            resourceVersion: page.resourceVersion,
            continue: page.continueToken,
            remainingItemCount: page.remainingItemCount,
          },
          items: page.items,
        })
      }
      if (req.method === 'GET') return send(200, await cluster.get(resource, name!, namespace))
      if (req.method === 'PUT') {
        const chunks: Buffer[] = []
        for await (const chunk of req) chunks.push(chunk as Buffer)
        return send(200, await cluster.replace(resource, JSON.parse(Buffer.concat(chunks).toString())))
      }
      return send(405, {kind: 'Status', code: 405, reason: 'MethodNotAllowed', message: 'not allowed'})
    } catch (error) {
      if (error instanceof KubeApiError)
        return send(
          error.status,
          {
            kind: 'Status',
            code: error.status,
            reason: error.reason,
            message: error.message,
            details: error.details,
            metadata: {continue: error.continueHint},
          },
          error.retryAfterSeconds ? {'Retry-After': String(error.retryAfterSeconds)} : {},
        )
      return send(500, {kind: 'Status', code: 500, reason: 'InternalError', message: String(error)})
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const kubeconfig = join(dir, 'kubeconfig')
  await writeFile(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]
users: [{name: tester, user: {token: not-a-secret}}]
contexts: [{name: fake, context: {cluster: fake, user: tester, namespace: alpha}}]
current-context: fake
`,
    {mode: 0o600},
  )
  return {
    url,
    kubeconfig,
    serveMetrics: (answer) => {
      metrics = answer
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
