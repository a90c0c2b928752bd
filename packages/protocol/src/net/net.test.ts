import { describe, expect, it } from 'vitest';
import { foreignAnswer, SERVER_HEADER } from './foreign.ts';
import { certificateProblem } from './trust.ts';

describe('foreignAnswer', () => {
  it("is undefined for builder's own answers: its header, or a JSON body", () => {
    expect(foreignAnswer(404, { [SERVER_HEADER]: '1' }, '<html>not found</html>')).toBeUndefined();
    expect(foreignAnswer(400, {}, '{"ok":false,"code":"BAD","error":"no"}')).toBeUndefined();
  });

  it("names the status, that a proxy answered and the setting, never the proxy's page", () => {
    const page = '<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>nginx</body></html>';
    const line = foreignAnswer(413, { 'content-type': 'text/html' }, page)!;
    expect(line).toBe(
      'a proxy answered HTTP 413 (Payload Too Large), not builder-server: the request is larger than the proxy allows: lift its body limit for /artifacts/, /upload/, /inputs and /blobs/ (nginx: client_max_body_size 0; see debian/nginx.conf)',
    );
    expect(foreignAnswer(504, {}, page)).toContain('proxy_read_timeout');
    expect(foreignAnswer(400, {}, 'The plain HTTP request was sent to HTTPS port')).toContain('use https://');
    expect(foreignAnswer(400, {}, '', { websocket: true })).toContain('does not pass WebSocket upgrades');
    for (const status of [400, 401, 404, 413, 418, 500, 502, 503, 504]) {
      const text = foreignAnswer(status, {}, page)!;
      expect(text).not.toMatch(/[<>\n]/);
      expect(text).toContain(`HTTP ${status}`);
    }
  });
});

describe('certificateProblem', () => {
  it('says why and how to trust a private CA; other errors are not certificate problems', () => {
    const error = Object.assign(new Error('unable to verify the first certificate'), {
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    expect(certificateProblem(error, 'https://b.example')).toBe(
      'the TLS certificate of https://b.example was not accepted: it is signed by a CA this machine does not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE); if the server uses a private CA, pass --ca CA.pem or set NODE_EXTRA_CA_CERTS=CA.pem (the CA certificate, not the server key)',
    );
    expect(certificateProblem({ code: 'CERT_HAS_EXPIRED' }, 'https://b')).toContain('renew the server certificate');
    expect(certificateProblem({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' }, 'https://b')).toContain('host name');
    expect(certificateProblem(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'x')).toBeUndefined();
  });
});
