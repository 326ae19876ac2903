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

"""BIOS settings through a real Ironic: what a user types.

A manual clean without a ramdisk applies settings and resets them to the
factory state; ``baremetal node bios setting list`` shows what Ironic
stored, and the domain's definition (and, after a power-on, the running
QEMU's firmware) shows what changed.
"""

import json
import time
import xml.etree.ElementTree as ET

import libvirt

from tests.harness import domains as harness_domains

INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
BIOS_NS = {'b': 'https://opendev.org/openstack/ironic-libvirt/1'}


def _settings(nodes, node):
    """``baremetal node bios setting list``: {name: value}."""
    return {row['name']: row['value']
            for row in nodes.cli('node', 'bios', 'setting', 'list', node)}


def _clean(nodes, node, *steps):
    """A manual clean without a ramdisk; wait for manageable again."""
    nodes.cli('node', 'clean', node, '--disable-ramdisk',
              '--clean-steps', json.dumps(list(steps)), '--wait', '120',
              json=False)
    shown = nodes.api(node)
    assert shown['provision_state'] == 'manageable', shown
    assert shown['last_error'] is None, shown['last_error']


def _wait(what, predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'no %s after %ss' % (what,
                                                                 timeout)
        time.sleep(0.2)


def test_bios_settings_through_manual_cleaning(nodes, qemu):
    if not harness_domains.ovmf_available():
        # bindep.txt installs it; UEFI is what BootMode switches to.
        raise AssertionError('OVMF is not installed')
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain), cli=True)
    assert node['bios_interface'] == 'libvirt'
    node = node['uuid']
    nodes.manage(node)  # caches the settings

    settings = _settings(nodes, node)
    assert settings['BootMode'] == 'Bios'
    assert settings['SecureBoot'] == 'Disabled'
    assert settings['ProcTurboMode'] == 'Enabled'
    assert settings['SystemUUID'] == domain.UUIDString()
    detail = {row['name']: row for row in nodes.cli(
        'node', 'bios', 'setting', 'list', node, '--long')}
    assert detail['BootMode']['allowable_values'] == ['Bios', 'Uefi']
    assert detail['BootMode']['reset_required'] is True

    _clean(nodes, node, {
        'interface': 'bios', 'step': 'apply_configuration',
        'args': {'settings': [
            {'name': 'BootMode', 'value': 'Uefi'},
            {'name': 'SecureBoot', 'value': 'Enabled'},
            {'name': 'ProcTurboMode', 'value': 'Disabled'}]}})

    settings = _settings(nodes, node)
    assert (settings['BootMode'], settings['SecureBoot'],
            settings['ProcTurboMode']) == ('Uefi', 'Enabled', 'Disabled')
    defined = ET.fromstring(domain.XMLDesc(INACTIVE))
    assert defined.find('os').get('firmware') == 'efi'
    assert {f.get('name'): f.get('enabled') for f in defined.iterfind(
        'os/firmware/feature')}['secure-boot'] == 'yes'
    assert {s.get('name'): s.get('value') for s in defined.iterfind(
        'metadata/b:node/b:bios/b:setting', BIOS_NS)} == {
            'ProcTurboMode': 'Disabled'}
    assert not domain.isActive()

    # The next power-on starts QEMU with libvirt's secure boot firmware.
    nodes.power(node, 'on', cli=True)
    loader = ET.fromstring(domain.XMLDesc(0)).find('os/loader')
    assert loader.get('secure') == 'yes', ET.tostring(loader)
    assert 'OVMF' in loader.text or 'edk2' in loader.text, loader.text
    nodes.power(node, 'off', cli=True)
    _wait('shut off domain', lambda: not domain.isActive())

    _clean(nodes, node, {'interface': 'bios', 'step': 'factory_reset'})

    settings = _settings(nodes, node)
    assert (settings['BootMode'], settings['SecureBoot'],
            settings['ProcTurboMode']) == ('Bios', 'Disabled', 'Enabled')
    defined = ET.fromstring(domain.XMLDesc(INACTIVE))
    assert defined.find('os').get('firmware') is None
    assert defined.find('os/loader') is None
    assert defined.find('metadata/b:node/b:bios', BIOS_NS) is None


def test_bad_setting_fails_the_clean_step(nodes, qemu):
    domain = qemu.create()
    node = nodes.create('libvirt', qemu.driver_info(domain))['uuid']
    nodes.manage(node)
    before = domain.XMLDesc(INACTIVE)

    nodes.cli('node', 'clean', node, '--disable-ramdisk', '--clean-steps',
              json.dumps([{'interface': 'bios', 'step': 'apply_configuration',
                           'args': {'settings': [
                               {'name': 'BootMode', 'value': 'Legacy'}]}}]),
              json=False)
    _wait('failed cleaning',
          lambda: nodes.api(node)['provision_state'] == 'clean failed')

    error = nodes.api(node)['last_error']
    assert 'Node %s' % node in error, error
    assert "BIOS setting BootMode cannot be 'Legacy'" in error, error
    assert 'allowed values: Bios, Uefi' in error, error
    assert domain.XMLDesc(INACTIVE) == before
