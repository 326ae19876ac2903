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

"""Beyond power in a real standalone Ironic: what a user types.

Inspection, virtual media, the serial console and the ``ironic-libvirt``
command, on real QEMU domains reached over qemu+tcp with SASL. Virtual
media goes through openstacksdk: python-ironicclient 6.3 has no command
for it.
"""

import json
import os
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import libvirt
import openstack
import pytest
import yaml

from tests.e2e import conftest
from tests.harness import web

ISO_BYTES = b'\x00' * 32768 + b'\x01CD001\x01' + b'\x00' * 4089
SECOND_NIC = ("<interface type='user'><mac address='52:54:00:e3:00:01'/>"
              "<model type='virtio'/></interface>")


def _wait(what, predicate, timeout=30):
    """Poll ``predicate`` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, 'no %s after %ss' % (what,
                                                                 timeout)
        time.sleep(0.2)


def _cdrom_source(domain, flags=0):
    disk = ET.fromstring(domain.XMLDesc(flags)).find(
        "devices/disk[@device='cdrom']")
    source = disk.find('source')
    return None if source is None else source.get('file')


def test_inspect_sets_properties_and_ports_once(nodes, qemu):
    domain = qemu.create()
    domain.attachDeviceFlags(SECOND_NIC, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    # A sparse 3 GiB disk: local_gb is the first disk's capacity.
    os.truncate(qemu.daemon.base_dir / ('%s.img' % domain.name()), 3 << 30)
    node = nodes.create('libvirt', qemu.driver_info(domain), cli=True)
    assert node['inspect_interface'] == 'libvirt'
    nodes.manage(node['uuid'])

    for _attempt in range(2):
        nodes.cli('node', 'inspect', node['uuid'], '--wait', '60',
                  json=False)
        shown = nodes.cli('node', 'show', node['uuid'])
        assert shown['provision_state'] == 'manageable'
        assert shown['last_error'] is None
        assert shown['properties'] == {
            'cpus': 1, 'memory_mb': 32, 'local_gb': 3, 'cpu_arch': 'x86_64',
            'capabilities': 'boot_mode:bios'}
        ports = nodes.cli('port', 'list', '--node', node['uuid'])
        assert sorted(p['address'] for p in ports) == [
            domain.mac, '52:54:00:e3:00:01']
    inventory = nodes.ironic.request(
        'GET', '/v1/nodes/%s/inventory' % node['uuid'])['inventory']
    assert [i['mac_address'] for i in inventory['interfaces']] == [
        domain.mac, '52:54:00:e3:00:01']
    # Out-of-band: the domain was never started.
    assert qemu.state(domain) == 'shut off'


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
    _wait('inserted medium', lambda: failed() or vmedia()[0]['inserted'])
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
    _wait('ejected medium', lambda: failed() or not vmedia()[0]['inserted'])
    assert failed() is None
    assert vmedia() == [{'media_types': ['cdrom'], 'inserted': False,
                         'image': None}]
    assert _cdrom_source(domain) is None
    assert _cdrom_source(domain, libvirt.VIR_DOMAIN_XML_INACTIVE) is None
    assert qemu.daemon.virsh('vol-list', '--pool',
                             conftest.MEDIA_POOL).strip() == ''


def _console_in_use(domain):
    """Whether libvirt reports a session on the domain's serial console."""
    stream = domain.connect().newStream(0)
    try:
        domain.openConsole(None, stream, 0)
    except libvirt.libvirtError as exc:
        return 'active console session' in str(exc).lower()
    stream.abort()
    return False


def test_console_enable_show_connect_disable(nodes, qemu):
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain))['uuid']
    assert nodes.api(node)['console_interface'] == 'libvirt-socat'
    nodes.manage(node)
    nodes.power(node, 'on')

    def console():
        return nodes.cli('node', 'console', 'show', node)

    def console_info():
        shown = console()
        return shown['console_enabled'] and shown['console_info']

    nodes.cli('node', 'console', 'enable', node, json=False)
    try:
        info = _wait('enabled console', console_info)
        assert info['type'] == 'socat'
        host, port = info['url'][len('tcp://'):].split(':')
        assert info['url'] == 'tcp://127.0.0.1:%s' % port
        assert not _console_in_use(domain)
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            # The session opens the domain's console through libvirt.
            _wait('console session', lambda: _console_in_use(domain))
            conn.settimeout(1)
            with pytest.raises(socket.timeout):
                # Open and quiet: no end of file without a guest OS.
                conn.recv(1)
            conn.sendall(b'\r')
    finally:
        nodes.cli('node', 'console', 'disable', node, json=False)
    _wait('disabled console', lambda: not console()['console_enabled'])
    assert console()['console_info'] is None
    _wait('console session end', lambda: not _console_in_use(domain))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=5).close()


def _ironic_libvirt(*args, env=None):
    """Run ``ironic-libvirt ARGS -f json``; return the parsed output."""
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ironic-libvirt'),
         *args, '-f', 'json'], capture_output=True, text=True, env=env,
        timeout=60)
    return result.returncode, json.loads(result.stdout or 'null'), (
        result.stderr)


def test_enroll_file_create_check_power_on(libvirt_ironic, nodes, qemu,
                                           tmp_path):
    domains = [qemu.create(), qemu.create()]
    names = [d.name() for d in domains]
    path = tmp_path / 'nodes.yaml'
    rc, rows, err = _ironic_libvirt(
        'enroll-file', '--uri', qemu.daemon.uri_tcp, '--sasl-username',
        qemu.daemon.sasl_username, '--domains', *names, '-o', str(path),
        env=dict(os.environ, IRONIC_LIBVIRT_SASL_PASSWORD=(
            qemu.daemon.sasl_password)))
    assert rc == 0, err
    assert rows == [{'Name': d.name(), 'MAC addresses': d.mac}
                    for d in domains]
    assert path.stat().st_mode & 0o777 == 0o600

    nodes.cli('create', path, json=False)
    for domain in domains:
        node = nodes.cli('node', 'show', domain.name())
        nodes.created.append(node['uuid'])
        assert node['driver'] == 'libvirt'
        assert node['properties']['cpu_arch'] == 'x86_64'
        ports = nodes.cli('port', 'list', '--node', node['uuid'])
        assert [p['address'] for p in ports] == [domain.mac]
        results = nodes.validate(node['uuid'])
        for interface in ('power', 'management'):
            assert results[interface][0] is True, (interface, results)
        nodes.manage(node['uuid'])
        nodes.power(node['uuid'], 'on', cli=True)
        assert qemu.state(domain) == 'running'

    info_file = tmp_path / 'driver_info.json'
    info_file.write_text(json.dumps(
        yaml.safe_load(path.read_text())['nodes'][0]['driver_info']))
    rc, rows, err = _ironic_libvirt(
        'check', '--driver-info', '@%s' % info_file,
        '--config-file', libvirt_ironic.config_path)
    assert rc == 0, err
    assert [r['Step'] for r in rows] == [
        'read driver_info', 'parse driver_info', 'URI policy', 'connect',
        'authenticate', 'find domain', 'power state']
    assert {r['Result'] for r in rows} == {'ok'}, rows
