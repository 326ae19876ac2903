# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""A throw-away certificate authority for libvirtd's TLS listener."""

import dataclasses
import pathlib
import subprocess

ORGANIZATION = 'ironic-libvirt tests'
CLIENT_CN = 'ironic-libvirt-client'


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """Where the generated files are.

    ``pki_dir`` is what a client passes as ``?pkipath=``: it holds
    cacert.pem, clientcert.pem and clientkey.pem. The server's files are
    for libvirtd.conf's ``ca_file``, ``cert_file`` and ``key_file``.
    """

    pki_dir: pathlib.Path
    ca_file: pathlib.Path
    cert_file: pathlib.Path
    key_file: pathlib.Path
    client_dn_pattern: str


def _certtool(*args, template=None):
    cmd = ['certtool', *args]
    if template is not None:
        cmd += ['--template', str(template)]
    subprocess.run(cmd, check=True, capture_output=True)


def _issue(directory, name, template_text, ca_cert, ca_key):
    """Make a key and a certificate signed by the CA; return their paths."""
    key = directory / ('%skey.pem' % name)
    cert = directory / ('%scert.pem' % name)
    template = directory / ('%s.info' % name)
    template.write_text(template_text)
    _certtool('--generate-privkey', '--outfile', str(key))
    _certtool('--generate-certificate', '--load-privkey', str(key),
              '--load-ca-certificate', str(ca_cert),
              '--load-ca-privkey', str(ca_key), '--outfile', str(cert),
              template=template)
    key.chmod(0o600)
    return cert, key


def make_pki(base_dir, host='127.0.0.1'):
    """Generate a CA, a server certificate for host and a client one.

    Layout under base_dir: ``ca/`` (CA key), ``server/`` (cacert.pem,
    servercert.pem, serverkey.pem), ``client/`` (the client's pkipath).
    :returns: a TLSFiles.
    """
    base = pathlib.Path(base_dir)
    ca_dir, server_dir, client_dir = (base / 'ca', base / 'server',
                                      base / 'client')
    for directory in (ca_dir, server_dir, client_dir):
        directory.mkdir(parents=True, exist_ok=True)

    ca_key, ca_cert = ca_dir / 'cakey.pem', ca_dir / 'cacert.pem'
    template = ca_dir / 'ca.info'
    template.write_text('cn = ironic-libvirt test CA\nca\ncert_signing_key\n'
                        'expiration_days = 30\n')
    _certtool('--generate-privkey', '--outfile', str(ca_key))
    _certtool('--generate-self-signed', '--load-privkey', str(ca_key),
              '--outfile', str(ca_cert), template=template)

    _issue(server_dir, 'server',
           'organization = %s\ncn = %s\nip_address = %s\ndns_name = %s\n'
           'tls_www_server\nencryption_key\nsigning_key\n'
           'expiration_days = 30\n' % (ORGANIZATION, host, host, host),
           ca_cert, ca_key)
    _issue(client_dir, 'client',
           'organization = %s\ncn = %s\ntls_www_client\nencryption_key\n'
           'signing_key\nexpiration_days = 30\n' % (ORGANIZATION, CLIENT_CN),
           ca_cert, ca_key)
    for directory in (server_dir, client_dir):
        (directory / 'cacert.pem').write_bytes(ca_cert.read_bytes())

    return TLSFiles(pki_dir=client_dir,
                    ca_file=server_dir / 'cacert.pem',
                    cert_file=server_dir / 'servercert.pem',
                    key_file=server_dir / 'serverkey.pem',
                    client_dn_pattern='*CN=%s*' % CLIENT_CN)
