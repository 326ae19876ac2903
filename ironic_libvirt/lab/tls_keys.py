#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Keys and certificates for ``qemu+tls``: a CA, a hypervisor, a conductor.

Files go where libvirtd and the driver look for them, below a root
directory (``/`` to install on this machine, any other to copy from):

* CA: ``etc/pki/CA/cacert.pem`` and ``etc/pki/CA/private/cakey.pem``;
* hypervisor: ``etc/pki/libvirt/servercert.pem`` and
  ``etc/pki/libvirt/private/serverkey.pem`` (libvirtd's defaults);
* conductor: ``cacert.pem``, ``clientcert.pem`` and ``clientkey.pem`` in
  one directory, the node's driver_info ``tls_pki_path``.

Private keys are created with mode 0600 (never readable by others, not
even while being written) in directories of mode 0700; certificates are
0644. An existing CA key is never replaced unless asked for: every
hypervisor's and conductor's certificate depends on it.

Keys are ECDSA P-256. Certificates carry what libvirt checks: basic
constraints, key usage (digital signature and key encipherment for the
peers), the TLS server or client purpose, and for the hypervisor every
host name and IP address a URI may use as subject alternative names.
"""

import dataclasses
import datetime
import os
import pathlib

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

CA_CERT = 'etc/pki/CA/cacert.pem'
CA_KEY = 'etc/pki/CA/private/cakey.pem'
SERVER_CERT = 'etc/pki/libvirt/servercert.pem'
SERVER_KEY = 'etc/pki/libvirt/private/serverkey.pem'
CLIENT_DIR = 'etc/ironic/libvirt-pki'
DEFAULT_CLIENT_CN = 'ironic-conductor'
DEFAULT_ORGANIZATION = 'ironic-libvirt lab'
DEFAULT_DAYS = 825
# Characters a DN pattern in tls_allowed_dn_list could not match
# literally: DN syntax (RFC 4514) and fnmatch's wildcards.
_DN_SPECIAL = set(',+"\\<>;=#*?[]')
# Tolerate a hypervisor clock a little behind this machine's.
_BACKDATE = datetime.timedelta(minutes=5)


class TLSKeysError(Exception):
    """The keys cannot be made as asked; the message says why and the fix."""


@dataclasses.dataclass(frozen=True)
class Request:
    """What to make.

    :ivar hosts: host names of the hypervisor (the first one, else the
        first IP address, is its certificate's common name).
    :ivar ips: IP addresses of the hypervisor (``ipaddress`` objects).
    :ivar root: the directory the layout goes below.
    :ivar client_dir: the conductor's directory (``tls_pki_path``),
        absolute as installed; it is written below ``root``.
    :ivar ca: ``'new'`` (refuse if a CA key exists), ``'reuse'`` (sign with
        the existing CA) or ``'replace'`` (a new CA over the old one).
    """

    hosts: tuple
    ips: tuple
    root: pathlib.Path
    client_dir: str = '/' + CLIENT_DIR
    client_cn: str = DEFAULT_CLIENT_CN
    organization: str = DEFAULT_ORGANIZATION
    days: int = DEFAULT_DAYS
    ca: str = 'new'

    @property
    def common_name(self):
        """The server certificate's: the first host name, else IP."""
        return self.hosts[0] if self.hosts else str(self.ips[0])


@dataclasses.dataclass(frozen=True)
class Result:
    """What was written.

    :ivar files: installed path (absolute, as on the target machine) ->
        path written (below the root).
    :ivar client_dn: the conductor certificate's subject as libvirtd's
        ``tls_allowed_dn_list`` matches it.
    """

    request: Request
    files: dict
    client_dn: str

    @property
    def ca_created(self):
        """Whether a new CA was made."""
        return self.request.ca != 'reuse'

    @property
    def server_host(self):
        """The host name (or IP address) a URI should use."""
        return self.request.common_name

    def libvirtd_conf(self):
        """The libvirtd.conf lines, as a list of strings."""
        return ['listen_tls = 1',
                'key_file = "/%s"' % SERVER_KEY,
                'cert_file = "/%s"' % SERVER_CERT,
                'ca_file = "/%s"' % CA_CERT,
                'tls_allowed_dn_list = ["%s"]' % self.client_dn]

    def driver_info(self):
        """The node's driver_info for this hypervisor, as a dict."""
        host = self.server_host
        if ':' in host:  # an IPv6 address
            host = '[%s]' % host
        return {'libvirt_uri': 'qemu+tls://%s/system' % host,
                'tls_pki_path': self.request.client_dir}


def check_name(value, what):
    """Check a common name or organization usable in tls_allowed_dn_list.

    :raises: ValueError naming what is wrong.
    """
    if not value or not value.strip():
        raise ValueError('%s must not be empty' % what)
    bad = sorted(set(value) & _DN_SPECIAL)
    if bad:
        raise ValueError('%s must not contain %s (libvirtd matches the '
                         'subject as a pattern)' % (what, ' '.join(bad)))
    return value


def check_host(value, what):
    """Check a host name for the server certificate (and its common name).

    :raises: ValueError naming what is wrong.
    """
    check_name(value, what)
    try:
        x509.DNSName(value)
    except ValueError as exc:
        raise ValueError('%s %r: %s' % (what, value, exc))
    return value


def _below(root, installed):
    return pathlib.Path(root) / str(installed).lstrip('/')


def _mkdirs(path, mode):
    """Create ``path`` with ``mode`` and missing parents with 0755.

    Directories that exist (such as /etc) are left as they are.
    """
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir()
        directory.chmod(mode if directory == missing[0] else 0o755)


def _write(path, data, mode):
    """Write ``data`` to ``path`` through a new file created with ``mode``.

    The temporary file is renamed over the target, so a reader never sees
    half a file and a key never exists with a looser mode.
    """
    tmp = path.with_name('.%s.tmp' % path.name)
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, 'wb') as stream:
            stream.write(data)
        os.chmod(tmp, mode)  # the umask may have narrowed it
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(organization, common_name):
    # Encoded O first, then CN: libvirtd (GnuTLS) prints the subject in
    # this order, "O=...,CN=...".
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _dn_string(organization, common_name):
    return 'O=%s,CN=%s' % (organization, common_name)


def _builder(subject, issuer, public_key, days):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                public_key), critical=False))


def _key_usage(cert_sign):
    return x509.KeyUsage(
        digital_signature=not cert_sign, key_encipherment=not cert_sign,
        content_commitment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False)


def _new_ca(request):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(request.organization, '%s CA' % request.organization)
    cert = (_builder(subject, subject, key.public_key(), request.days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                           critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _load_ca(cert_path, key_path):
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(),
                                                 password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise TLSKeysError('cannot reuse the CA in %s and %s: %s'
                           % (cert_path, key_path, exc))
    if cert.public_key() != key.public_key():
        raise TLSKeysError('cannot reuse the CA: %s does not belong to %s'
                           % (cert_path, key_path))
    return key, cert


def _issue(ca_key, ca_cert, subject, purpose, days, names=()):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (_builder(subject, ca_cert.subject, key.public_key(), days)
               .add_extension(x509.BasicConstraints(ca=False,
                                                    path_length=None),
                              critical=True)
               .add_extension(_key_usage(cert_sign=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([purpose]),
                              critical=False)
               .add_extension(
                   x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       ca_key.public_key()), critical=False))
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(names)), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def make(request):
    """Make the CA and the hypervisor's and conductor's certificates.

    The layout is written below ``request.root``; with ``request.ca`` set
    to ``'reuse'`` the existing CA signs and is not rewritten.

    :returns: a :class:`Result`.
    :raises: TLSKeysError if a CA key exists and ``request.ca`` is
        ``'new'``, if a CA to reuse is missing or broken, or if the files
        cannot be written.
    """
    if not request.hosts and not request.ips:
        raise TLSKeysError('the hypervisor needs a host name or an IP '
                           'address')
    root = pathlib.Path(request.root)
    ca_cert_path, ca_key_path = _below(root, CA_CERT), _below(root, CA_KEY)
    client_dir = _below(root, request.client_dir)
    try:
        if request.ca == 'reuse':
            ca_key, ca_cert = _load_ca(ca_cert_path, ca_key_path)
        elif ca_key_path.exists() and request.ca != 'replace':
            raise TLSKeysError(
                'a CA key exists at %s; every certificate it signed depends '
                'on it. Reuse it to sign for another hypervisor '
                '(--reuse-ca), or replace it and reissue every certificate '
                '(--replace-ca)' % ca_key_path)
        else:
            ca_key, ca_cert = _new_ca(request)

        server_key, server_cert = _issue(
            ca_key, ca_cert, _name(request.organization, request.common_name),
            ExtendedKeyUsageOID.SERVER_AUTH, request.days,
            [x509.DNSName(h) for h in request.hosts]
            + [x509.IPAddress(ip) for ip in request.ips])
        client_key, client_cert = _issue(
            ca_key, ca_cert, _name(request.organization, request.client_cn),
            ExtendedKeyUsageOID.CLIENT_AUTH, request.days)

        for directory, mode in ((ca_cert_path.parent, 0o755),
                                (ca_key_path.parent, 0o700),
                                (_below(root, SERVER_CERT).parent, 0o755),
                                (_below(root, SERVER_KEY).parent, 0o700),
                                (client_dir, 0o700)):
            _mkdirs(directory, mode)
        files = {}
        writes = [(CA_CERT, _cert_pem(ca_cert), 0o644),
                  (SERVER_CERT, _cert_pem(server_cert), 0o644),
                  (SERVER_KEY, _key_pem(server_key), 0o600),
                  (os.path.join(request.client_dir, 'cacert.pem'),
                   _cert_pem(ca_cert), 0o644),
                  (os.path.join(request.client_dir, 'clientcert.pem'),
                   _cert_pem(client_cert), 0o644),
                  (os.path.join(request.client_dir, 'clientkey.pem'),
                   _key_pem(client_key), 0o600)]
        if request.ca != 'reuse':
            writes.insert(0, (CA_KEY, _key_pem(ca_key), 0o600))
        for installed, data, mode in writes:
            path = _below(root, installed)
            _write(path, data, mode)
            files['/' + str(installed).lstrip('/')] = path
    except OSError as exc:
        raise TLSKeysError('cannot write the keys below %s: %s'
                           % (root, exc))
    return Result(request=request, files=files,
                  client_dn=_dn_string(request.organization,
                                       request.client_cn))
