import http2 from 'node:http2'
import tls from 'node:tls'

import type {TlsMaterial} from './types.js'

/** How one API server (origin) is spoken to: decided by ALPN on the first connection, as client-go does. */
export type Protocol = {kind: 'h2'; session: http2.ClientHttp2Session} | {kind: 'http/1.1'}

export interface Http2Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/**
 * One multiplexed HTTP/2 connection per API server, the way client-go talks to kube-apiserver
 * (opt-in: KUBECTL_ENCRYPTION_HTTP2). A rewrite's thousands of small requests then cost each side a
 * stream, not a request on one of up to 32 TLS connections: less CPU per update for the plugin and
 * the apiservers, but slower rewrites on the sandbox (bench/README.md, 2026-12-07). A server that
 * does not offer h2 in ALPN is remembered as HTTP/1.1 and left to the caller's agents.
 *
 * A session holds the event loop only while it has requests in flight, so an idle connection never
 * keeps a finished command alive; close() ends them all.
 */
export class Http2Connections {
  private readonly protocols = new Map<string, Promise<Protocol>>()
  /** The same, once known (a closed session is replaced on the next request). */
  private readonly settled = new Map<string, Protocol>()
  /** TLS sockets still in their handshake: a request that times out there ends them (see abandon). */
  private readonly handshakes = new Map<string, tls.TLSSocket>()
  private readonly active = new Map<http2.ClientHttp2Session, number>()

  /** The protocol for `origin` (https only), connecting and negotiating on first use. */
  protocol(url: URL, material: TlsMaterial): Promise<Protocol> {
    const origin = url.origin
    let protocol = this.protocols.get(origin)
    const current = protocol && this.settled.get(origin)
    if (current?.kind === 'h2' && (current.session.closed || current.session.destroyed)) protocol = undefined
    if (!protocol) {
      protocol = this.negotiate(url, material)
      this.protocols.set(origin, protocol)
      protocol.then(
        (value) => this.settled.set(origin, value),
        () => {
          if (this.protocols.get(origin) === protocol) this.protocols.delete(origin)
        },
      )
    }
    return protocol
  }

  /** Ends a handshake that a request gave up on (its --request-timeout): nothing else would. */
  abandon(url: URL, reason: Error): void {
    this.handshakes.get(url.origin)?.destroy(reason)
  }

  private negotiate(url: URL, material: TlsMaterial): Promise<Protocol> {
    const origin = url.origin
    return new Promise<Protocol>((resolve, reject) => {
      const socket = tls.connect({
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: Number(url.port || 443),
        ca: material.ca,
        cert: material.cert,
        key: material.key,
        rejectUnauthorized: material.rejectUnauthorized,
        servername: material.servername,
        ALPNProtocols: ['h2', 'http/1.1'],
      })
      // Small frames go out at once (as Go's connections and node's HTTP agents do): with Nagle's
      // algorithm a request's frames wait for the previous ones' ACK.
      socket.setNoDelay(true)
      this.handshakes.set(origin, socket)
      const failed = (error: Error) => {
        this.handshakes.delete(origin)
        reject(error)
      }
      socket.once('error', failed)
      socket.once('secureConnect', () => {
        this.handshakes.delete(origin)
        socket.removeListener('error', failed)
        if (socket.alpnProtocol !== 'h2') {
          socket.destroy()
          resolve({kind: 'http/1.1'})
          return
        }
        const session = http2.connect(origin, {createConnection: () => socket})
        const protocol: Protocol = {kind: 'h2', session}
        // Errors reach the streams in flight; the session itself is only forgotten.
        session.on('error', () => {})
        const forget = () => {
          if (this.settled.get(origin) === protocol) {
            this.protocols.delete(origin)
            this.settled.delete(origin)
          }
          this.active.delete(session)
        }
        session.once('close', forget)
        session.once('goaway', () => {
          forget()
          session.close()
        })
        session.unref()
        resolve(protocol)
      })
    })
  }

  /** One request as one stream; rejects with the stream's or session's error. */
  request(
    session: http2.ClientHttp2Session,
    head: {method: string; path: string; headers: Record<string, string>},
    body: Buffer | undefined,
    signal: AbortSignal,
  ): Promise<Http2Answer> {
    return new Promise<Http2Answer>((resolve, reject) => {
      const headers: http2.OutgoingHttpHeaders = {':method': head.method, ':path': head.path}
      for (const [name, value] of Object.entries(head.headers)) headers[name.toLowerCase()] = value
      let stream: http2.ClientHttp2Stream
      try {
        stream = session.request(headers, {endStream: !body, signal})
      } catch (error) {
        reject(error)
        return
      }
      this.hold(session, +1)
      let status = 0
      let responseHeaders: Http2Answer['headers'] = {}
      const chunks: Buffer[] = []
      stream.on('response', (received) => {
        status = Number(received[':status'] ?? 0)
        responseHeaders = {}
        for (const [name, value] of Object.entries(received)) if (!name.startsWith(':')) responseHeaders[name] = value
      })
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('error', (error) => reject(signal.aborted ? signal.reason : error))
      const closed = () =>
        signal.aborted
          ? signal.reason
          : Object.assign(new Error('connection closed before the answer'), {code: 'ERR_HTTP2_STREAM_ERROR'})
      // A stream can end without an answer when its connection is cut (node ends it, no error).
      stream.on('end', () =>
        status ? resolve({status, headers: responseHeaders, body: Buffer.concat(chunks)}) : reject(closed()),
      )
      stream.on('close', () => {
        this.hold(session, -1)
        if (!stream.readableEnded) reject(closed())
      })
      if (body) stream.end(body)
    })
  }

  /** Keeps the event loop alive while the session has requests in flight, and only then. */
  private hold(session: http2.ClientHttp2Session, delta: number): void {
    const before = this.active.get(session) ?? 0
    const after = Math.max(0, before + delta)
    this.active.set(session, after)
    if (session.destroyed) return
    if (before === 0 && after > 0) session.ref()
    if (before > 0 && after === 0) session.unref()
  }

  close(): void {
    for (const socket of this.handshakes.values()) socket.destroy()
    for (const protocol of this.settled.values()) if (protocol.kind === 'h2') protocol.session.destroy()
    this.handshakes.clear()
    this.protocols.clear()
    this.settled.clear()
    this.active.clear()
  }
}
