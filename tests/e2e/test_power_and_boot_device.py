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

"""Power and boot devices in a real standalone Ironic, driven by ``baremetal``.

Enrolment and validation, power on/off/reboot and its state sync, boot
devices, finding a domain by port MAC, hardware types and SASL errors.
Real QEMU domains on the harness's libvirtd are reached over qemu+tcp with
SASL and checked with virsh; one scenario uses libvirt's test driver, which
only the Ironic process sees.
"""

import time
import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.e2e import conftest

POWER_AND_MANAGEMENT = ('power', 'management')


def _assert_valid(results, interfaces=POWER_AND_MANAGEMENT):
    for interface in interfaces:
        assert results[interface][0] is True, (interface, results)


def _first_boot_device(domain, flags=0):
    """The first <os><boot dev> of the domain's XML."""
    return ET.fromstring(domain.XMLDesc(flags)).find('os/boot').get('dev')


def test_driver_list_shows_hardware_types(libvirt_ironic):
    drivers = libvirt_ironic.baremetal('driver', 'list')
    names = {d['name'] for d in drivers}
    assert set(conftest.PROJECT_HARDWARE_TYPES) <= names


def test_enroll_validate_manage(nodes, qemu):
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain), cli=True)
    assert node['provision_state'] == 'enroll'
    assert node['power_interface'] == 'libvirt'
    assert node['management_interface'] == 'libvirt'
    _assert_valid(nodes.validate(node['uuid']))

    managed = nodes.manage(node['uuid'], cli=True)
    assert managed['provision_state'] == 'manageable'
    assert managed['power_state'] == 'power off'
    assert managed['last_error'] is None


def test_power_on_off_reboot(nodes, qemu):
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain))['uuid']
    nodes.manage(node)

    nodes.power(node, 'on', cli=True)
    assert qemu.state(domain) == 'running'
    first_id = qemu.domain_id(domain)

    nodes.power(node, 'reboot', cli=True)
    assert qemu.state(domain) == 'running'
    # A cold cycle: a new QEMU process, hence a new domain ID.
    assert qemu.domain_id(domain) != first_id

    nodes.power(node, 'off', cli=True)
    assert qemu.state(domain) == 'shut off'


def test_boot_device_set_and_show(nodes, qemu):
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain))['uuid']
    nodes.manage(node)

    def show():
        return nodes.cli('node', 'boot', 'device', 'show', node)

    supported = nodes.cli('node', 'boot', 'device', 'show', '--supported',
                          node)
    assert {'pxe', 'disk', 'cdrom'} <= set(
        supported['supported_boot_devices'].split(', '))
    assert show() == {'boot_device': 'pxe', 'persistent': True}

    nodes.cli('node', 'boot', 'device', 'set', '--persistent', node, 'disk',
              json=False)
    assert show() == {'boot_device': 'disk', 'persistent': True}
    assert _first_boot_device(domain, libvirt.VIR_DOMAIN_XML_INACTIVE) == 'hd'

    nodes.cli('node', 'boot', 'device', 'set', node, 'cdrom', json=False)
    assert show() == {'boot_device': 'cdrom', 'persistent': False}

    # The one-time device is used by the next start only: the running
    # domain booted from the cdrom, its definition is back to the disk.
    nodes.power(node, 'on')
    assert _first_boot_device(domain) == 'cdrom'
    assert _first_boot_device(domain, libvirt.VIR_DOMAIN_XML_INACTIVE) == 'hd'
    assert show() == {'boot_device': 'disk', 'persistent': True}

    nodes.cli('node', 'boot', 'device', 'set', '--persistent', node, 'pxe',
              json=False)
    assert show() == {'boot_device': 'pxe', 'persistent': True}
    nodes.power(node, 'off')


def test_node_found_by_port_mac(nodes, qemu):
    decoy = qemu.create()
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info())['uuid']
    missing = nodes.validate(node)
    assert missing['power'][0] is False
    assert 'libvirt_domain' in missing['power'][1]

    nodes.cli('port', 'create', '--node', node, domain.mac.upper())
    ports = nodes.cli('port', 'list', '--node', node)
    assert [port['address'] for port in ports] == [domain.mac]
    _assert_valid(nodes.validate(node))
    nodes.manage(node)
    nodes.power(node, 'on')
    assert qemu.state(domain) == 'running'
    assert qemu.state(decoy) == 'shut off'
    resolved = nodes.api(node)['driver_internal_info']
    assert resolved['libvirt_domain_resolved']['name'] == domain.name()
    nodes.power(node, 'off')


def test_power_sync_sees_domain_destroyed_behind_ironics_back(nodes, qemu):
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain))['uuid']
    nodes.manage(node)
    nodes.power(node, 'on')

    domain.destroy()
    deadline = time.monotonic() + 5 * conftest.SYNC_INTERVAL + 10
    while nodes.api(node)['power_state'] != 'power off':
        assert time.monotonic() < deadline, 'the power sync missed it'
        time.sleep(0.2)
    # Ironic recorded the change ([conductor]
    # force_power_state_during_sync = false) and left the domain off.
    assert qemu.state(domain) == 'shut off'


@pytest.mark.parametrize('driver, valid', [
    ('pxe_libvirt_iscsi', POWER_AND_MANAGEMENT),
    ('fake_libvirt_fake', POWER_AND_MANAGEMENT + ('boot', 'deploy')),
])
def test_historic_hardware_types(nodes, qemu, driver, valid):
    domain = qemu.create()
    node = nodes.create(driver, qemu.driver_info(domain), cli=True)
    assert node['driver'] == driver
    assert node['power_interface'] == 'libvirt'
    _assert_valid(nodes.validate(node['uuid']), valid)
    nodes.manage(node['uuid'])
    nodes.power(node['uuid'], 'on', cli=True)
    assert qemu.state(domain) == 'running'


def test_wrong_sasl_password_is_reported(nodes, qemu):
    domain = qemu.create()
    info = dict(qemu.driver_info(domain), sasl_password='wrong-e2e-secret')
    node = nodes.create('libvirt', info)['uuid']
    # validate does not contact the hypervisor; manage does.
    _assert_valid(nodes.validate(node))
    with pytest.raises(AssertionError, match='authentication failed'):
        nodes.manage(node)
    error = nodes.api(node)['last_error']
    assert 'Check driver_info sasl_username and sasl_password' in error
    assert 'wrong-e2e-secret' not in error


def test_sasl_password_masked_and_not_logged(libvirt_ironic, nodes, qemu):
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain), cli=True)
    assert node['driver_info']['sasl_password'] == '******'
    shown = nodes.cli('node', 'show', node['uuid'], json=False)
    assert '******' in shown
    assert qemu.daemon.sasl_password not in shown
    nodes.manage(node['uuid'])
    nodes.power(node['uuid'], 'on')
    nodes.power(node['uuid'], 'off')
    log = libvirt_ironic.log_text()
    assert node['uuid'] in log
    assert qemu.daemon.sasl_password not in log
    assert 'wrong-e2e-secret' not in log


def test_test_driver_inside_ironic(nodes):
    node = nodes.create('libvirt', {'libvirt_uri': 'test:///default',
                                    'libvirt_domain': 'test'},
                        cli=True)['uuid']
    _assert_valid(nodes.validate(node))
    # test:///default has one running domain, "test".
    assert nodes.manage(node)['power_state'] == 'power on'
    nodes.power(node, 'off', cli=True)
    nodes.power(node, 'on', cli=True)
    nodes.power(node, 'reboot')
    boot = nodes.cli('node', 'boot', 'device', 'show', node)
    assert boot['boot_device'] in ('disk', 'pxe', 'cdrom')
