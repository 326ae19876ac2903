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

"""Inspection in a real standalone Ironic: what a user types.

``baremetal node inspect`` on real QEMU domains reached over qemu+tcp
with SASL.
"""

import os

import libvirt

SECOND_NIC = ("<interface type='user'><mac address='52:54:00:e3:00:01'/>"
              "<model type='virtio'/></interface>")


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
        # The vendor is Ironic's, detected when the node became manageable.
        assert shown['properties'] == {
            'cpus': 1, 'memory_mb': 32, 'local_gb': 3, 'cpu_arch': 'x86_64',
            'capabilities': 'boot_mode:bios', 'vendor': 'QEMU'}
        ports = nodes.cli('port', 'list', '--node', node['uuid'])
        assert sorted(p['address'] for p in ports) == [
            domain.mac, '52:54:00:e3:00:01']
    inventory = nodes.ironic.request(
        'GET', '/v1/nodes/%s/inventory' % node['uuid'])['inventory']
    assert [i['mac_address'] for i in inventory['interfaces']] == [
        domain.mac, '52:54:00:e3:00:01']
    # Out-of-band: the domain was never started.
    assert qemu.state(domain) == 'shut off'
