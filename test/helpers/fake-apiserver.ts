import type {IncomingMessage, ServerResponse} from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import type {AddressInfo, Socket} from 'node:net'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {WebSocketServer, type WebSocket} from 'ws'

import type {TlsFixture} from './tls.js'

export interface FakeRequest {
  method: string
  url: URL
  /** The body parsed as JSON; undefined when empty or not JSON (see raw). */
  body: unknown
  /** The body's bytes (a protobuf PUT). */
  raw: Buffer
  headers: IncomingMessage['headers']
  clientCN?: string
  /** '2.0' or '1.1'. */
  httpVersion: string
}

export type Route = (
  request: FakeRequest,
) => {status?: number; body?: unknown; headers?: Record<string, string>; hang?: boolean} | undefined
export type ExecHandler = (url: URL, socket: WebSocket, request: IncomingMessage) => void

export interface FakeApiServerOptions {
  /** Offer HTTP/2 in ALPN, as kube-apiserver does (default), or speak HTTP/1.1 only. */
  http2?: boolean
}

/** A small HTTPS server with client-certificate auth, for adapter tests (not the sandbox stand-in). */
export class FakeApiServer {
  readonly requests: FakeRequest[] = []
  routes: Route[] = []
  exec?: ExecHandler
  /** TLS connections accepted so far. */
  connections = 0
  private readonly sockets = new Set<Socket>()
  private readonly server: https.Server | http2.Http2SecureServer
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false),
  })

  constructor(tls: TlsFixture, options: FakeApiServerOptions = {}) {
    const serverOptions = {
      cert: tls.read(tls.serverCert),
      key: tls.read(tls.serverKey),
      ca: tls.read(tls.caCert),
      requestCert: true,
      rejectUnauthorized: true,
    }
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res)
    this.server =
      options.http2 === false
        ? https.createServer(serverOptions, handler)
        : http2.createSecureServer({...serverOptions, allowHTTP1: true}, handler as never)
    this.server.on('secureConnection', (socket: Socket) => {
      this.connections++
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
    this.server.on('upgrade', (req: IncomingMessage, socket, head) => {
      const url = new URL(req.url ?? '/', 'https://fake')
      const denied = this.routes
        .map((route) =>
          route({
            method: 'UPGRADE',
            url,
            body: undefined,
            raw: Buffer.alloc(0),
            headers: req.headers,
            httpVersion: req.httpVersion,
          }),
        )
        .find(Boolean)
      if (denied) {
        const body = JSON.stringify(denied.body)
        socket.end(
          `HTTP/1.1 ${denied.status} Denied\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        )
        return
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.exec?.(url, ws, req))
    })
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return this.endpoint
  }

  get endpoint(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async stop(): Promise<void> {
    for (const client of this.wss.clients) client.terminate()
    this.dropConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /** Cuts every open connection (as an apiserver that restarts does). */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy()
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const raw = Buffer.concat(chunks)
    const json = !String(req.headers['content-type'] ?? 'application/json').includes('protobuf')
    const text = json ? raw.toString('utf8') : ''
    const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate?.()
    const request: FakeRequest = {
      method: req.method ?? 'GET',
      url: new URL(req.url ?? '/', 'https://fake'),
      body: text ? JSON.parse(text) : undefined,
      raw,
      headers: req.headers,
      clientCN: peer?.subject?.CN as string | undefined,
      httpVersion: req.httpVersion,
    }
    this.requests.push(request)
    for (const route of this.routes) {
      const answer = route(request)
      if (!answer) continue
      if (answer.hang) return
      const body =
        typeof answer.body === 'string' || Buffer.isBuffer(answer.body)
          ? answer.body
          : JSON.stringify(answer.body ?? {})
      res.writeHead(answer.status ?? 200, {'Content-Type': 'application/json', ...answer.headers})
      res.end(body)
      return
    }
    res.writeHead(404, {'Content-Type': 'application/json'})
    res.end(
      JSON.stringify({
        kind: 'Status',
        status: 'Failure',
        reason: 'NotFound',
        code: 404,
        message: `the server could not find the requested resource (${request.url.pathname})`,
      }),
    )
  }
}

/** A kubeconfig file for the fake server with client-certificate auth. */
export function writeKubeconfig(
  dir: string,
  tls: TlsFixture,
  server: string,
  extra: {namespace?: string; name?: string} = {},
): string {
  const file = join(dir, extra.name ?? 'kubeconfig')
  const ns = extra.namespace ? `\n    namespace: ${extra.namespace}` : ''
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: https://${server}
    certificate-authority: ${tls.caCert}
users:
- name: admin
  user:
    client-certificate: ${tls.clientCert}
    client-key: ${tls.clientKey}
contexts:
- name: fake
  context:
    cluster: fake
    user: admin${ns}
current-context: fake
`,
  )
  return file
}

export const status = (code: number, reason: string, message: string, extra: Record<string, unknown> = {}) => ({
  status: code,
  body: {kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, code, message, ...extra},
})
