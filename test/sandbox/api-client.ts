// A minimal JSON client for the sandbox API (used by the kubelet and by sandbox start-up; the plugin
// itself goes through @kubernetes/client-node). Client-certificate auth, the cluster CA pinned.
import http from 'node:http'
import https from 'node:https'
import {readFileSync} from 'node:fs'

export interface ApiCredentials {
  server: string
  ca: string
  cert: string
  key: string
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    method: string,
    path: string,
  ) {
    super(`${method} ${path}: HTTP ${status}: ${body.slice(0, 300)}`)
  }
}

export class SandboxApiClient {
  private agentInstance?: https.Agent
  private readonly base: URL

  /** The credential files are read on first use (a node may start before its certificates exist). */
  constructor(private readonly creds: ApiCredentials) {
    this.base = new URL(creds.server)
  }

  private get agent(): https.Agent {
    this.agentInstance ??= new https.Agent({
      ca: readFileSync(this.creds.ca),
      cert: readFileSync(this.creds.cert),
      key: readFileSync(this.creds.key),
      keepAlive: false,
    })
    return this.agentInstance
  }

  request<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: this.base.hostname,
          port: this.base.port || 443,
          method,
          path,
          agent: this.agent,
          timeout: 5000,
          headers: {
            accept: 'application/json',
            'user-agent': 'kubelet/v1.32.4 (linux/amd64) sandbox',
            ...(payload ? {'content-type': contentType, 'content-length': String(payload.length)} : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            if ((res.statusCode ?? 0) >= 300) return reject(new ApiError(res.statusCode ?? 0, text, method, path))
            try {
              resolve((text ? JSON.parse(text) : undefined) as T)
            } catch (error) {
              reject(error)
            }
          })
          res.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)))
      req.on('error', reject)
      if (payload) req.write(payload)
      req.end()
    })
  }

  close(): void {
    this.agentInstance?.destroy()
  }
}

export const isStatus = (error: unknown, status: number) => error instanceof ApiError && error.status === status

/** A plain GET without client credentials and without verifying the server, as kubelet probes do. */
export function probeHttp(url: string, timeoutMs = 2000): Promise<{ok: boolean; status: number; body: string}> {
  return new Promise((resolve) => {
    const onResponse = (res: http.IncomingMessage) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => {
        const status = res.statusCode ?? 0
        resolve({ok: status >= 200 && status < 400, status, body})
      })
    }
    const req = url.startsWith('https:')
      ? https.get(url, {rejectUnauthorized: false, timeout: timeoutMs}, onResponse)
      : http.get(url, {timeout: timeoutMs}, onResponse)
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (e) => resolve({ok: false, status: 0, body: String(e.message)}))
  })
}
