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

"""Smoke tests of the harness: every transport, and a real QEMU domain."""

import uuid

import libvirt
import pytest

from tests.harness import domains


def _auth(username, password):
    def callback(credentials, _data):
        for credential in credentials:
            if credential[0] == libvirt.VIR_CRED_AUTHNAME:
                credential[4] = username
            elif credential[0] == libvirt.VIR_CRED_PASSPHRASE:
                credential[4] = password
            else:
                return -1
        return 0
    return [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE],
            callback, None]


def _check(conn):
    try:
        assert conn.getType() == 'QEMU'
        assert isinstance(conn.listAllDomains(), list)
    finally:
        conn.close()


def test_unix_socket(libvirtd):
    _check(libvirt.open(libvirtd.uri_unix))


def test_ssh(libvirtd):
    _check(libvirt.open(libvirtd.uri_ssh(libvirtd.sshd.keyfile)))


def test_tcp_sasl(libvirtd):
    _check(libvirt.openAuth(
        libvirtd.uri_tcp,
        _auth(libvirtd.sasl_username, libvirtd.sasl_password), 0))


def test_tcp_sasl_wrong_password(libvirtd):
    with pytest.raises(libvirt.libvirtError) as ctx:
        libvirt.openAuth(libvirtd.uri_tcp,
                         _auth(libvirtd.sasl_username, 'wrong'), 0)
    assert ctx.value.get_error_code() == libvirt.VIR_ERR_AUTH_FAILED


def test_tls(libvirtd):
    _check(libvirt.open(libvirtd.uri_tls))


@pytest.mark.parametrize('firmware', [None, 'efi'])
def test_domain_lifecycle(clean_libvirtd, firmware):
    if firmware and not domains.ovmf_available():
        pytest.skip('OVMF is not installed')
    conn = libvirt.open(clean_libvirtd.uri_unix)
    try:
        domain = conn.defineXML(domains.minimal_domain_xml(
            'harness-%s' % (firmware or 'bios'), '52:54:00:12:34:56',
            uuid=str(uuid.uuid4()), firmware=firmware))
        domain.create()
        assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        domain.destroy()
        assert domain.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        assert conn.listAllDomains() == []
    finally:
        conn.close()
