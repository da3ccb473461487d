import {execFileSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

export interface TlsFixture {
  caCert: string
  caKey: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
  read(path: string): Buffer
}

function openssl(args: string[], cwd: string) {
  execFileSync('openssl', args, {cwd, stdio: 'pipe'})
}

/** A throwaway CA with a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl. */
export function makeTls(dir: string, clientSubject = '/CN=kubernetes-admin/O=system:masters'): TlsFixture {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test-ca'], dir)
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  )
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n')
  for (const [name, subject] of [
    ['server', '/CN=127.0.0.1'],
    ['client', clientSubject],
  ]) {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir)
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-extfile',
        `${name}.ext`,
      ],
      dir,
    )
  }
  return {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    read: (path: string) => readFileSync(path),
  }
}
