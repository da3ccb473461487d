import type {IncomingMessage} from 'node:http'

import {apiErrorFromResponse, type KubeHttp} from './http.js'
import {type ExecResult, KubeApiError, type PodExecutor, type PodRef} from './types.js'

/** The exec Status sent on channel 3 (error channel) of the v4 protocol. */
export interface ExecStatus {
  status?: string
  message?: string
  reason?: string
  details?: {causes?: Array<{reason?: string; message?: string}>}
}

/**
 * The command's exit code from the v4 exec Status: Success is 0; NonZeroExitCode carries the code
 * in a cause with reason ExitCode. Any other failure (no such container, executable not found)
 * is not an exit code and is thrown.
 */
export function exitCodeFromStatus(status: ExecStatus | undefined, where: KubeApiError['where']): number {
  if (!status || status.status === 'Success') return 0
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode')
    const code = Number(cause?.message)
    if (Number.isInteger(code)) return code
  }
  throw new KubeApiError(
    500,
    status.reason || 'ExecFailed',
    status.message || 'exec failed',
    undefined,
    undefined,
    where,
  )
}

/**
 * pods/exec over a WebSocket with the `v4.channel.k8s.io` protocol: argv only (no shell, no TTY, no
 * stdin), stdout/stderr captured, the exit code from the Status channel. Written on `ws` directly
 * rather than client-node's Exec, whose handler ends process.stdout when a v5 server closes a stream
 * and whose upgrade errors lose the apiserver's Status (a 403 must name the RBAC verb and resource).
 */
export class WebSocketPodExecutor implements PodExecutor {
  constructor(private readonly http: KubeHttp) {}

  async exec(pod: PodRef, argv: string[], options: {timeoutMs?: number} = {}): Promise<ExecResult> {
    const {default: WebSocket} = await import('ws')
    const connection = await this.http.connectionOptions()
    const base = this.http.baseUrl()
    const url = new URL(
      `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}/exec`,
      base,
    )
    url.protocol = base.protocol === 'http:' ? 'ws:' : 'wss:'
    for (const arg of argv) url.searchParams.append('command', arg)
    if (pod.container) url.searchParams.set('container', pod.container)
    url.searchParams.set('stdout', 'true')
    url.searchParams.set('stderr', 'true')
    const where = {verb: 'create', resource: 'pods/exec', namespace: pod.namespace, name: pod.name, server: base.host}

    return new Promise<ExecResult>((resolve, reject) => {
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      let status: ExecStatus | undefined
      let settled = false
      const finish = (error?: Error) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (error) return reject(error)
        try {
          resolve({
            stdout: Buffer.concat(stdout),
            stderr: Buffer.concat(stderr),
            code: exitCodeFromStatus(status, where),
          })
        } catch (statusError) {
          reject(statusError as Error)
        }
      }
      // servername is a TLS option ws passes through to tls.connect; its types omit it.
      const tlsOptions = {servername: connection.servername} as object
      const socket = new WebSocket(url, ['v4.channel.k8s.io'], {
        ...tlsOptions,
        ca: connection.ca,
        cert: connection.cert,
        key: connection.key,
        rejectUnauthorized: connection.rejectUnauthorized,
        headers: connection.headers,
        auth: connection.auth,
      })
      const timer =
        options.timeoutMs && options.timeoutMs > 0
          ? setTimeout(() => {
              socket.terminate()
              finish(
                new KubeApiError(
                  0,
                  'Timeout',
                  `exec in pod ${pod.namespace}/${pod.name} gave no result within ${options.timeoutMs} ms`,
                  undefined,
                  undefined,
                  where,
                ),
              )
            }, options.timeoutMs)
          : undefined
      socket.on('unexpected-response', (_request, response: IncomingMessage) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => {
          finish(
            apiErrorFromResponse(
              {status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks)},
              where,
            ),
          )
          socket.terminate()
        })
      })
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        const frame = isBinary ? data : Buffer.from(data)
        if (frame.length === 0) return
        const channel = frame[0]
        const payload = frame.subarray(1)
        if (channel === 1) stdout.push(payload)
        else if (channel === 2) stderr.push(payload)
        else if (channel === 3 && payload.length > 0) {
          try {
            status = JSON.parse(payload.toString('utf8')) as ExecStatus
          } catch {
            status = {status: 'Failure', reason: 'ExecFailed', message: payload.toString('utf8')}
          }
        }
      })
      socket.on('error', (error: Error & {code?: string}) => {
        finish(
          new KubeApiError(
            0,
            'Unreachable',
            `cannot exec in pod ${pod.namespace}/${pod.name} through ${base.host}: ${error.message}`,
            undefined,
            undefined,
            where,
          ),
        )
      })
      socket.on('close', () => finish())
    })
  }
}
