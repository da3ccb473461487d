import http from 'node:http'
import https from 'node:https'

import {preconditionError} from '../errors.js'
import {Http2Connections} from './http2-connections.js'
import type {LoadedKubeConfig} from './kubeconfig.js'
import {KubeApiError, type TlsMaterial} from './types.js'

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH'

export interface HttpRequest {
  method: HttpMethod
  /** Absolute API path, e.g. `/api/v1/namespaces/default/secrets`. */
  path: string
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  /** `host:port` of one apiserver instead of the kubeconfig's server (same credentials and CA). */
  endpoint?: string
  /** Overrides --request-timeout for this request; 0 = none. */
  timeoutMs?: number
  accept?: string
  contentType?: string
  /** For error messages: `list secrets`, `get secret/x -n ns`. */
  what?: KubeApiError['where']
}

export interface HttpResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EPIPE: 'connection closed',
  ERR_HTTP2_STREAM_ERROR: 'connection closed',
  ERR_HTTP2_STREAM_CANCEL: 'connection closed',
  ERR_HTTP2_SESSION_ERROR: 'connection closed',
  ERR_HTTP2_GOAWAY_SESSION: 'connection closed',
  ERR_HTTP2_INVALID_SESSION: 'connection closed',
}

/**
 * HTTPS to the API server with the kubeconfig's credentials (client certificates, tokens, exec
 * plugins via client-node), keep-alive HTTP/1.1 agents (or, opted in, HTTP/2 where the server
 * offers it: one multiplexed connection per server, as client-go), --request-timeout, and every
 * failure turned into a KubeApiError: HTTP errors keep status/reason/message/Retry-After/continue
 * hint; network and TLS failures are status 0 and name the server.
 */
export class KubeHttp {
  private material?: Promise<TlsMaterial>
  private readonly agents = new Map<string, http.Agent>()
  private readonly http2 = new Http2Connections()
  /** Servers (origins) that have answered at least once in this run. */
  private readonly answered = new Set<string>()
  /**
   * Servers that let a request time out before they ever answered: later requests fail at once with
   * that error instead of each waiting out --request-timeout again (issue 13: one timeout, not one per
   * step). A server that has answered once is always waited for.
   */
  private readonly silent = new Map<string, KubeApiError>()
  /** exec/auth-provider users refresh tokens; their headers are fetched per request. */
  private readonly dynamicAuth: boolean
  /**
   * HTTP/2 is opt-in (KUBECTL_ENCRYPTION_HTTP2 non-empty): it costs the plugin and the apiservers less
   * CPU per request, but one connection pins a rewrite to one apiserver behind a load balancer, and
   * on the sandbox that made rewrites slower (bench/README.md, 2026-12-07).
   */
  private readonly http2Allowed = Boolean(process.env.KUBECTL_ENCRYPTION_HTTP2)

  constructor(
    private readonly loaded: LoadedKubeConfig,
    private readonly requestTimeoutMs = 0,
  ) {
    this.dynamicAuth = Boolean(loaded.user.exec || loaded.user.authProvider)
  }

  get server(): string {
    return this.loaded.context.server
  }

  private async tls(): Promise<TlsMaterial> {
    this.material ??= this.readMaterial()
    const material = await this.material
    if (!this.dynamicAuth) return material
    const fresh = await this.readMaterial()
    return {...material, headers: fresh.headers}
  }

  private async readMaterial(): Promise<TlsMaterial> {
    const opts: https.RequestOptions & {servername?: string} = {headers: {}}
    try {
      await this.loaded.kc.applyToHTTPSOptions(opts)
    } catch (error) {
      const message = (error as Error).message.split('\n')[0]
      throw preconditionError(
        'KUBE_CREDENTIALS',
        `cannot use the credentials of context "${this.loaded.context.contextName}": ${message}`,
        {
          hint: "Check the kubeconfig's user entry (certificate files, token, exec plugin) with 'kubectl config view --minify'.",
        },
      )
    }
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(opts.headers ?? {})) {
      if (typeof value === 'string' || typeof value === 'number') headers[name] = String(value)
    }
    return {
      ca: opts.ca as Buffer | undefined,
      cert: opts.cert as Buffer | undefined,
      key: opts.key as Buffer | undefined,
      rejectUnauthorized: opts.rejectUnauthorized,
      servername: opts.servername,
      headers,
      auth: opts.auth ?? undefined,
    }
  }

  /** TLS and auth options for other transports to the same server (pods/exec WebSockets). */
  async connectionOptions(): Promise<TlsMaterial> {
    const material = await this.tls()
    return {...material, headers: {...material.headers}}
  }

  /** The base URL for a request: the kubeconfig's server, or `https://<endpoint>`. */
  baseUrl(endpoint?: string): URL {
    if (!endpoint) return new URL(this.server)
    const base = new URL(this.server)
    return new URL(`${base.protocol}//${endpoint}`)
  }

  private agent(url: URL, material: TlsMaterial): http.Agent {
    const key = url.origin
    let agent = this.agents.get(key)
    if (!agent) {
      agent =
        url.protocol === 'http:'
          ? new http.Agent({keepAlive: true, maxSockets: 64})
          : new https.Agent({
              keepAlive: true,
              maxSockets: 64,
              ca: material.ca,
              cert: material.cert,
              key: material.key,
              rejectUnauthorized: material.rejectUnauthorized,
              servername: material.servername,
            })
      this.agents.set(key, agent)
    }
    return agent
  }

  async send(request: HttpRequest): Promise<HttpResponse> {
    const material = await this.tls()
    const base = this.baseUrl(request.endpoint)
    const [pathOnly, inlineQuery] = request.path.split('?', 2)
    const url = new URL(pathOnly, base)
    if (inlineQuery) for (const [k, v] of new URLSearchParams(inlineQuery)) url.searchParams.append(k, v)
    for (const [name, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(name, String(value))
    }
    // A Buffer is sent as it is (a protobuf body); anything else as JSON.
    const body =
      request.body === undefined
        ? undefined
        : Buffer.isBuffer(request.body)
          ? request.body
          : Buffer.from(JSON.stringify(request.body))
    const headers: Record<string, string> = {
      ...material.headers,
      Accept: request.accept ?? 'application/json',
      'User-Agent': 'kubectl-encryption',
    }
    if (body) {
      headers['Content-Type'] = request.contentType ?? 'application/json'
      headers['Content-Length'] = String(body.length)
    }
    // Basic auth as node's `auth` option sends it: only when no other Authorization header is set.
    if (material.auth && !Object.keys(headers).some((name) => name.toLowerCase() === 'authorization'))
      headers.Authorization = `Basic ${Buffer.from(material.auth).toString('base64')}`
    const timeoutMs = request.timeoutMs ?? this.requestTimeoutMs
    const server = url.host
    const origin = url.origin
    const silence = this.silent.get(origin)
    if (silence)
      throw new KubeApiError(0, silence.reason, silence.message, undefined, undefined, {...request.what, server})
    // --request-timeout bounds the whole request (connect, TLS, answer, body), as kubectl's does: a
    // socket idle timer would not (node arms it only once the socket connects, so a server that
    // accepts and never answers TLS would cost twice the timeout).
    const abort = new AbortController()
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            const timedOut = Object.assign(new Error(`no answer within ${timeoutMs} ms`), {code: 'REQUEST_TIMEOUT'})
            abort.abort(timedOut)
            this.http2.abandon(url, timedOut)
          }, timeoutMs)
        : undefined
    try {
      const protocol =
        url.protocol === 'https:' && this.http2Allowed
          ? await Promise.race([this.http2.protocol(url, material), aborted(abort.signal)])
          : ({kind: 'http/1.1'} as const)
      const head = {method: request.method, path: url.pathname + url.search, headers}
      const response =
        protocol.kind === 'h2'
          ? await this.http2.request(protocol.session, head, body, abort.signal)
          : await this.sendHttp1(url, head, body, material, abort.signal)
      this.answered.add(origin)
      this.silent.delete(origin)
      return response
    } catch (error) {
      const timedOut = abort.signal.aborted ? (abort.signal.reason as Error & {code: string}) : undefined
      const failure = networkError(timedOut ?? (error as Error & {code?: string}), server, request)
      if (timedOut && !this.answered.has(origin)) this.silent.set(origin, failure)
      throw failure
    } finally {
      clearTimeout(timer)
    }
  }

  private sendHttp1(
    url: URL,
    head: {method: string; headers: Record<string, string>},
    body: Buffer | undefined,
    material: TlsMaterial,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    const transport = url.protocol === 'http:' ? http : https
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = transport.request(
        url,
        {
          method: head.method,
          headers: head.headers,
          agent: this.agent(url, material),
          servername: material.servername,
          signal,
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (chunk: Buffer) => chunks.push(chunk))
          res.on('error', reject)
          res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks)}))
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  }

  /** Like send, but a non-2xx answer throws KubeApiError (the apiserver's Status decoded). */
  async json<T>(request: HttpRequest): Promise<T> {
    const response = await this.send(request)
    if (response.status < 200 || response.status >= 300)
      throw apiErrorFromResponse(response, {...request.what, server: this.server})
    return (response.body.length === 0 ? {} : JSON.parse(response.body.toString('utf8'))) as T
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy()
    this.agents.clear()
    this.http2.close()
  }
}

/** Rejects with the signal's reason when it aborts. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), {once: true}))
}

function networkError(error: Error & {code?: string}, server: string, request: HttpRequest): KubeApiError {
  const code = error.code ?? ''
  let reason = 'Unreachable'
  let text = NETWORK_REASONS[code]
  if (code === 'REQUEST_TIMEOUT') {
    reason = 'Timeout'
    text = error.message
  } else if (/CERT|SELF_SIGNED|SSL|TLS|ALTNAME|UNABLE_TO_VERIFY/.test(code)) {
    reason = 'TLSError'
    text = `TLS verification failed (${code}): ${error.message.split('\n')[0]}`
  }
  return new KubeApiError(
    0,
    reason,
    `cannot reach the API server at ${server}: ${text ?? error.message.split('\n')[0]}`,
    undefined,
    undefined,
    {
      ...request.what,
      server,
    },
  )
}

export interface StatusBody {
  kind?: string
  message?: string
  reason?: string
  code?: number
  metadata?: {continue?: string}
  details?: {
    retryAfterSeconds?: number
    name?: string
    group?: string
    kind?: string
    causes?: Array<{reason?: string; field?: string; message?: string}>
  }
}

/**
 * Decodes a failed response into a KubeApiError: the apiserver's metav1.Status when there is one
 * (`decoded`: already read from a protobuf answer; otherwise the body is read as JSON).
 */
export function apiErrorFromResponse(
  response: HttpResponse,
  where: KubeApiError['where'] = {},
  decoded?: StatusBody,
): KubeApiError {
  const text = decoded ? '' : response.body.toString('utf8')
  let status: StatusBody = decoded ?? {}
  if (!decoded) {
    try {
      status = JSON.parse(text) as StatusBody
    } catch {
      status = {}
    }
  }
  const header = response.headers['retry-after']
  const retryHeader = Array.isArray(header) ? header[0] : header
  const retryAfter =
    retryHeader !== undefined && /^\d+$/.test(retryHeader.trim())
      ? Number(retryHeader)
      : status.details?.retryAfterSeconds
  const reason = status.reason || defaultReason(response.status)
  const message = status.message || text.trim().split('\n')[0] || `HTTP ${response.status}`
  const d = status.details
  const causes = Array.isArray(d?.causes) && d.causes.length > 0 ? d.causes : undefined
  const details =
    d && (d.kind || d.name || causes)
      ? {name: d.name, group: d.group, kind: d.kind, ...(causes ? {causes} : {})}
      : undefined
  return new KubeApiError(
    response.status,
    reason,
    message,
    retryAfter,
    status.metadata?.continue || undefined,
    where,
    details,
  )
}

function defaultReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'BadRequest',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'NotFound',
    405: 'MethodNotAllowed',
    409: 'Conflict',
    410: 'Expired',
    422: 'Invalid',
    429: 'TooManyRequests',
    500: 'InternalError',
    503: 'ServiceUnavailable',
    504: 'Timeout',
  }
  return reasons[status] ?? 'Unknown'
}
