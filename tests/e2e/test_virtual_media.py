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

"""Virtual media in a real standalone Ironic: what a user types.

Attach and detach on real QEMU domains reached over qemu+tcp with SASL.
Virtual media goes through openstacksdk: python-ironicclient 6.3 has no
command for it.
"""

import xml.etree.ElementTree as ET

import libvirt
import openstack
import pytest

from tests.e2e import conftest
from tests.harness import web

ISO_BYTES = b'\x00' * 32768 + b'\x01CD001\x01' + b'\x00' * 4089


def _cdrom_source(domain, flags=0):
    disk = ET.fromstring(domain.XMLDesc(flags)).find(
        "devices/disk[@device='cdrom']")
    source = disk.find('source')
    return None if source is None else source.get('file')


@pytest.fixture
def image_url(tmp_path):
    """URL of ``x.iso`` (ISO_BYTES), served over HTTP on 127.0.0.1."""
    (tmp_path / 'x.iso').write_bytes(ISO_BYTES)
    with web.serving(tmp_path) as url:
        yield url + '/x.iso'


@pytest.fixture
def sdk(libvirt_ironic):
    """An openstacksdk connection to the service, without authentication."""
    conn = openstack.connection.Connection(
        config=openstack.config.get_cloud_region(
            auth_type='none', auth={'endpoint': libvirt_ironic.endpoint},
            load_envvars=False, load_yaml_config=False))
    yield conn
    conn.close()


def test_virtual_media_attach_and_detach(nodes, qemu, sdk, image_url):
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain))['uuid']
    # Ironic publishes the image through the node's boot interface, which
    # must say how: libvirt-vmedia does.
    nodes.cli('node', 'set', node, '--boot-interface', 'libvirt-vmedia',
              json=False)
    nodes.manage(node)
    nodes.power(node, 'on', cli=True)

    def vmedia():
        return nodes.ironic.request('GET', '/v1/nodes/%s/vmedia' % node)

    def failed():
        return nodes.api(node)['last_error']

    assert vmedia() == [{'media_types': ['cdrom'], 'inserted': False,
                         'image': None}]
    sdk.baremetal.attach_vmedia_to_node(node, 'cdrom', image_url,
                                        image_download_source='http')
    conftest.wait('inserted medium',
                  lambda: failed() or vmedia()[0]['inserted'])
    assert failed() is None
    # Ironic 39 always republishes the image on its own web server
    # ([deploy] http_url): its RPC API drops image_download_source.
    shown, = vmedia()
    assert shown['inserted'] is True
    assert shown['image'].endswith('/cdrom-%s.iso' % node)
    volume = '%s-sda.iso' % domain.UUIDString()
    path = qemu.daemon.virsh('vol-path', '--pool', conftest.MEDIA_POOL,
                             volume).strip()
    # Live and in the definition.
    assert _cdrom_source(domain) == path
    assert _cdrom_source(domain, libvirt.VIR_DOMAIN_XML_INACTIVE) == path
    downloaded = qemu.daemon.base_dir / 'downloaded.iso'
    qemu.daemon.virsh('vol-download', '--pool', conftest.MEDIA_POOL, volume,
                      str(downloaded))
    assert downloaded.read_bytes() == ISO_BYTES

    sdk.baremetal.detach_vmedia_from_node(node)
    conftest.wait('ejected medium',
                  lambda: failed() or not vmedia()[0]['inserted'])
    assert failed() is None
    assert vmedia() == [{'media_types': ['cdrom'], 'inserted': False,
                         'image': None}]
    assert _cdrom_source(domain) is None
    assert _cdrom_source(domain, libvirt.VIR_DOMAIN_XML_INACTIVE) is None
    assert qemu.daemon.virsh('vol-list', '--pool',
                             conftest.MEDIA_POOL).strip() == ''
