/**
 * pods/exec over WebSocket (remotecommand protocols v5.channel.k8s.io and v4.channel.k8s.io):
 * every frame starts with its channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (a v4 Status),
 * 4 resize, 255 close (v5). For the etcd mirror pods the command runs here, argv without a shell,
 * as a child of the stand-in, which lives in its node's mount namespace.
 */
import {spawn} from 'node:child_process'
import type {IncomingMessage, Server} from 'node:http'
import type {Duplex} from 'node:stream'
import {WebSocketServer, type WebSocket} from 'ws'
import {BUILTIN} from '../registry.js'
import type {Store} from '../storage/store.js'
import {authenticate, authorize} from './auth.js'
import type {ApiServerHandler} from './server.js'
import {ApiError, errors} from './status.js'

const PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io']

function rejectUpgrade(socket: Duplex, err: ApiError): void {
  const body = JSON.stringify(err.toStatus())
  const reason = {400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error'}[err.code] ?? 'Error'
  socket.end(`HTTP/1.1 ${err.code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}

function frame(channel: number, data: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from([channel]), Buffer.isBuffer(data) ? data : Buffer.from(data)])
}

export function attachExec(server: Server, handler: ApiServerHandler, store: Store, log: (l: string) => void) {
  void handler
  const sessions = new Set<WebSocket>()
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => PROTOCOLS.find((p) => offered.has(p)) ?? false,
  })
  const pods = BUILTIN.find((r) => r.resource === 'pods')!

  server.on('upgrade', async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://localhost')
    const m = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec\/?$/)
    try {
      if (!m) throw errors.notFoundPath()
      const [, namespace, name] = m
      const auth = authenticate(req, (handler as any).deps.tokens)
      if ('unauthorized' in auth) throw errors.unauthorized()
      if (!authorize(auth.user, {verb: 'create', group: '', resource: 'pods', subresource: 'exec', namespace, name}))
        throw errors.forbidden(auth.user.name, 'create', '', 'pods', 'exec', namespace, name)
      const pod = await store.get(pods, namespace, name)
      const isEtcd = pod.metadata?.labels?.component === 'etcd' || name.startsWith('etcd-')
      if (!isEtcd) throw errors.badRequest(`the sandbox runs exec only for etcd pods, not for pod ${name}`)
      const container = url.searchParams.get('container')
      const containers: string[] = (pod.spec?.containers ?? []).map((c: {name: string}) => c.name)
      if (container && !containers.includes(container)) throw errors.badRequest(`container ${container} is not valid for pod ${name}`)
      const command = url.searchParams.getAll('command')
      if (command.length === 0) throw errors.badRequest('you must specify at least 1 command')
      const offered = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((s) => s.trim())
      if (!PROTOCOLS.some((p) => offered.includes(p))) throw errors.badRequest('unable to upgrade: no supported stream protocol offered')
      wss.handleUpgrade(req, socket, head, (ws) => {
        sessions.add(ws)
        ws.on('close', () => sessions.delete(ws))
        run(ws, command, url.searchParams.get('stdin') === 'true', log)
      })
    } catch (err) {
      rejectUpgrade(socket, err instanceof ApiError ? err : errors.internal(String((err as Error).message ?? err)))
    }
  })

  return {
    closeAll() {
      for (const ws of sessions) ws.terminate()
      wss.close()
    },
  }
}

function run(ws: WebSocket, command: string[], stdin: boolean, log: (l: string) => void): void {
  const v5 = ws.protocol === 'v5.channel.k8s.io'
  const child = spawn(command[0], command.slice(1), {stdio: ['pipe', 'pipe', 'pipe']})
  let finished = false
  const finish = (status: Record<string, unknown>) => {
    if (finished) return
    finished = true
    if (ws.readyState === ws.OPEN) {
      ws.send(frame(3, JSON.stringify(status)))
      ws.close(1000)
    }
  }
  if (!stdin) child.stdin.end()
  child.stdin.on('error', () => {})
  child.stdout.on('data', (d: Buffer) => ws.readyState === ws.OPEN && ws.send(frame(1, d)))
  child.stderr.on('data', (d: Buffer) => ws.readyState === ws.OPEN && ws.send(frame(2, d)))
  ws.on('message', (data: Buffer) => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer)
    if (buf.length === 0) return
    if (buf[0] === 0 && stdin) child.stdin.write(buf.subarray(1))
    if (v5 && buf[0] === 255 && buf[1] === 0) child.stdin.end()
  })
  ws.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  child.on('error', (err: NodeJS.ErrnoException) => {
    const text =
      err.code === 'ENOENT'
        ? `exec: "${command[0]}": executable file not found in $PATH`
        : `failed to exec in container: ${err.message}`
    log(`exec ${command.join(' ')} failed: ${text}`)
    finish({metadata: {}, status: 'Failure', message: text, reason: 'InternalError', code: 500})
  })
  child.on('close', (code, signal) => {
    const rc = code ?? (signal ? 128 + 9 : 1)
    if (rc === 0) return finish({metadata: {}, status: 'Success'})
    finish({
      metadata: {},
      status: 'Failure',
      message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${rc}`,
      reason: 'NonZeroExitCode',
      details: {causes: [{reason: 'ExitCode', message: String(rc)}]},
    })
  })
}
