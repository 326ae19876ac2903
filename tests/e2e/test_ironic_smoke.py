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

"""The standalone Ironic harness works: drivers load, a node powers on."""

import time
import uuid


def _wait_power_state(ironic, node, state, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        current = ironic.request('GET', '/v1/nodes/%s' % node)['power_state']
        if current == state or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


def test_driver_list(ironic):
    drivers = ironic.baremetal('driver', 'list')
    assert ({d['name'] for d in drivers}
            == set(ironic.hardware_types))


def test_fake_node_power_on(ironic):
    name = 'smoke-%s' % uuid.uuid4().hex[:8]
    node = ironic.baremetal('node', 'create', '--driver', 'fake-hardware',
                            '--name', name)
    try:
        assert node['driver'] == 'fake-hardware'
        assert node['power_interface'] == 'fake'
        ironic.baremetal('node', 'power', 'on', name, json=False)
        assert _wait_power_state(ironic, name, 'power on') == 'power on'
        shown = ironic.baremetal('node', 'show', name, '--fields',
                                 'power_state')
        assert shown == {'power_state': 'power on'}
    finally:
        ironic.baremetal('node', 'delete', name, json=False)
