// tsyringe, which @peculiar/x509 uses, needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestTls {
  caPem: string;
  /** A temp file holding caPem. */
  caFile: string;
  serverKeyPem: string;
  /** The server certificate followed by nothing else: clients trust the CA directly. */
  serverCertPem: string;
  dir: string;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

function serial(): string {
  // Positive and non-zero: clear the top bit of the first byte and set a low one.
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function pem(label: string, der: ArrayBuffer): string {
  const base64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${base64}${base64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/**
 * A fresh CA and a server certificate it signed, for 127.0.0.1, localhost and ::1. The
 * extensions satisfy strict verifiers (Python's VERIFY_X509_STRICT, Node, git's OpenSSL):
 * critical basicConstraints and keyUsage on the CA, key identifiers, serverAuth on the leaf.
 */
export async function createTestTls(): Promise<TestTls> {
  const { crypto } = globalThis;
  const notBefore = new Date(Date.now() - DAY_MS);
  const notAfter = new Date(Date.now() + 30 * DAY_MS);

  const caKeys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=forgelink fake GitLab test CA, O=forgelink tests',
    notBefore,
    notAfter,
    signingAlgorithm: ALGORITHM,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const serverKeys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=localhost',
    issuer: ca.subject,
    notBefore,
    notAfter,
    signingAlgorithm: ALGORITHM,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'ip', value: '127.0.0.1' },
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '::1' },
      ]),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const caPem = ca.toString('pem') + '\n';
  const dir = await mkdtemp(join(tmpdir(), 'fake-gitlab-ca-'));
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, caPem, { mode: 0o600 });
  const serverKeyPem = pem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', serverKeys.privateKey));
  return { caPem, caFile, serverKeyPem, serverCertPem: server.toString('pem') + '\n', dir };
}

export async function removeTestTls(tls: TestTls): Promise<void> {
  await rm(tls.dir, { recursive: true, force: true });
}
