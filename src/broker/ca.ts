// tsyringe, which @peculiar/x509 uses, needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, type webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Clocks inside and outside the sandbox may disagree a little. */
const SKEW_MS = 5 * 60_000;

/**
 * A run's own certificate authority (docs/security.md, "Credential broker"): made in memory when the run
 * starts, valid for the run's time limit (plus an hour), and gone with the run. Its private key is a
 * non-extractable WebCrypto key: it signs the leaf certificates and is never exported, written or logged.
 * Only the CA certificate (public) goes into the sandbox's CA bundle.
 */
export interface RunCa {
  /** The CA certificate, PEM, for the sandbox's trust store. */
  readonly certPem: string;
  /** A TLS context presenting a certificate for `host` (a name or an IP address), made once per host. */
  contextFor(host: string): Promise<SecureContext>;
}

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

export async function createRunCa(input: { runId: string; validForMs: number; now?: Date }): Promise<RunCa> {
  const { crypto } = globalThis;
  const now = input.now ?? new Date();
  const notBefore = new Date(now.getTime() - SKEW_MS);
  const notAfter = new Date(now.getTime() + input.validForMs + 60 * 60_000);
  // The CA's private key cannot be exported: WebCrypto refuses, so it exists only inside this process.
  const caKeys = (await crypto.subtle.generateKey(ALGORITHM, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=forgelink run ${input.runId.slice(0, 40)} CA, O=forgelink`,
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
  // One key for the run's leaf certificates; it must be handed to Node's TLS, so it is exported — to memory only.
  const leafKeys = (await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const leafKeyPem = pem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', leafKeys.privateKey));
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey);
  const leafKeyId = await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey);
  const certPem = `${ca.toString('pem')}\n`;
  const contexts = new Map<string, Promise<SecureContext>>();

  async function leaf(host: string): Promise<SecureContext> {
    const bare = host.replace(/^\[|\]$/g, '');
    const name = isIP(bare) === 0 ? { type: 'dns' as const, value: bare } : { type: 'ip' as const, value: bare };
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${isIP(bare) === 0 ? bare : 'forgelink broker'}`,
      issuer: ca.subject,
      notBefore,
      notAfter,
      signingAlgorithm: ALGORITHM,
      publicKey: leafKeys.publicKey,
      signingKey: caKeys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([name]),
        leafKeyId,
        authorityKeyId,
      ],
    });
    return createSecureContext({ key: leafKeyPem, cert: `${cert.toString('pem')}\n${certPem}`, minVersion: 'TLSv1.2' });
  }

  return {
    certPem,
    contextFor(host: string): Promise<SecureContext> {
      const key = host.toLowerCase();
      let context = contexts.get(key);
      if (context === undefined) {
        context = leaf(key);
        contexts.set(key, context);
        context.catch(() => contexts.delete(key));
      }
      return context;
    },
  };
}
